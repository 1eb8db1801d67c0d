import type { ClusterConfig, WorkloadConfig } from './api';
import type { CallerId, Cut, Deps, Json, Mode, NodeId, RecoveryKind, Version, WorldLine } from './protocol';

/**
 * The inspection stream: every state change of the runtime, in order. The simulator's checker, the
 * server's history and the playground all read this one stream.
 */
export type MessageKind = 'app' | 'ack' | 'request' | 'reply' | 'reject';

interface At {
  /** Clock time of the event, in milliseconds. */
  t: number;
}

/** One version of one node. */
export interface VersionRef {
  node: NodeId;
  version: Version;
}

/** Why a world-line started. */
/** `nodeRemoved`: a removed node's versions above the cut are rolled back, with what depends on them. */
export type WorldLineReason = 'start' | 'failure' | 'coordinatorRestart' | 'modeChange' | 'nodeRemoved';

/** What a recovery rolled back on one node, and why. */
export interface RolledBackVersions {
  node: NodeId;
  /** Everything of the node above this version was rolled back (its restore point). */
  above: Version;
  /** The rolled-back versions the coordinator knew of, ascending (a failed node's unpersisted ones are not known one by one). */
  versions: Version[];
  /**
   * `lost`: the node failed and these versions were not persisted. `dependency`: the node's first
   * rolled-back version depends on lost state, through `path`. `cut`: recovery `cut` rolls back
   * everything uncommitted, whatever it depends on.
   */
  reason: 'lost' | 'dependency' | 'cut';
  /**
   * From the node's first rolled-back version to a lost version: each step is a dependency recorded by
   * the step before it (or the same node's earlier version). Empty unless `reason` is `dependency`.
   */
  path: VersionRef[];
}

export type InspectionEvent =
  | (At & { type: 'versionOpened'; node: NodeId; worldLine: WorldLine; version: Version; prevVersion: Version })
  | (At & {
      type: 'messageSent';
      id: string;
      kind: MessageKind;
      from: string;
      to: string;
      worldLine: WorldLine;
      srcVersion: Version;
      seq: number;
      resend: boolean;
    })
  | (At & { type: 'messageDelivered'; id: string; kind: MessageKind; from: string; to: string; version: Version; duplicate: boolean })
  | (At & { type: 'messageRejected'; id: string; kind: MessageKind; from: string; to: string; worldLine: WorldLine; receiverWorldLine: WorldLine })
  | (At & { type: 'dependencyRecorded'; node: NodeId; version: Version; on: Deps })
  | (At & {
      type: 'checkpointStarted';
      node: NodeId;
      worldLine: WorldLine;
      version: Version;
      prevVersion: Version;
      deps: Deps;
      changedKeys: number;
      full: boolean;
    })
  | (At & { type: 'checkpointPersisted'; node: NodeId; worldLine: WorldLine; version: Version; deps: Deps })
  | (At & { type: 'checkpointFailed'; node: NodeId; worldLine: WorldLine; version: Version; code: string; definite: boolean })
  | (At & { type: 'cutAdvanced'; worldLine: WorldLine; cut: Cut })
  | (At & { type: 'nodeFailed'; node: NodeId; reason: 'exit' | 'heartbeat' | 'restart' | 'killed' })
  | (At & { type: 'nodeRestarted'; node: NodeId })
  | (At & {
      type: 'worldLineChanged';
      worldLine: WorldLine;
      cut: Cut;
      failed: NodeId[];
      /** Each node's restore point: it keeps every version up to this one (the cut, or above it with precise recovery). */
      kept: Cut;
      reason: WorldLineReason;
      recovery: RecoveryKind;
    })
  /**
   * The coordinator's repair of one recovery, right after its `worldLineChanged`: what was lost, what
   * rolled back and why, and which uncommitted versions were kept.
   */
  | (At & {
      type: 'recoveryPlan';
      worldLine: WorldLine;
      recovery: RecoveryKind;
      /** State lost with failed nodes: every version of `node` above `version` (its last persisted one). */
      lost: VersionRef[];
      rolledBack: RolledBackVersions[];
      /** Uncommitted versions that survive onto the new world-line (and commit once persisted). */
      kept: VersionRef[];
    })
  | (At & {
      type: 'rollback';
      node: NodeId;
      worldLine: WorldLine;
      /** The node's restore point (the cut, or above it with precise recovery); execution continues above it. */
      toVersion: Version;
      /** Versions discarded, inclusive range; null when the node kept everything (or started fresh). */
      discarded: { from: Version; to: Version } | null;
    })
  | (At & { type: 'stateChanged'; node: NodeId; version: Version; set: Record<string, Json>; deleted: string[] })
  | (At & {
      type: 'sessionResult';
      session: CallerId;
      seq: number;
      status: 'speculative' | 'committed' | 'rolledBack';
      result: Json;
      deps: Deps;
      worldLine: WorldLine;
    })
  | (At & { type: 'modeChanged'; mode: Mode })
  // Live cluster only (the server and the node processes emit these; the simulator does not).
  /**
   * A message the network did not deliver, said by its sender: its receiver had no connection (`down`:
   * the node is down or not joined yet), or the configured message loss took it (`loss`). The sender's
   * resends (same id) show as further `messageSent` events.
   */
  | (At & { type: 'messageLost'; id: string; kind: MessageKind; from: string; to: string; reason: 'down' | 'loss' })
  | (At & { type: 'nodeAdded'; node: NodeId })
  | (At & { type: 'nodeRemoved'; node: NodeId })
  /**
   * A membership change (see `placement.ts`, docs/protocol.md): version `version` over `members` was
   * sent to the nodes (`sent`), its answers committed (`committed`), every hand-off arrived
   * (`handedOver`). `change` says what for: `join n5`, `drain n2`, `restore n3` (a down node's
   * committed state taken over from storage).
   */
  | (At & { type: 'placementChanged'; version: number; members: NodeId[]; phase: 'sent' | 'committed' | 'handedOver'; change: string })
  /** A node's OS process: spawned by the server, joined over the network, or exited (code or signal). */
  | (At & { type: 'nodeProcess'; node: NodeId; pid: number | null; state: 'spawned' | 'joined' | 'exited'; code: number | null; signal: string | null })
  | (At & { type: 'configChanged'; config: ClusterConfig })
  | (At & { type: 'workloadChanged'; workload: WorkloadConfig });

export type InspectionEventType = InspectionEvent['type'];
