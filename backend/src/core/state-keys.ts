import type { Json, NodeId, Version } from '@dse/shared';

// Runtime keys live in the same key-value state as the app's, so that deltas, checkpoints and
// rollback treat them alike. App keys get the `a:` prefix; the runtime's tables start with `r:`.
const APP = 'a:';
const SEQ = 'r:seq:';
const OUT = 'r:out:';
const DEDUP = 'r:dd:';
const CALLER = 'r:cl:';
const GONE = 'r:gone:';

/** The state key of the app's key `key`. */
export function appKey(key: string): string {
  return APP + key;
}

/** The app's name for a state key, or null when the key is the runtime's own. */
export function appKeyName(stateKey: string): string | null {
  return stateKey.startsWith(APP) ? stateKey.slice(APP.length) : null;
}

/** The app's part of a node's state (a checkpoint's or a live node's), under the app's own key names. */
export function appEntries(state: Iterable<[string, Json]>): [string, Json][] {
  const out: [string, Json][] = [];
  for (const [k, v] of state) if (k.startsWith(APP)) out.push([k.slice(APP.length), v]);
  return out;
}

/** The last sequence number sent to `to` (a number). */
export function seqKey(to: NodeId): string {
  return SEQ + to;
}

/** An unacknowledged `app` message to `to` (an `OutboxRecord`). */
export function outboxKey(to: NodeId, seq: number): string {
  return `${OUT}${to}:${seq}`;
}

/** The destination and seq of an outbox key; null for any other key. */
export function parseOutboxKey(stateKey: string): { to: NodeId; seq: number } | null {
  if (!stateKey.startsWith(OUT)) return null;
  const rest = stateKey.slice(OUT.length);
  const i = rest.lastIndexOf(':');
  return { to: rest.slice(0, i), seq: Number(rest.slice(i + 1)) };
}

/** The seqs applied from sender `src` (a `DedupWindow`, see `dedup.ts`). */
export function dedupKey(src: NodeId): string {
  return DEDUP + src;
}

/** The sender a dedup window's key names; null for any other key. */
export function parseDedupKey(stateKey: string): NodeId | null {
  return stateKey.startsWith(DEDUP) ? stateKey.slice(DEDUP.length) : null;
}

/** The replies kept for a session or sthread (a `CallerTable`, see `caller-table.ts`). */
export function callerKey(caller: string): string {
  return CALLER + caller;
}

/** A node removed for good: the committed replies it held for this node's sthreads (see `RemovedTarget`). */
export function goneKey(node: NodeId): string {
  return GONE + node;
}

/** An outbox entry as stored: the message's payload and the version it was sent in. */
export interface OutboxRecord {
  payload: Json;
  version: Version;
}

export function outboxRecordJson(r: OutboxRecord): Json {
  return { payload: r.payload, version: r.version };
}

/**
 * Reads a stored outbox entry. Checkpoints written before the fields were named (`{p, v}`) still
 * restore: both forms are read, the named one is written.
 */
export function readOutboxRecord(value: Json): OutboxRecord {
  const o = asObject(value, 'outbox entry');
  if ('payload' in o) return { payload: o.payload!, version: asNumber(o.version, 'outbox entry version') };
  return { payload: o.p ?? null, version: asNumber(o.v, 'outbox entry version') };
}

/** A stored runtime record that is not what its key says it is: the state (or the checkpoint) is corrupt. */
export class CorruptRecordError extends Error {
  constructor(what: string, value: unknown) {
    super(`corrupt ${what}: ${JSON.stringify(value)}`);
    this.name = 'CorruptRecordError';
  }
}

export function asObject(value: Json | undefined, what: string): { [key: string]: Json } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CorruptRecordError(what, value);
  return value;
}

export function asNumber(value: Json | undefined, what: string): number {
  if (typeof value !== 'number') throw new CorruptRecordError(what, value);
  return value;
}
