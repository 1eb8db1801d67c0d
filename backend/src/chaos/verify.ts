import type { Cut, Json, NodeId, WorldLine } from '@dse/shared';

/**
 * The chaos run's checks, as pure functions of what the clients were told, what the nodes reported
 * (inspection events) and what the database holds at the end. Nothing here trusts the coordinator's
 * own view: the final state is read from storage at the cut a restarting coordinator adopts.
 */

export type Outcome =
  /** Sent, no final answer yet (while the run goes on). */
  | 'pending'
  /** Answered speculatively, not yet committed. */
  | 'speculative'
  | 'committed'
  /** Definitely rolled back (the server said so). */
  | 'rolled-back'
  /** A definite error: it was never applied (rate limit, bad request, ...). */
  | 'refused'
  /** Indefinite: the server incarnation died (or the connection failed) before a final answer. */
  | 'unknown';

export interface PutRecord {
  session: string;
  /** The request's number in its session, as the client counted (requests go one at a time). */
  q: number;
  key: string;
  value: Json;
  /** Server incarnation (1, 2, …) the request was sent to; request ids are only meaningful within it. */
  incarnation: number;
  id: string | null;
  outcome: Outcome;
  /** The world-line of the speculative answer, once there was one. */
  answerWorldLine: WorldLine | null;
  /**
   * How many times the client had resumed its session (`POST /api/sessions/:name/resume`) when it made
   * the request: a session's surviving requests are a prefix between two resumes, across world-lines.
   */
  resumes: number;
}

export interface Application {
  node: NodeId;
  worldLine: WorldLine;
  version: number;
  /**
   * With membership changes (`--membership`) the deletions of a key are recorded too (`del`: a hand-off
   * takes it out of its old owner), each with when it happened: the server start it was seen in (`inc`)
   * and the event's time in that start's clock (`t`), so that a key's history can be put in order.
   */
  del?: boolean;
  inc?: number;
  t?: number;
}

/** What the service scenarios check besides the invariants every scenario shares (verify-services.ts). */
export type ServiceInvariant = 'wal-log' | 'broker-order' | 'broker-groups' | 'saga' | 'stock' | 'above-cut';

export interface ViolationNote {
  /** `placement`: with membership changes, a unit in the committed state of two nodes. */
  invariant: 'durability' | 'exactly-once' | 'no-orphans' | 'prefix' | 'cut-safety' | 'liveness' | 'server' | 'placement' | ServiceInvariant;
  message: string;
}

export interface KvVerdict {
  committed: number;
  rolledBack: number;
  refused: number;
  unknown: number;
  lostCommitted: number;
  duplicates: number;
  orphans: number;
  prefixViolations: number;
  notes: ViolationNote[];
}

const NOTES_MAX = 40;

function valueEquals(a: Json | undefined, b: Json): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Each world-line's restore points: when world-line `w` started, node `n` kept every version up to
 * `kept(w)[n]` (the committed cut with recovery `cut`; with recovery `precise`, possibly above it) and
 * lost the rest. A version of world-line `w` survived into `w + 1` iff it is at or below `kept(w + 1)`;
 * it survived for good iff every later world-line kept it (a kept version that is not yet committed
 * can still be rolled back by a later recovery; a committed one never is). The last world-line's
 * entry is the cut the final state was read at: surviving means being in that committed state.
 */
export class RestorePoints {
  private readonly last: WorldLine;

  /** `kept`: world-line → restore points (as far as known); the highest world-line in it is the end. */
  constructor(private readonly kept: ReadonlyMap<WorldLine, Cut>) {
    let last = 0;
    for (const w of kept.keys()) if (w > last) last = w;
    this.last = last;
  }

  /**
   * Did `(node, version)` of world-line `worldLine` survive to the end? false: a later world-line
   * did not keep it; null: not known (some later world-line's restore points are unknown and none of
   * the known ones dropped it, or it is of the last world-line or beyond).
   */
  survived(node: NodeId, version: number, worldLine: WorldLine): boolean | null {
    if (worldLine >= this.last) return null;
    let known = true;
    for (let w = worldLine + 1; w <= this.last; w++) {
      const k = this.kept.get(w);
      if (k === undefined) {
        known = false;
        continue;
      }
      if (version > (k[node] ?? 0)) return false;
    }
    return known ? true : null;
  }

  /**
   * The lowest restore point of `node` over world-lines `from` … `to` (the highest version of it that
   * all of them kept), and the world-line that set it; Infinity when none of them is known.
   */
  lowest(node: NodeId, from: WorldLine, to: WorldLine): { version: number; worldLine: WorldLine | null } {
    let version = Infinity;
    let worldLine: WorldLine | null = null;
    for (let w = from; w <= to; w++) {
      const k = this.kept.get(w);
      if (k === undefined) continue;
      const v = k[node] ?? 0;
      if (v < version) {
        version = v;
        worldLine = w;
      }
    }
    return { version, worldLine };
  }
}

/** One request for the prefix check: which session segment it belongs to, and whether it survived. */
export interface PrefixEntry {
  session: string;
  /** The session's resumes when the request was made: requests between two resumes form one segment. */
  resumes: number;
  /** Its number in the session (send order: one request at a time). */
  q: number;
  survived: boolean;
  /** The world-line it was answered in (or null: rolled back before it was answered), for the report. */
  answerWorldLine: WorldLine | null;
}

/**
 * Prefix, per session and resume segment, across world-lines: a session that had a request rolled
 * back refuses every later one until it is resumed, and each request carries the dependencies of every
 * earlier answer; so of the requests a segment sent, those that survived are a prefix. `entries`
 * holds the requests whose survival is known: answered ones, and ones told rolled back (they did not
 * survive, answered or not). Returns one message per segment that breaks it.
 */
export function prefixBreaks<E extends PrefixEntry>(entries: readonly E[], describe: (e: E) => string): string[] {
  const segments = new Map<string, E[]>();
  for (const e of entries) {
    const g = `${e.session}\u0000${e.resumes}`;
    let l = segments.get(g);
    if (l === undefined) segments.set(g, (l = []));
    l.push(e);
  }
  const out: string[] = [];
  for (const l of segments.values()) {
    l.sort((a, b) => a.q - b.q);
    let firstMissing: E | null = null;
    for (const e of l) {
      if (!e.survived && firstMissing === null) firstMissing = e;
      if (e.survived && firstMissing !== null) {
        const where = (x: PrefixEntry): string => (x.answerWorldLine === null ? 'not answered' : `answered in world-line ${x.answerWorldLine}`);
        out.push(
          `session ${e.session}: request ${e.q} (${describe(e)}, ${where(e)}) survived but ${firstMissing.q} (${describe(firstMissing)}, ${where(firstMissing)}), sent before it with no resume in between (${e.resumes} resumes before both), did not`,
        );
        break;
      }
    }
  }
  return out;
}

/**
 * - durability: every put reported committed is in the final committed state with its value;
 * - no orphans: no put reported rolled back or refused is in it, and no key of ours that no client sent;
 * - prefix: per session and resume segment, across world-lines, the requests that survived are a
 *   prefix of those answered or told rolled back (`prefixBreaks`);
 * - exactly once: a put's applications that survived every later world-line's restore points (and
 *   the final cut) number at most one.
 */
/** See `checkKv`'s `moves`: how much earlier than reported a deletion may have happened (a few checkpoint intervals). */
export const MOVE_SLACK_MS = 1000;

export function checkKv(input: {
  records: readonly PutRecord[];
  /** App keys of the final committed state, all nodes together. */
  state: ReadonlyMap<string, Json>;
  /** Our key prefix: keys in the state starting with it must belong to a record. */
  keyPrefix: string;
  /** Applications of our keys (from `stateChanged` events). */
  applications: ReadonlyMap<string, readonly Application[]>;
  /** What each world-line kept when it started (`worldLineChanged`, `recoveryCuts`), ending with the final cut. */
  restorePoints: RestorePoints;
  /**
   * Membership changed during the run: a key moves between nodes (a hand-off deletes it at its old
   * owner and installs it at the new one; a node removed while down has its state installed on the
   * others). Exactly-once then takes a key's surviving applications and deletions in time order (a
   * deletion taken as up to `MOVE_SLACK_MS` earlier than reported): an
   * application is a second one only while the key is still held (not deleted) by some node that is not
   * among `removedDown` (whose keys were taken over without being deleted there). A key on two nodes at
   * the end is the placement check's (`unitsOnOneNode`).
   */
  moves?: { removedDown: ReadonlySet<NodeId> };
}): KvVerdict {
  const v: KvVerdict = { committed: 0, rolledBack: 0, refused: 0, unknown: 0, lostCommitted: 0, duplicates: 0, orphans: 0, prefixViolations: 0, notes: [] };
  const note = (n: ViolationNote): void => {
    if (v.notes.length < NOTES_MAX) v.notes.push(n);
  };
  const byKey = new Map<string, PutRecord>();
  for (const r of input.records) {
    byKey.set(r.key, r);
    const here = input.state.get(r.key);
    switch (r.outcome) {
      case 'committed':
        v.committed++;
        if (!valueEquals(here, r.value)) {
          v.lostCommitted++;
          note({
            invariant: 'durability',
            message: `${r.session}#${r.q} (${r.key}) was reported committed but the committed state has ${here === undefined ? 'no such key' : JSON.stringify(here)}`,
          });
        }
        break;
      case 'rolled-back':
      case 'refused':
        if (r.outcome === 'rolled-back') v.rolledBack++;
        else v.refused++;
        if (here !== undefined) {
          v.orphans++;
          note({ invariant: 'no-orphans', message: `${r.session}#${r.q} (${r.key}) was reported ${r.outcome} but its value is in the committed state` });
        }
        break;
      case 'pending':
      case 'speculative':
      case 'unknown':
        v.unknown++;
        break;
    }
  }
  for (const k of input.state.keys()) {
    if (k.startsWith(input.keyPrefix) && !byKey.has(k)) {
      v.orphans++;
      note({ invariant: 'no-orphans', message: `key ${k} is in the committed state but no client sent it` });
    }
  }
  // Prefix per session and resume segment, across world-lines.
  const entries: (PrefixEntry & { key: string })[] = [];
  for (const r of input.records) {
    if (r.answerWorldLine === null && r.outcome !== 'rolled-back') continue; // never answered: it may never have reached the session
    entries.push({ session: r.session, resumes: r.resumes, q: r.q, survived: input.state.has(r.key), answerWorldLine: r.answerWorldLine, key: r.key });
  }
  for (const message of prefixBreaks(entries, (e) => `put ${e.key}`)) {
    v.prefixViolations++;
    note({ invariant: 'prefix', message });
  }
  // Exactly once.
  for (const [key, apps] of input.applications) {
    const surviving: Application[] = [];
    const seen = new Set<string>();
    const deletions: Application[] = [];
    for (const a of apps) {
      const id = `${a.del === true ? 'del ' : ''}${a.node}@${a.version}/${a.worldLine}`;
      if (seen.has(id)) continue; // the same event seen twice (a resync): one application
      seen.add(id);
      // Not known how a later world-line started: not counted.
      if (input.restorePoints.survived(a.node, a.version, a.worldLine) !== true) continue;
      if (a.del === true) deletions.push(a);
      else surviving.push(a);
    }
    let twice = surviving.length > 1;
    if (input.moves !== undefined) {
      // Each node's own history of the key, in time order: it holds the key after an application, not
      // after a deletion. An application at B is a second one if another node A (not removed while down)
      // held the key then, unless A deleted it (a hand-off to B) within MOVE_SLACK_MS after: a node
      // reports a version's changes when it closes it, so the deletion may be reported after the install.
      const order = (a: Application, b: Application): number => (a.inc ?? 0) - (b.inc ?? 0) || (a.t ?? 0) - (b.t ?? 0);
      const byNode = new Map<NodeId, Application[]>();
      for (const a of [...surviving, ...deletions]) byNode.set(a.node, [...(byNode.get(a.node) ?? []), a]);
      for (const l of byNode.values()) l.sort(order);
      twice = false;
      for (const a of surviving) {
        for (const [n, l] of byNode) {
          if (input.moves.removedDown.has(n)) continue;
          const before = l.filter((e) => e !== a && order(e, a) < 0);
          const last = before[before.length - 1];
          if (last === undefined || last.del === true) continue;
          if (n !== a.node && l.some((e) => e.del === true && order(e, a) >= 0 && (e.inc ?? 0) === (a.inc ?? 0) && (e.t ?? 0) - (a.t ?? 0) <= MOVE_SLACK_MS))
            continue;
          twice = true;
        }
      }
    }
    if (twice) {
      v.duplicates++;
      note({
        invariant: 'exactly-once',
        message: `${key} was applied ${surviving.length} times in versions that all survived (kept by every later world-line and in the final cut): ${surviving.map((a) => `${a.node}@${a.version} (world-line ${a.worldLine})`).join(', ')}; all applications: ${apps.map((a) => `${a.del === true ? 'deleted at ' : ''}${a.node}@${a.version} (world-line ${a.worldLine}${a.t !== undefined ? `, t=${a.t}` : ''})`).join(', ')}`,
      });
    }
  }
  return v;
}

/** Cuts seen through the API: within a world-line they only grow, and a new world-line never starts below any cut announced before. */
export class CutWatch {
  private readonly maxSeen: Cut = {};
  private worldLine = 0;
  private last: Cut = {};
  readonly notes: ViolationNote[] = [];
  violations = 0;

  /** `only`: watch these nodes alone (others may be removed and added again under the same id, starting over). */
  constructor(private readonly only: ReadonlySet<NodeId> | null = null) {}

  observe(worldLine: WorldLine, full: Cut, where: string): void {
    const cut: Cut = {};
    for (const n in full) if (this.only === null || this.only.has(n)) cut[n] = full[n]!;
    if (worldLine < this.worldLine) {
      this.fail(`${where}: world-line went back from ${this.worldLine} to ${worldLine}`);
      return;
    }
    for (const n in cut) {
      const c = cut[n]!;
      if (worldLine === this.worldLine && c < (this.last[n] ?? 0))
        this.fail(`${where}: the cut of ${n} went back from ${this.last[n]} to ${c} within world-line ${worldLine}`);
      else if (worldLine > this.worldLine && c < (this.maxSeen[n] ?? 0))
        this.fail(`${where}: world-line ${worldLine} starts with ${n}@${c}, below the cut ${n}@${this.maxSeen[n]} announced before`);
      if (c > (this.maxSeen[n] ?? 0)) this.maxSeen[n] = c;
    }
    this.worldLine = worldLine;
    this.last = { ...cut };
  }

  /** The highest cut of each node ever announced. */
  get highest(): Readonly<Cut> {
    return this.maxSeen;
  }

  private fail(message: string): void {
    this.violations++;
    if (this.notes.length < NOTES_MAX) this.notes.push({ invariant: 'cut-safety', message });
  }
}
