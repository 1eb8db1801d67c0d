/** Identifiers and protocol values shared by the runtime, the server and the browser. */

export type NodeId = string;
/** A session or an sthread: anything that issues requests and waits for replies. */
export type CallerId = string;
export type Version = number;
export type WorldLine = number;

/** A dependency set: for each node, the highest version depended on. */
export type Deps = Record<NodeId, Version>;

/** The committed cut: for each node, its highest committed version (0: nothing committed yet). */
export type Cut = Record<NodeId, Version>;

export type Mode = 'speculative' | 'durable' | 'none';
export const MODES: readonly Mode[] = ['speculative', 'durable', 'none'];

export type CutKind = 'exact' | 'cheap';
export const CUT_KINDS: readonly CutKind[] = ['exact', 'cheap'];

/**
 * How a recovery repairs the cluster. `precise`: only versions that depend on lost state roll back,
 * everything else that was uncommitted survives onto the new world-line. `cut`: every node rolls back to
 * the committed cut (the simple baseline, kept for comparison and teaching).
 */
export type RecoveryKind = 'precise' | 'cut';
export const RECOVERY_KINDS: readonly RecoveryKind[] = ['precise', 'cut'];

/**
 * What nodes report to the observer: `full`, every event (what the playground draws); `summary`,
 * versions, checkpoints, rollbacks and state changes, and a sample of message events; `off`, only what
 * the server needs to know a node restored.
 */
export type ObservationLevel = 'full' | 'summary' | 'off';
export const OBSERVATION_LEVELS: readonly ObservationLevel[] = ['full', 'summary', 'off'];

/** JSON values: node state, message payloads and results are JSON so that they can be persisted and shown. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every message between nodes, sessions and the coordinator carries this header. */
export interface Header {
  src: string;
  srcVersion: Version;
  worldLine: WorldLine;
  seq: number;
}
