import type { Cut, Deps, InspectionEvent, Json, NodeId, Version, WorldLine } from '@dse/shared';
import type { WireMessage, WorldLineStart } from './messages';

/** The core's whole world comes in through these ports: virtual in the simulator, real when live. */

export type TimerId = number;

export interface Clock {
  /** Milliseconds; only differences and `floor(now / interval)` matter. */
  now(): number;
  setTimer(delayMs: number, fn: () => void): TimerId;
  clearTimer(id: TimerId): void;
}

export interface Network {
  /** Fire and forget: the message may be delayed, reordered, duplicated or lost. */
  send(to: string, msg: WireMessage): void;
}

/** The port the core's lint rule points to instead of Math.random (no core module draws yet). @public */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

export interface Observer {
  emit(event: InspectionEvent): void;
}

/** Changes to a node's key-value state since the previous checkpoint. */
export interface StateChanges {
  set: [string, Json][];
  del: string[];
}

/** One version of one node, as written to storage. */
export interface CheckpointRecord {
  node: NodeId;
  worldLine: WorldLine;
  version: Version;
  /** The node's previous checkpointed version (0: the initial empty state); `changes` apply on top of it. */
  prevVersion: Version;
  /** Versions of other nodes this version depends on. */
  deps: Deps;
  /** When true `changes.set` is the whole state and `prevVersion` is not needed to read it. */
  full: boolean;
  changes: StateChanges;
}

export interface LoadedCheckpoint {
  node: NodeId;
  worldLine: WorldLine;
  version: Version;
  deps: Deps;
  state: Map<string, Json>;
}

/** What a checkpoint row says about itself, without its state. */
export interface CheckpointMeta {
  node: NodeId;
  worldLine: WorldLine;
  version: Version;
  prevVersion: Version;
  deps: Deps;
}

export interface CoordinatorRecord {
  worldLine: WorldLine;
  /** The committed cut; it never goes back within a world-line (storage refuses a lower one: `StaleCut`). */
  cut: Cut;
  /**
   * Each node's restore point in this world-line: the versions it keeps, at or above the cut (recovery
   * `precise` keeps uncommitted versions that depend on no lost state). Absent: the cut. Saving a new
   * world-line deletes the rows of older world-lines above it.
   */
  kept?: Cut;
  /** The cut (and restore points) each recent world-line started from, oldest first (bounded). */
  recoveryCuts: WorldLineStart[];
  /** Nodes that are members of the cluster. */
  nodes: NodeId[];
  /**
   * Nodes removed for good (absent: none). A coordinator started from this record never counts them as
   * members again, whatever list of nodes it is started with: the cut it announced without them (the
   * cheap cut is a minimum over the members) must never go back.
   */
  gone?: NodeId[];
  /**
   * This save starts `worldLine` (a recovery's): refused with `StaleWorldLine` unless it is newer than
   * the stored one, so that two coordinators (one of them dead, its save late) never both start it.
   * Not stored.
   */
  starts?: boolean;
}

/**
 * Durable storage of checkpoints and of the coordinator's record. Every method either completes or
 * rejects with a `DseError`: `StorageUnavailable` (indefinite: it may have happened) or
 * `StaleWorldLine` (definite: a newer world-line fenced this write off).
 */
export interface Storage {
  /**
   * Writes checkpoints in one transaction: all or none. Idempotent for a `(node, worldLine, version)`
   * already written. Rejects with `StaleWorldLine` when the stored world-line is newer than a record's.
   */
  writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void>;
  /** The checkpoint of `node` at `version` (committed, or kept by a recovery), with its whole state; null when there is none. */
  loadCheckpoint(node: NodeId, version: Version): Promise<LoadedCheckpoint | null>;
  /**
   * Every checkpoint row still held of world-lines up to `worldLine` (for a coordinator rebuilding its
   * graph): committed versions not yet pruned, versions kept by recoveries, and those of `worldLine`.
   */
  listCheckpoints(worldLine: WorldLine): Promise<CheckpointMeta[]>;
  loadCoordinator(): Promise<CoordinatorRecord | null>;
  /**
   * Saves the coordinator's record. When it names a newer world-line it also fences off writes from
   * older ones and deletes their rows above the restore points (`kept`, else the cut), in the same
   * transaction. Rejects with `StaleWorldLine` for an older world-line than the stored one (or the same
   * one, when the record `starts` it), and with `StaleCut` for the same world-line with a lower cut.
   */
  saveCoordinator(record: CoordinatorRecord): Promise<void>;
  /**
   * Drops versions of `node` below `version`, which is committed, but what reading it needs: the state
   * at `version` (and at every version chaining onto it) stays readable. It keeps the full snapshot
   * `version` chains onto and the deltas after it, and rewrites nothing, so its cost follows the rows
   * dropped. Only when those deltas outweigh twice the snapshot (more than a node's schedule writes; a
   * node restored over and over can chain that much) is `version` rewritten as a full snapshot and
   * everything below it dropped.
   */
  prune(node: NodeId, version: Version): Promise<void>;
}
