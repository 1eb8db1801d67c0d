import type { Cut, Json, NodeId, WorldLine } from '@dse/shared';
import { fromJson } from '@dse/shared';
import { canonical, jsonEqual } from '../services/common';
import type { KvVerdict, Outcome, PrefixEntry, ViolationNote } from './verify';
import { prefixBreaks } from './verify';

/**
 * The chaos checks of the service scenarios (wal, broker, workflow), as pure functions of what the
 * clients were told and of each node's committed state at the cut a restarting coordinator adopts.
 * The invariants are those of the simulator's scenarios (backend/src/sim/scenarios), weakened only
 * where a chaos run knows less: a request whose server was SIGKILLed before it was decided is
 * `unknown`, and may or may not have happened.
 */

export type ServiceName = 'wal' | 'broker' | 'wf';
export type Payload = { [key: string]: Json };

/** One request a load client sent through `POST /api/service`, and what it was told. */
export interface ServiceRecord {
  svc: ServiceName;
  session: string;
  /** The request's number in its session, as the client counted (one at a time per session). */
  q: number;
  /** Server incarnation it was sent to; request ids are only meaningful within it. */
  incarnation: number;
  id: string | null;
  /** The node that ran it, as the server said (null: not known). */
  node: NodeId | null;
  /** The service's own payload (without `svc`). */
  payload: Payload;
  outcome: Outcome;
  /** The service's answer once there was one (null: none yet, or rolled back before it). */
  result: Json | null;
  /** The error code the server answered with instead (a typed refusal of the service, a rate limit …). */
  error: string | null;
  answerWorldLine: WorldLine | null;
  /** How many times the client had resumed its session when it made the request (see `PutRecord.resumes`). */
  resumes: number;
}

/** Each node's committed app state (keys without the storage's `a:` prefix) and the cut it was read at. */
export interface FinalServiceState {
  nodes: ReadonlyMap<NodeId, ReadonlyMap<string, Json>>;
  cut: Readonly<Cut>;
  /**
   * Logs, topics, workflows and items of this run start with it: others (the server's built-in
   * workload's) are not checked against the clients' records.
   */
  prefix: string;
}

export interface ServiceVerdict extends KvVerdict {
  /** Everything else the service promises (order, holes, group offsets, sagas, stock, versions above the cut). */
  serviceViolations: number;
  notes: ViolationNote[];
  /** What the run did, for the report (appends, publishes, workflows completed …). */
  stats: Record<string, number>;
}

const NOTES_MAX = 40;

type Kind = 'lost' | 'duplicate' | 'orphan' | 'prefix' | 'service';

class Verdict {
  readonly v: ServiceVerdict = {
    committed: 0,
    rolledBack: 0,
    refused: 0,
    unknown: 0,
    lostCommitted: 0,
    duplicates: 0,
    orphans: 0,
    prefixViolations: 0,
    serviceViolations: 0,
    notes: [],
    stats: {},
  };

  fail(kind: Kind, invariant: ViolationNote['invariant'], message: string): void {
    switch (kind) {
      case 'lost':
        this.v.lostCommitted++;
        break;
      case 'duplicate':
        this.v.duplicates++;
        break;
      case 'orphan':
        this.v.orphans++;
        break;
      case 'prefix':
        this.v.prefixViolations++;
        break;
      case 'service':
        this.v.serviceViolations++;
        break;
    }
    if (this.v.notes.length < NOTES_MAX) this.v.notes.push({ invariant, message });
  }

  stat(name: string, by = 1): void {
    this.v.stats[name] = (this.v.stats[name] ?? 0) + by;
  }

  tally(records: readonly ServiceRecord[]): void {
    for (const r of records) {
      switch (r.outcome) {
        case 'committed':
          this.v.committed++;
          break;
        case 'rolled-back':
          this.v.rolledBack++;
          break;
        case 'refused':
          this.v.refused++;
          break;
        case 'pending':
        case 'speculative':
        case 'unknown':
          this.v.unknown++;
          break;
      }
    }
  }
}

// ------------------------------------------------------------------ shared pieces

function obj(v: Json | undefined | null): Payload | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : null;
}

/** A read or poll of committed state only (`committed: true` through the API, or an explicit `upTo`): its answer is final at once. */
const isCommittedOnly = (p: Payload): boolean => p.committed === true || (p.upTo !== undefined && p.upTo !== null);

/** A request that happened for sure, or may have (its server died first): not rolled back, not refused. */
const mayHaveHappened = (r: ServiceRecord): boolean => r.outcome !== 'rolled-back' && r.outcome !== 'refused';

/** The service refused the request itself (`{error}` as its answer). */
function serviceError(result: Json | null): Payload | null {
  const o = obj(result);
  return o !== null && 'error' in o ? (obj(o.error) ?? {}) : null;
}

/**
 * Every stored record of these prefixes carries `v`, the version of the node that wrote it: in the
 * committed state at cut `c`, none may be above `c` (nothing above the cut survived).
 */
function checkVersions(out: Verdict, final: FinalServiceState, prefixes: readonly string[]): void {
  for (const [node, state] of final.nodes) {
    const bound = final.cut[node] ?? 0;
    let reported = 0;
    for (const [key, value] of state) {
      if (!prefixes.some((p) => key.startsWith(p))) continue;
      const v = obj(value)?.v;
      if (typeof v === 'number' && v > bound && reported++ < 3)
        out.fail('service', 'above-cut', `${node}: ${key} was written at version ${v}, above the cut ${node}@${bound} the state was read at`);
    }
  }
}

/**
 * Prefix per session and resume segment, across world-lines (`prefixBreaks`): of the requests a
 * session sent between two resumes, those that survived are a prefix. Answered requests count, and
 * requests told rolled back (they did not survive); not those answered with a service's refusal, nor
 * those `survived` says nothing of (null: a read, a dropped duplicate, a publish without an offset).
 */
function checkPrefix(
  out: Verdict,
  records: readonly ServiceRecord[],
  survived: (r: ServiceRecord) => boolean | null,
  describe: (r: ServiceRecord) => string,
): void {
  const entries: (PrefixEntry & { r: ServiceRecord })[] = [];
  for (const r of records) {
    const answered = r.answerWorldLine !== null && r.result !== null;
    if (!answered && r.outcome !== 'rolled-back') continue; // never answered: it may never have reached the session
    if (serviceError(r.result) !== null) continue;
    const here = survived(r);
    if (here === null) continue;
    entries.push({ session: r.session, resumes: r.resumes, q: r.q, survived: here, answerWorldLine: answered ? r.answerWorldLine : null, r });
  }
  for (const message of prefixBreaks(entries, (e) => describe(e.r))) out.fail('prefix', 'prefix', message);
}

/** The nodes whose state holds `key` (one, for a correctly placed log or topic). */
function holders(final: FinalServiceState, key: string): NodeId[] {
  return [...final.nodes].filter(([, s]) => s.has(key)).map(([n]) => n);
}

/** Names `x` such that some node holds `<prefix><x><suffix>` (a log, a topic). */
function namesUnder(final: FinalServiceState, prefix: string, suffix: string): Set<string> {
  const out = new Set<string>();
  for (const state of final.nodes.values()) {
    for (const key of state.keys()) {
      if (!key.startsWith(prefix) || !key.endsWith(suffix)) continue;
      const name = key.slice(prefix.length, key.length - suffix.length);
      if (name.startsWith(final.prefix) && !name.includes('/')) out.add(name);
    }
  }
  return out;
}

/** The one node holding `lengthKey` (none: the first node, an empty log). Two: reported. */
function home(out: Verdict, final: FinalServiceState, lengthKey: string, invariant: ViolationNote['invariant'], what: string): ReadonlyMap<string, Json> {
  const h = holders(final, lengthKey);
  if (h.length > 1) out.fail('service', invariant, `${what} is on ${h.length} nodes (${h.join(', ')}): a log or topic lives on one`);
  return (h.length > 0 ? final.nodes.get(h[0]!) : undefined) ?? new Map<string, Json>();
}

/** Keys `<prefix><pos>` at or above `n` (an entry beyond the length the node keeps). */
function beyond(state: ReadonlyMap<string, Json>, prefix: string, n: number): number[] {
  const out: number[] = [];
  for (const key of state.keys()) {
    if (!key.startsWith(prefix)) continue;
    const pos = Number(key.slice(prefix.length));
    if (Number.isInteger(pos) && pos >= n) out.push(pos);
  }
  return out;
}

// ------------------------------------------------------------------ wal

/**
 * Write-ahead log (state `wal/<log>/n`, `wal/<log>/e/<pos>` = `{d, v}`):
 * - durability: every append reported committed is in the final log, with its data, at the position it was told;
 *   every entry a committed-only read (or a committed read) returned is still there, at its position;
 * - the log is a prefix without holes (entries 0 … n-1, none beyond n), each append at most once (exactly once);
 * - no orphans: every entry comes from an append that was neither rolled back nor refused;
 * - nothing above the cut; each session's surviving appends a prefix per resume segment.
 */
export function checkWal(records: readonly ServiceRecord[], final: FinalServiceState): ServiceVerdict {
  const out = new Verdict();
  const mine = records.filter((r) => r.svc === 'wal');
  out.tally(mine);
  const appends = mine.filter((r) => r.payload.op === 'append');
  const byData = new Map<string, ServiceRecord[]>();
  const logs = namesUnder(final, 'wal/', '/n');
  for (const r of appends) {
    const d = canonical(r.payload.data ?? null);
    let l = byData.get(d);
    if (l === undefined) byData.set(d, (l = []));
    l.push(r);
    if (typeof r.payload.log === 'string') logs.add(r.payload.log);
  }
  // The final logs, checked for holes, entries beyond their length and duplicates.
  const finalLogs = new Map<string, (Json | undefined)[]>();
  const where = new Map<string, { log: string; pos: number }>();
  for (const log of logs) {
    const state = home(out, final, `wal/${log}/n`, 'wal-log', `log ${log}`);
    const nv = state.get(`wal/${log}/n`);
    const n = typeof nv === 'number' ? nv : 0;
    const entries: (Json | undefined)[] = [];
    for (let pos = 0; pos < n; pos++) {
      const e = obj(state.get(`wal/${log}/e/${pos}`));
      if (e === null) {
        out.fail('service', 'wal-log', `log ${log} is ${n} long but has no entry at ${pos}`);
        entries.push(undefined);
        continue;
      }
      entries.push(e.d);
      const d = canonical(e.d ?? null);
      const seen = where.get(d);
      if (seen !== undefined) out.fail('duplicate', 'exactly-once', `${d} is in the committed logs twice: ${seen.log}[${seen.pos}] and ${log}[${pos}]`);
      else where.set(d, { log, pos });
      if (!(byData.get(d) ?? []).some((r) => r.payload.log === log && mayHaveHappened(r))) {
        const told = byData.get(d)?.[0];
        out.fail(
          'orphan',
          'no-orphans',
          `${log}[${pos}] = ${d} comes from ${told === undefined ? 'no append any client sent' : `an append reported ${told.outcome} (${told.session}#${told.q})`}`,
        );
      }
    }
    for (const pos of beyond(state, `wal/${log}/e/`, n)) out.fail('service', 'wal-log', `log ${log} is ${n} long but holds an entry at ${pos}`);
    finalLogs.set(log, entries);
    out.stat('entries', n);
  }
  const at = (log: Json | undefined, pos: number): Json | undefined => (typeof log === 'string' ? finalLogs.get(log)?.[pos] : undefined);
  for (const r of appends) {
    out.stat('appends');
    if (r.outcome !== 'committed') continue;
    out.stat('committedAppends');
    const pos = obj(r.result)?.pos;
    if (typeof pos !== 'number') {
      out.fail(
        'lost',
        'durability',
        `append ${r.session}#${r.q} to ${String(r.payload.log)} was reported committed without a position: ${JSON.stringify(r.result)}`,
      );
      continue;
    }
    const here = at(r.payload.log, pos);
    if (here === undefined || !jsonEqual(here, r.payload.data))
      out.fail(
        'lost',
        'durability',
        `append ${r.session}#${r.q} of ${JSON.stringify(r.payload.data)} was reported committed at ${String(r.payload.log)}[${pos}]; the committed log holds ${here === undefined ? 'nothing' : JSON.stringify(here)} there`,
      );
  }
  // Reads that are final: committed-only ones at once, any other once its request committed.
  for (const r of mine) {
    if (r.payload.op !== 'read' || r.result === null) continue;
    const committedOnly = isCommittedOnly(r.payload);
    if (!committedOnly && r.outcome !== 'committed') continue;
    const entries = obj(r.result)?.entries;
    if (!Array.isArray(entries)) continue;
    out.stat(committedOnly ? 'committedOnlyReads' : 'committedReads');
    for (const e of entries) {
      const eo = obj(e);
      if (eo === null || typeof eo.pos !== 'number') continue;
      const here = at(r.payload.log, eo.pos);
      if (here === undefined || !jsonEqual(here, eo.data))
        out.fail(
          'lost',
          'durability',
          `${committedOnly ? 'committed-only' : 'committed'} read ${r.session}#${r.q} saw ${String(r.payload.log)}[${eo.pos}] = ${JSON.stringify(eo.data)}; the committed log holds ${here === undefined ? 'nothing' : JSON.stringify(here)} there`,
        );
    }
  }
  checkVersions(out, final, ['wal/']);
  checkPrefix(
    out,
    mine,
    (r) => (r.payload.op === 'append' ? where.has(canonical(r.payload.data ?? null)) : null),
    (r) => `append of ${JSON.stringify(r.payload.data)} to ${String(r.payload.log)}`,
  );
  return out.v;
}

// ------------------------------------------------------------------ broker

interface StoredEvent {
  p: string;
  s: number;
  d: Json;
}

/**
 * Event broker (state `br/<topic>/n`, `br/<topic>/e/<offset>` = `{p, s, d, v}`, `br/<topic>/p/<producer>`,
 * `br/<topic>/g/<group>`):
 * - each topic is a sequence without holes; each producer's events in it are its seqs 1, 2, 3 … in
 *   order, each once (duplicates dropped, none skipped), and the producer's last seq is the last one there;
 * - durability: each publish reported committed is at the offset it was told (a committed duplicate:
 *   its event is in the topic); each event a committed poll or a committed-only poll handed out is
 *   at its offset in the committed topic;
 * - no orphans: every event comes from a publish neither rolled back nor refused, with its data;
 * - consumer groups: offsets never beyond the topic's length; committed polls of a group never hand
 *   out an event twice (the committed offset never moved back) nor beyond the final offset, and
 *   cover 0 … offset without gaps when every poll of the group was decided;
 * - nothing above the cut; each session's surviving publishes a prefix per resume segment.
 */
export function checkBroker(records: readonly ServiceRecord[], final: FinalServiceState): ServiceVerdict {
  const out = new Verdict();
  const mine = records.filter((r) => r.svc === 'broker');
  out.tally(mine);
  const topics = namesUnder(final, 'br/', '/n');
  const publishes = new Map<string, ServiceRecord[]>();
  const pubKey = (topic: Json | undefined, producer: Json | undefined, seq: Json | undefined): string =>
    `${String(topic)}\u0000${String(producer)}\u0000${String(seq)}`;
  for (const r of mine) {
    if (typeof r.payload.topic === 'string') topics.add(r.payload.topic);
    if (r.payload.op !== 'publish') continue;
    const k = pubKey(r.payload.topic, r.payload.producer, r.payload.seq);
    let l = publishes.get(k);
    if (l === undefined) publishes.set(k, (l = []));
    l.push(r);
  }
  const logs = new Map<string, StoredEvent[]>();
  const offsets = new Map<string, Map<string, number>>();
  for (const topic of topics) {
    const state = home(out, final, `br/${topic}/n`, 'broker-order', `topic ${topic}`);
    const nv = state.get(`br/${topic}/n`);
    const n = typeof nv === 'number' ? nv : 0;
    const log: StoredEvent[] = [];
    const where = new Map<string, number>();
    const lastSeq = new Map<string, number>();
    for (let o = 0; o < n; o++) {
      const e = fromJson<StoredEvent | null>(obj(state.get(`br/${topic}/e/${o}`)));
      if (e === null) {
        out.fail('service', 'broker-order', `topic ${topic} is ${n} long but has no event at ${o}`);
        log.push({ p: '', s: 0, d: null });
        continue;
      }
      log.push(e);
      const id = `${e.p}/${e.s}`;
      const prev = where.get(id);
      if (prev !== undefined)
        out.fail('duplicate', 'exactly-once', `topic ${topic}: ${id} is there twice, at ${prev} and ${o}: a duplicate publish was not dropped`);
      else {
        where.set(id, o);
        const last = lastSeq.get(e.p) ?? 0;
        if (e.s !== last + 1)
          out.fail('service', 'broker-order', `topic ${topic}: ${id} at ${o} follows seq ${last} of the same producer (seqs go 1, 2, 3 … in order)`);
        lastSeq.set(e.p, Math.max(last, e.s));
      }
      const told = publishes.get(pubKey(topic, e.p, e.s)) ?? [];
      if (!told.some((r) => mayHaveHappened(r) && jsonEqual(r.payload.data, e.d))) {
        out.fail(
          'orphan',
          'no-orphans',
          `topic ${topic}: ${id} at ${o} (data ${JSON.stringify(e.d)}) comes from ${told.length === 0 ? 'no publish any client sent' : `publishes reported ${told.map((r) => r.outcome).join(', ')}`}`,
        );
      }
    }
    for (const o of beyond(state, `br/${topic}/e/`, n)) out.fail('service', 'broker-order', `topic ${topic} is ${n} long but holds an event at ${o}`);
    for (const [producer, last] of lastSeq) {
      const stored = state.get(`br/${topic}/p/${producer}`);
      if (stored !== last)
        out.fail(
          'service',
          'broker-order',
          `topic ${topic}: producer ${producer}'s events end at seq ${last} but the broker keeps ${JSON.stringify(stored ?? null)} as its last seq`,
        );
    }
    const groups = new Map<string, number>();
    const gp = `br/${topic}/g/`;
    for (const [key, value] of state) {
      if (!key.startsWith(gp)) continue;
      const g = key.slice(gp.length);
      groups.set(g, typeof value === 'number' ? value : -1);
      if (typeof value !== 'number' || value < 0 || value > n)
        out.fail('service', 'broker-groups', `topic ${topic}, group ${g}: offset ${JSON.stringify(value)} is beyond the topic's length ${n}`);
    }
    logs.set(topic, log);
    offsets.set(topic, groups);
    out.stat('events', n);
  }
  const eventAt = (topic: Json | undefined, o: number): StoredEvent | undefined => (typeof topic === 'string' ? logs.get(topic)?.[o] : undefined);
  const inTopic = (topic: Json | undefined, producer: Json | undefined, seq: Json | undefined): boolean =>
    typeof topic === 'string' ? (logs.get(topic) ?? []).some((e) => e.p === producer && e.s === seq) : false;

  for (const r of mine) {
    if (r.payload.op !== 'publish') continue;
    out.stat('publishes');
    const res = obj(r.result);
    if (res?.duplicate === true) out.stat('duplicatesDropped');
    if (r.outcome !== 'committed' || res === null) continue;
    out.stat('committedPublishes');
    const id = `${String(r.payload.producer)}/${String(r.payload.seq)}`;
    if (res.duplicate === true) {
      if (!inTopic(r.payload.topic, r.payload.producer, r.payload.seq))
        out.fail(
          'lost',
          'durability',
          `committed publish ${r.session}#${r.q} of ${id} was dropped as a duplicate, but ${id} is not in topic ${String(r.payload.topic)}`,
        );
      continue;
    }
    if (typeof res.offset !== 'number') continue; // refused as out of order: nothing to find
    const e = eventAt(r.payload.topic, res.offset);
    if (e === undefined || e.p !== r.payload.producer || e.s !== r.payload.seq)
      out.fail(
        'lost',
        'durability',
        `committed publish ${r.session}#${r.q} put ${id} at ${String(r.payload.topic)}@${res.offset}; the committed topic holds ${e === undefined ? 'nothing' : `${e.p}/${e.s}`} there`,
      );
  }

  // Polls: the events they handed out, and per group the ranges committed polls delivered.
  const ranges = new Map<string, { from: number; next: number; r: ServiceRecord }[]>();
  const undecided = new Set<string>();
  for (const r of mine) {
    if (r.payload.op !== 'poll') continue;
    out.stat('polls');
    const gk = `${String(r.payload.topic)}\u0000${String(r.payload.group)}`;
    if (r.outcome === 'unknown' || r.outcome === 'pending' || r.outcome === 'speculative') undecided.add(gk);
    const res = obj(r.result);
    if (res === null || serviceError(r.result) !== null) continue;
    const committedOnly = isCommittedOnly(r.payload);
    if (!committedOnly && r.outcome !== 'committed') continue;
    const events = Array.isArray(res.events) ? res.events : [];
    out.stat('eventsHandedOut', r.outcome === 'committed' ? events.length : 0);
    for (const ev of events) {
      const eo = obj(ev);
      if (eo === null || typeof eo.offset !== 'number') continue;
      const e = eventAt(r.payload.topic, eo.offset);
      if (e === undefined || e.p !== eo.producer || e.s !== eo.seq) {
        out.fail(
          'lost',
          'durability',
          `${committedOnly ? 'committed-only' : 'committed'} poll ${r.session}#${r.q} (${r.outcome}) handed out ${String(eo.producer)}/${String(eo.seq)} at ${String(r.payload.topic)}@${eo.offset}; the committed topic holds ${e === undefined ? 'nothing' : `${e.p}/${e.s}`} there`,
        );
      }
    }
    if (r.outcome !== 'committed' || typeof res.from !== 'number' || typeof res.next !== 'number' || res.next === res.from) continue;
    let l = ranges.get(gk);
    if (l === undefined) ranges.set(gk, (l = []));
    l.push({ from: res.from, next: res.next, r });
  }
  for (const [gk, l] of ranges) {
    const [topic, group] = gk.split('\u0000') as [string, string];
    const offset = offsets.get(topic)?.get(group) ?? 0;
    l.sort((a, b) => a.from - b.from);
    let at = 0;
    let prev: ServiceRecord | null = null;
    for (const { from, next, r } of l) {
      if (from < at)
        out.fail(
          'duplicate',
          'exactly-once',
          `topic ${topic}, group ${group}: committed poll ${r.session}#${r.q} delivered ${from}..${next - 1}, but committed poll ${prev!.session}#${prev!.q} had delivered up to ${at - 1} already (the committed offset moved back)`,
        );
      else if (from > at && !undecided.has(gk))
        out.fail(
          'service',
          'broker-groups',
          `topic ${topic}, group ${group}: events ${at}..${from - 1} were never delivered by a committed poll (every poll of the group was decided; the next one, ${r.session}#${r.q}, starts at ${from})`,
        );
      if (next > at) {
        at = next;
        prev = r;
      }
    }
    if (at > offset)
      out.fail(
        'service',
        'broker-groups',
        `topic ${topic}, group ${group}: committed polls delivered up to ${at - 1} but the committed offset is ${offset} (it moved back)`,
      );
    else if (at < offset && !undecided.has(gk))
      out.fail(
        'service',
        'broker-groups',
        `topic ${topic}, group ${group}: the committed offset is ${offset} but committed polls delivered only up to ${at - 1}, and every poll of the group was decided`,
      );
  }
  checkVersions(out, final, ['br/']);
  checkPrefix(
    out,
    mine,
    (r) => {
      const off = obj(r.result)?.offset;
      if (r.payload.op !== 'publish' || typeof off !== 'number') return null;
      const e = eventAt(r.payload.topic, off);
      return e !== undefined && e.p === r.payload.producer && e.s === r.payload.seq;
    },
    (r) => `publish of ${String(r.payload.producer)}/${String(r.payload.seq)} to ${String(r.payload.topic)}`,
  );
  return out.v;
}

// ------------------------------------------------------------------ workflow (travel reservations)

interface Booking {
  item: string;
  st: 'booked' | 'refused' | 'cancelled';
  n: number;
  cn: number;
  why: string | null;
}

interface StepRecord {
  name?: string;
  node: NodeId;
  do: Payload;
  undo: Json;
}

interface WorkflowRecordState {
  st: StepRecord[];
  k: number;
  ph: 'run' | 'comp' | 'done';
  f: number | null;
  cp: number[];
  out: Payload | null;
}

/**
 * Workflows of travel reservations (state `wf/<id>`, `tr/b/<wf>/<step>`, `tr/s/<item>`):
 * - durability: each workflow reported committed is done in the committed state with the outcome
 *   the client got;
 * - exactly once: every booking was reserved once (`n` = 1) and cancelled at most once;
 * - sagas: whatever its phase, a workflow's bookings are what its record says: steps before the
 *   current one booked, a completed one's all booked, a failed one's before the failed step
 *   cancelled, the failed step refused for a true reason (a declined payment, or sold out), nothing
 *   after it; a declined payment never booked;
 * - no orphans: no workflow reported rolled back or refused is in the state, and no booking belongs
 *   to a workflow that is not;
 * - stock: each item's stock is its capacity less the bookings that hold it (`capacity`: item → stock
 *   it started with, null for unlimited);
 * - nothing above the cut; each session's surviving workflows a prefix per resume segment.
 */
export function checkWorkflow(
  records: readonly ServiceRecord[],
  final: FinalServiceState,
  capacity: ReadonlyMap<string, number | null>,
  opts: { unitsMove?: boolean } = {},
): ServiceVerdict {
  const out = new Verdict();
  const mine = records.filter((r) => r.svc === 'wf');
  out.tally(mine);
  const bookings = new Map<string, Map<number, Booking & { node: NodeId }>>();
  const workflows = new Map<string, { rec: WorkflowRecordState; node: NodeId }>();
  const stock = new Map<string, { c: number; node: NodeId }>();
  for (const [node, state] of final.nodes) {
    for (const [key, value] of state) {
      const b = /^tr\/b\/(.+)\/(\d+)$/.exec(key);
      if (b !== null) {
        if (!b[1]!.startsWith(final.prefix)) continue;
        let l = bookings.get(b[1]!);
        if (l === undefined) bookings.set(b[1]!, (l = new Map<number, Booking & { node: string }>()));
        l.set(Number(b[2]), { ...fromJson<Booking>(value), node });
        continue;
      }
      if (key.startsWith('tr/s/')) {
        const item = key.slice('tr/s/'.length);
        if (!item.startsWith(final.prefix)) continue;
        if (stock.has(item)) out.fail('service', 'stock', `item ${item} has stock on two nodes: ${stock.get(item)!.node} and ${node}`);
        stock.set(item, { c: (value as { c: number }).c, node });
        continue;
      }
      if (key.startsWith('wf/')) {
        const id = key.slice('wf/'.length);
        if (!id.startsWith(final.prefix)) continue;
        if (workflows.has(id)) out.fail('service', 'saga', `workflow ${id} has a record on two nodes: ${workflows.get(id)!.node} and ${node}`);
        workflows.set(id, { rec: fromJson<WorkflowRecordState>(value), node });
      }
    }
  }

  // Each workflow in the committed state: its bookings against its record.
  const booked = new Map<string, number>();
  const itemHome = new Map<string, NodeId>();
  for (const [id, { rec, node }] of workflows) {
    const mineB = bookings.get(id) ?? new Map<number, Booking & { node: NodeId }>();
    bookings.delete(id);
    const fail = (m: string): void =>
      out.fail('service', 'saga', `workflow ${id} (${rec.ph}${rec.out !== null ? ` ${String(rec.out.status)}` : ''}, on ${node}): ${m}`);
    for (const [k, b] of mineB) {
      if (b.n !== 1) out.fail('duplicate', 'exactly-once', `workflow ${id}, step ${k}: reserved ${b.n} times at ${b.node}`);
      if (b.cn > 1) out.fail('duplicate', 'exactly-once', `workflow ${id}, step ${k}: cancelled ${b.cn} times at ${b.node}`);
      if (b.st === 'booked') booked.set(b.item, (booked.get(b.item) ?? 0) + 1);
      if (k >= rec.st.length) fail(`a booking for step ${k}, but it has ${rec.st.length} steps`);
    }
    const status = rec.out?.status;
    const failedAt =
      rec.ph === 'done'
        ? status === 'failed'
          ? typeof rec.out?.failedAt === 'number'
            ? rec.out.failedAt
            : -1
          : rec.st.length
        : rec.ph === 'comp'
          ? (rec.f ?? -1)
          : rec.k;
    if (rec.ph === 'done') {
      out.stat(status === 'failed' ? 'workflowsFailed' : 'workflowsCompleted');
      if (status !== 'completed' && status !== 'failed') fail(`done without an outcome: ${JSON.stringify(rec.out)}`);
    } else out.stat('workflowsUnfinished');
    if (failedAt < 0 || failedAt > rec.st.length) {
      fail(`its record makes no sense: k ${rec.k}, f ${String(rec.f)}`);
      continue;
    }
    rec.st.forEach((step, k) => {
      const b = mineB.get(k);
      const where = `step ${k} (${step.name ?? '?'})`;
      const decline = step.do?.decline === true;
      if (b !== undefined) {
        // With membership changes an item's unit (its stock and bookings) moves: a step runs at the owner of
        // the moment (WrongOwner, a removed node's NodeRemoved), and its booking moves with the unit. Then
        // the booking must be where the item's unit is: with its stock, and with the item's other bookings.
        if (opts.unitsMove !== true) {
          if (b.node !== step.node) fail(`${where} ran at ${b.node}, not at ${step.node}`);
        } else {
          const home = stock.get(b.item)?.node ?? itemHome.get(b.item);
          if (home !== undefined && home !== b.node) fail(`${where}: its booking is at ${b.node}, but ${b.item}'s unit is at ${home}`);
          itemHome.set(b.item, home ?? b.node);
        }
        if (b.st === 'booked' && decline) fail(`${where}: a declined payment was booked`);
        if (b.st === 'refused' && (b.why === 'declined') !== decline)
          fail(`${where}: refused as ${String(b.why)}, but the payment was ${decline ? '' : 'not '}to be declined`);
      }
      const st = b?.st ?? 'absent';
      let allowed: string[];
      if (k > failedAt) allowed = ['absent'];
      else if (k === failedAt) allowed = rec.ph === 'run' ? ['absent', 'booked', 'refused'] : ['refused'];
      else if (rec.ph === 'comp' && k === rec.k) allowed = ['booked', 'cancelled'];
      else if (rec.ph === 'comp' ? k > rec.k : rec.ph === 'done' && status === 'failed') allowed = step.undo === null ? ['booked'] : ['cancelled'];
      else allowed = ['booked'];
      if (!allowed.includes(st)) fail(`${where} is ${st} at its provider; the workflow's record allows ${allowed.join(' or ')}`);
      if (b !== undefined && b.st !== 'cancelled' && b.cn !== 0) fail(`${where} is ${b.st} but was cancelled ${b.cn} times`);
    });
    if (rec.ph === 'done' && status === 'failed') {
      const expected = Array.from({ length: failedAt }, (_, i) => failedAt - 1 - i).filter((k) => rec.st[k]!.undo !== null);
      if (JSON.stringify(rec.out?.compensated) !== JSON.stringify(expected))
        fail(`compensated ${JSON.stringify(rec.out?.compensated)}, expected ${JSON.stringify(expected)}`);
      const b = mineB.get(failedAt);
      if (b !== undefined) out.stat(b.why === 'declined' ? 'declined' : 'soldOut');
    }
  }
  for (const [id, l] of bookings) {
    out.fail('orphan', 'no-orphans', `bookings of workflow ${id} (steps ${[...l.keys()].join(', ')}), which is not in the committed state`);
    for (const b of l.values()) if (b.st === 'booked') booked.set(b.item, (booked.get(b.item) ?? 0) + 1);
  }

  // What the clients were told.
  for (const r of mine) {
    if (r.payload.op !== 'start') continue;
    out.stat('workflowsStarted');
    const id = String(r.payload.id);
    const here = workflows.get(id);
    const err = r.error ?? (serviceError(r.result)?.code as string | undefined) ?? null;
    if (err === 'Conflict') {
      out.fail(
        'duplicate',
        'exactly-once',
        `start ${r.session}#${r.q} of workflow ${id} was refused as existing already, but each start has a fresh id: it ran twice`,
      );
      continue;
    }
    if (err === 'Orphaned') {
      // Under way at a node removed while down: accepted in a committed version, so its workflow goes on
      // where that node's state went. It must be in the committed state; no answer came.
      out.stat('workflowsOrphaned');
      if (here === undefined)
        out.fail(
          'lost',
          'durability',
          `workflow ${id} was reported Orphaned (${r.session}#${r.q}: accepted at a removed node) but is not in the committed state`,
        );
      continue;
    }
    if (r.outcome === 'rolled-back' || r.outcome === 'refused') {
      if (here !== undefined)
        out.fail('orphan', 'no-orphans', `workflow ${id} was reported ${r.outcome} (${r.session}#${r.q}) but is in the committed state (${here.rec.ph})`);
      continue;
    }
    if (r.outcome !== 'committed') continue;
    out.stat('workflowsCommitted');
    if (here === undefined)
      out.fail(
        'lost',
        'durability',
        `workflow ${id} was reported committed (${r.session}#${r.q}: ${JSON.stringify(r.result)}) but is not in the committed state`,
      );
    else if (here.rec.ph !== 'done' || !jsonEqual(here.rec.out, r.result))
      out.fail(
        'lost',
        'durability',
        `workflow ${id} was reported committed with ${JSON.stringify(r.result)}; the committed state holds ${here.rec.ph === 'done' ? JSON.stringify(here.rec.out) : `it unfinished (${here.rec.ph})`}`,
      );
  }

  // Stock: what each item started with, less what is booked.
  for (const [item, { c, node }] of stock) {
    const cap = capacity.get(item);
    const b = booked.get(item) ?? 0;
    booked.delete(item);
    if (cap === undefined || cap === null)
      out.fail('service', 'stock', `stock kept for ${item} (on ${node}), which has ${cap === undefined ? 'no capacity the clients know' : 'unlimited stock'}`);
    else if (c !== cap - b) out.fail('service', 'stock', `item ${item} on ${node}: ${c} left, but ${cap} - ${b} booked = ${cap - b}`);
  }
  for (const [item, b] of booked) if (capacity.get(item) !== null) out.fail('service', 'stock', `item ${item}: ${b} booked but no stock is kept`);

  checkVersions(out, final, ['wf/', 'tr/']);
  checkPrefix(
    out,
    mine,
    (r) => (r.payload.op === 'start' ? workflows.has(String(r.payload.id)) : null),
    (r) => `workflow ${String(r.payload.id)}`,
  );
  return out.v;
}
