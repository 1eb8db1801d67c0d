import type { CallerId, Json, Version } from '@dse/shared';
import { asNumber, asObject, callerKey, CorruptRecordError } from './state-keys';

/**
 * What a node keeps for one caller (a session, or another node's sthread): the reply of each recent
 * request, so that a request sent again (the caller never heard back) is answered, not run twice.
 */
export interface CallerTable {
  /** Highest request number seen from this caller. */
  lastSeq: number;
  /** The endpoint replies go to. */
  endpoint: string;
  /** By request number. */
  replies: Record<string, CallerReply>;
  /**
   * Every request numbered at or below this one is settled for the caller (it said so): it will never
   * ask again, so its reply is forgotten, and a late copy of it is dropped rather than run again.
   */
  settledUpTo?: number;
}

/** A reply a node keeps for a caller: in progress, done (with its result), or aborted by a probe. */
export interface CallerReply {
  status: 'pending' | 'done' | 'aborted';
  /** The result ('done'). */
  result?: Json;
  /** The version it completed in ('done'). */
  version?: Version;
  /** The version it was accepted in ('pending' and 'done'). */
  acceptedAt?: Version;
}

/** The table with `reply` for request `seq` (a new object: the old one may be in an undo log). */
export function withReply(prev: CallerTable | undefined, endpoint: string, seq: number, reply: CallerReply): CallerTable {
  const next: CallerTable = { lastSeq: Math.max(prev?.lastSeq ?? 0, seq), endpoint, replies: { ...(prev?.replies ?? {}), [seq]: reply } };
  if (prev?.settledUpTo !== undefined) next.settledUpTo = prev.settledUpTo;
  return next;
}

/** The table once the caller settled every request up to `settled`: their replies are forgotten. */
export function withSettled(prev: CallerTable | undefined, endpoint: string, settled: number): CallerTable {
  const replies: Record<string, CallerReply> = {};
  for (const [seq, r] of Object.entries(prev?.replies ?? {})) if (Number(seq) > settled) replies[seq] = r;
  return { lastSeq: Math.max(prev?.lastSeq ?? 0, settled), endpoint: prev?.endpoint ?? endpoint, replies, settledUpTo: settled };
}

export function callerTableJson(t: CallerTable): Json {
  const replies: { [seq: string]: Json } = {};
  for (const [seq, r] of Object.entries(t.replies)) replies[seq] = callerReplyJson(r);
  const out: { [key: string]: Json } = { lastSeq: t.lastSeq, endpoint: t.endpoint, replies };
  if (t.settledUpTo !== undefined) out.settledUpTo = t.settledUpTo;
  return out;
}

function callerReplyJson(r: CallerReply): Json {
  const out: { [key: string]: Json } = { status: r.status };
  if (r.result !== undefined) out.result = r.result;
  if (r.version !== undefined) out.version = r.version;
  if (r.acceptedAt !== undefined) out.acceptedAt = r.acceptedAt;
  return out;
}

const OLD_STATUS: Record<string, CallerReply['status']> = { p: 'pending', d: 'done', a: 'aborted' };

/**
 * Reads a stored caller table (`caller` names it in errors). Checkpoints written before the fields were
 * named (`{q, e, c, d}`, replies `{s, r, v, b}` with status `p`, `d` or `a`) still restore: both forms
 * are read, the named one is written.
 */
export function readCallerTable(value: Json, caller: CallerId): CallerTable {
  const what = `caller table of ${caller}`;
  const o = asObject(value, what);
  const named = 'endpoint' in o;
  const endpoint = named ? o.endpoint : o.e;
  if (typeof endpoint !== 'string') throw new CorruptRecordError(what, value);
  const replies: Record<string, CallerReply> = {};
  for (const [seq, r] of Object.entries(asObject(named ? o.replies : o.c, what))) replies[seq] = readCallerReply(r, what);
  const out: CallerTable = { lastSeq: asNumber(named ? o.lastSeq : o.q, what), endpoint, replies };
  const settled = named ? o.settledUpTo : o.d;
  if (settled !== undefined) out.settledUpTo = asNumber(settled, what);
  return out;
}

function readCallerReply(value: Json, what: string): CallerReply {
  const o = asObject(value, what);
  const named = 'status' in o;
  const raw = named ? o.status : o.s;
  const status = named ? raw : typeof raw === 'string' ? OLD_STATUS[raw] : undefined;
  if (status !== 'pending' && status !== 'done' && status !== 'aborted') throw new CorruptRecordError(what, value);
  const out: CallerReply = { status };
  const result = named ? o.result : o.r;
  const version = named ? o.version : o.v;
  const acceptedAt = named ? o.acceptedAt : o.b;
  if (result !== undefined) out.result = result;
  if (version !== undefined) out.version = asNumber(version, what);
  if (acceptedAt !== undefined) out.acceptedAt = asNumber(acceptedAt, what);
  return out;
}

/**
 * A request as a node's committed state holds it: done, with its result and the version it completed in;
 * or accepted and still in progress (a `PENDING` answer, such as a running workflow's start).
 */
export type CommittedReply = { status: 'done'; result: Json; version: Version; acceptedAt?: Version } | { status: 'inProgress'; acceptedAt: Version };

/**
 * The replies a node's state holds, by caller and request number: for a node removed while down, whose
 * committed state (its checkpoint at the cut, from storage) is all that is left of it. A request it does
 * not hold (or holds as aborted) did not happen within the cut, so nothing of it survives.
 */
export function committedReplies(state: Iterable<readonly [string, Json]>): (caller: CallerId, seq: number) => CommittedReply | null {
  const prefix = callerKey('');
  const tables = new Map<string, CallerTable>();
  for (const [k, v] of state) if (k.startsWith(prefix)) tables.set(k.slice(prefix.length), readCallerTable(v, k.slice(prefix.length)));
  return (caller, seq) => committedReplyOf(tables.get(caller)?.replies[seq]);
}

/** A stored reply as a committed state holds it: done, or in progress; null when absent or aborted. */
function committedReplyOf(r: CallerReply | undefined): CommittedReply | null {
  if (r === undefined || r.status === 'aborted') return null;
  if (r.status === 'pending' || r.version === undefined) return { status: 'inProgress', acceptedAt: r.acceptedAt ?? 0 };
  return { status: 'done', result: r.result ?? null, version: r.version, ...(r.acceptedAt !== undefined ? { acceptedAt: r.acceptedAt } : {}) };
}

/** One reply of a removed node's committed state: caller, request number, and what it holds of it. */
export type RemovedReply = [CallerId, number, CommittedReply];

/**
 * The replies a removed node's committed state holds for sthreads (callers named `<node>~<key>`), for the
 * nodes whose sthreads may still be waiting on it (`ActionContext.targetRemoved`). Sessions' replies stay
 * with the server (`SessionHost.nodeRemoved`).
 */
export function sthreadReplies(state: Iterable<readonly [string, Json]>): RemovedReply[] {
  const prefix = callerKey('');
  const out: RemovedReply[] = [];
  for (const [k, v] of state) {
    if (!k.startsWith(prefix)) continue;
    const caller = k.slice(prefix.length);
    if (!caller.includes('~')) continue;
    for (const [seq, stored] of Object.entries(readCallerTable(v, caller).replies)) {
      const r = committedReplyOf(stored);
      if (r !== null) out.push([caller, Number(seq), r]);
    }
  }
  return out;
}

export function removedReplyJson([caller, seq, r]: RemovedReply): [CallerId, number, Json] {
  const reply: { [key: string]: Json } = r.status === 'done' ? { status: 'done', result: r.result, version: r.version } : { status: 'inProgress' };
  if (r.acceptedAt !== undefined) reply.acceptedAt = r.acceptedAt;
  return [caller, seq, reply];
}

/** Reads a `removedReplyJson` back; null when it is not one (bad input from the control plane). */
export function readRemovedReply(v: Json): RemovedReply | null {
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [caller, seq, r] = v;
  if (typeof caller !== 'string' || typeof seq !== 'number' || typeof r !== 'object' || r === null || Array.isArray(r)) return null;
  const acceptedAt = typeof r.acceptedAt === 'number' ? r.acceptedAt : undefined;
  if (r.status === 'done' && typeof r.version === 'number')
    return [caller, seq, { status: 'done', result: r.result ?? null, version: r.version, ...(acceptedAt !== undefined ? { acceptedAt } : {}) }];
  if (r.status === 'inProgress') return [caller, seq, { status: 'inProgress', acceptedAt: acceptedAt ?? 0 }];
  return null;
}
