/** Identifiers and protocol values shared by the runtime, the server and the browser. */

export type NodeId = string;
/** A session or an sthread: anything that issues requests and waits for replies. */
export type CallerId = string;
export type Version = number;
export type WorldLine = number;

/**
 * The version of the protocol between the server and its clients (browsers and node processes). A
 * node sends it in its join and the server sends it in every snapshot; either side refuses the other
 * when they differ (a page or node process left over from another release). Raise it whenever a shape
 * in `shared` changes in a way an older peer would misread.
 */
export const PROTOCOL_VERSION = 2;

/** A node id: a letter, then letters, digits, `_` or `-`; at most 32. */
export const NODE_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** A session id: letters, digits, `._-`, at most 64. */
export const SESSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** A request id the server hands out: `r` and a number. */
export const REQUEST_ID_PATTERN = /^r[0-9]{1,15}$/;

/** A dependency set: for each node, the highest version depended on. */
export type Deps = Record<NodeId, Version>;

/** The committed cut: for each node, its highest committed version (0: nothing committed yet). */
export type Cut = Record<NodeId, Version>;

export const MODES = ['speculative', 'durable', 'none'] as const;
export type Mode = (typeof MODES)[number];

export const CUT_KINDS = ['exact', 'cheap'] as const;
export type CutKind = (typeof CUT_KINDS)[number];

/**
 * How a recovery repairs the cluster. `precise`: only versions that depend on lost state roll back,
 * everything else that was uncommitted survives onto the new world-line. `cut`: every node rolls back to
 * the committed cut (the simple baseline, kept for comparison and teaching).
 */
export const RECOVERY_KINDS = ['precise', 'cut'] as const;
export type RecoveryKind = (typeof RECOVERY_KINDS)[number];

/**
 * What nodes report to the observer: `full`, every event (what the playground draws); `summary`,
 * versions, checkpoints, rollbacks and state changes, and a sample of message events; `off`, only what
 * the server needs to know a node restored.
 */
export const OBSERVATION_LEVELS = ['full', 'summary', 'off'] as const;
export type ObservationLevel = (typeof OBSERVATION_LEVELS)[number];

/** JSON values: node state, message payloads and results are JSON so that they can be persisted and shown. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every message between nodes, sessions and the coordinator carries this header. */
export interface Header {
  src: string;
  srcVersion: Version;
  worldLine: WorldLine;
  seq: number;
}

/**
 * A type whose values are JSON (an interface or a record type of JSON fields): TypeScript cannot see
 * that an interface fits `Json` (it has no index signature), so `toJson` takes such a value as it is.
 * Optional fields are allowed (`JSON.stringify` leaves them out).
 */
export type JsonCompatible<T> = T extends null | boolean | number | string | undefined
  ? T
  : T extends readonly (infer U)[]
    ? readonly JsonCompatible<U>[]
    : T extends object
      ? { [K in keyof T]: JsonCompatible<T[K]> }
      : never;

/** A value of a JSON-shaped type, as `Json` (checked field by field by `JsonCompatible`). */
export function toJson<T>(v: T & JsonCompatible<T>): Json {
  return v as Json;
}

/**
 * A JSON value this side wrote itself (a node's own state, a message of its own service), read back as
 * the type it was written as. Unchecked: use it only where the same code wrote the value.
 */
export function fromJson<T>(v: Json | undefined): T {
  return v as T;
}
