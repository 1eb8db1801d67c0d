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
}

export interface Application {
  node: NodeId;
  worldLine: WorldLine;
  version: number;
}

/** What the service scenarios check besides the invariants every scenario shares (verify-services.ts). */
export type ServiceInvariant = 'wal-log' | 'broker-order' | 'broker-groups' | 'saga' | 'stock' | 'above-cut';

export interface ViolationNote {
  invariant: 'durability' | 'exactly-once' | 'no-orphans' | 'prefix' | 'cut-safety' | 'liveness' | 'server' | ServiceInvariant;
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
 * - durability: every put reported committed is in the final committed state with its value;
 * - no orphans: no put reported rolled back or refused is in it, and no key of ours that no client sent;
 * - prefix: within one world-line a session's answered requests survive as a prefix (a later one
 *   carries the earlier one's dependencies, so it cannot survive without it);
 * - exactly once: a put's surviving applications (versions at or below the cut their world-line ended
 *   with) number at most one.
 */
export function checkKv(input: {
  records: readonly PutRecord[];
  /** App keys of the final committed state, all nodes together. */
  state: ReadonlyMap<string, Json>;
  /** Our key prefix: keys in the state starting with it must belong to a record. */
  keyPrefix: string;
  /** Applications of our keys (from `stateChanged` events). */
  applications: ReadonlyMap<string, readonly Application[]>;
  /** The cut each world-line started from (`recoveryCuts`, `worldLineChanged`). */
  startCuts: ReadonlyMap<WorldLine, Cut>;
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
          note({ invariant: 'durability', message: `${r.session}#${r.q} (${r.key}) was reported committed but the committed state has ${here === undefined ? 'no such key' : JSON.stringify(here)}` });
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
  // Prefix per session and answer world-line.
  const groups = new Map<string, PutRecord[]>();
  for (const r of input.records) {
    if (r.answerWorldLine === null) continue;
    const g = `${r.session}\u0000${r.answerWorldLine}`;
    let l = groups.get(g);
    if (l === undefined) groups.set(g, (l = []));
    l.push(r);
  }
  for (const l of groups.values()) {
    l.sort((a, b) => a.q - b.q);
    let firstMissing: PutRecord | null = null;
    for (const r of l) {
      const present = input.state.has(r.key);
      if (!present && firstMissing === null) firstMissing = r;
      if (present && firstMissing !== null) {
        v.prefixViolations++;
        note({ invariant: 'prefix', message: `session ${r.session}: request ${r.q} survived but ${firstMissing.q}, answered before it in the same world-line ${r.answerWorldLine}, did not` });
        break;
      }
    }
  }
  // Exactly once.
  for (const [key, apps] of input.applications) {
    let surviving = 0;
    const seen = new Set<string>();
    for (const a of apps) {
      const id = `${a.node}@${a.version}/${a.worldLine}`;
      if (seen.has(id)) continue; // the same event seen twice (a resync): one application
      seen.add(id);
      const end = input.startCuts.get(a.worldLine + 1);
      if (end === undefined) continue; // not known how this world-line ended: not counted
      if (a.version <= (end[a.node] ?? 0)) surviving++;
    }
    if (surviving > 1) {
      v.duplicates++;
      note({ invariant: 'exactly-once', message: `${key} was applied ${surviving} times in versions that all survived: ${apps.map((a) => `${a.node}@${a.version} (world-line ${a.worldLine})`).join(', ')}` });
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
      if (worldLine === this.worldLine && c < (this.last[n] ?? 0)) this.fail(`${where}: the cut of ${n} went back from ${this.last[n]} to ${c} within world-line ${worldLine}`);
      else if (worldLine > this.worldLine && c < (this.maxSeen[n] ?? 0)) this.fail(`${where}: world-line ${worldLine} starts with ${n}@${c}, below the cut ${n}@${this.maxSeen[n]} announced before`);
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
