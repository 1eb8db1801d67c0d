import type { Json } from '@dse/shared';
import { SnapshotSchedule } from '../core/checkpoint';
import type { CheckpointRecord, Storage } from '../core/ports';
import { Rng } from '../sim/rng';
import { esc, lineChart, reportPage, table } from './report/page';

/**
 * Big states (issue 20, item 5): one node whose state holds `keys` keys, a share of them changed each
 * version. Per state size:
 *
 * - the first checkpoint (a full snapshot) and delta checkpoints at 0.1 % and 1 % of the keys changed;
 * - the runtime's schedule at 1 % changed: the node's own `SnapshotSchedule` chooses full or delta for
 *   each version, as `closeVersion` does, and the coordinator's `prune` runs at the newest version every
 *   `pruneEvery` versions (live: every second, about 10 versions of a million-key node). It runs whole
 *   cycles (from a full snapshot to the second full one after it) and gives the mean cost of a version,
 *   capturing, writing and pruning, against a delta's in the same run;
 * - restore: of the newest version just before the schedule's full snapshot (the longest delta chain it
 *   leaves, as pruning left it), and of that full snapshot.
 */

export interface BigBackend {
  name: string;
  storage: Storage;
  reset(): Promise<void>;
}

export interface BigRow {
  backend: string;
  keys: number;
  /** The first checkpoint: every key. */
  fullMs: number;
  /** Delta checkpoints, median of several, per share of keys changed. */
  deltas: { changed: number; ms: number; usPerChangedKey: number }[];
  /** The runtime's schedule at 1 % changed, measured over whole cycles. */
  schedule: {
    versions: number;
    fullSnapshots: number;
    /** Versions from one full snapshot to the next (the last cycle). */
    cycle: number;
    /** Mean ms a version: capture and write; prune (every `pruneEvery` versions, spread over them); both. */
    writeMs: number;
    /** Mean ms to capture and write, of the delta versions and of the full ones, in this run. */
    deltaMs: number;
    fullMs: number;
    pruneEvery: number;
    pruneMs: number;
    totalMs: number;
    /** `totalMs` over a delta's cost in this run, `deltaMs` (1 = in proportion to the keys changed). */
    overDelta: number;
    /** The slowest prune. */
    pruneMaxMs: number;
    /** Rows the node holds at the end (after the last prune). */
    rows: number | null;
  };
  /**
   * Restore of the newest version just before the schedule's full snapshot, `chain` deltas after its
   * last one (pruning may have shortened what is read: `rowsAtRestore`, the rows the node then held), and
   * of that full snapshot.
   */
  restoreAfterChainMs: number;
  chain: number;
  rowsAtRestore: number | null;
  restoreFullMs: number;
}

const round = (x: number, d = 2): number => Number(x.toFixed(d));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** One node's state and its checkpoints. */
class BigState {
  private readonly state = new Map<string, Json>();
  private version = 0;

  constructor(
    readonly node: string,
    private readonly keys: number,
  ) {
    for (let i = 0; i < keys; i++) this.state.set(`key:${i}`, { n: i, at: 0, s: 'initial value' });
  }

  private readonly rng = new Rng(12345);

  private rand(): number {
    return this.rng.next();
  }

  full(): CheckpointRecord {
    const v = ++this.version;
    return { node: this.node, worldLine: 1, version: v, prevVersion: v - 1, deps: {}, full: true, changes: { set: [...this.state], del: [] } };
  }

  /** Changes `changed` distinct keys of the state; returns them (the node's dirty keys of a version). */
  change(changed: number): Map<string, Json> {
    const v = this.version + 1;
    const set = new Map<string, Json>();
    while (set.size < changed) {
      const k = `key:${Math.floor(this.rand() * this.keys)}`;
      const val: Json = { n: Math.floor(this.rand() * 1e6), at: v, s: 'changed value' };
      this.state.set(k, val);
      set.set(k, val);
    }
    return set;
  }

  delta(changed: number): CheckpointRecord {
    const set = this.change(changed);
    const v = ++this.version;
    return { node: this.node, worldLine: 1, version: v, prevVersion: v - 1, deps: {}, full: false, changes: { set: [...set], del: [] } };
  }

  /** The next version, whose changes were `dirty`, as the node's schedule records it (full or delta). */
  scheduled(schedule: SnapshotSchedule, dirty: Map<string, Json>): CheckpointRecord {
    const v = ++this.version;
    const { full, changes } = schedule.capture(this.state, dirty, false);
    return { node: this.node, worldLine: 1, version: v, prevVersion: v - 1, deps: {}, full, changes };
  }

  get top(): number {
    return this.version;
  }
}

async function timed(op: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await op();
  return performance.now() - t;
}

async function restoreMs(b: BigBackend, node: string, version: number, keys: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    times.push(
      await timed(async () => {
        const cp = await b.storage.loadCheckpoint(node, version);
        if (cp === null || cp.state.size !== keys) throw new Error(`restore of ${node}@${version}: wrong state read back (${cp?.state.size ?? 'none'} keys)`);
      }),
    );
  }
  return median(times);
}

/** Measures one backend at one state size. `rowCount`: rows a node holds, when the backend tells. */
export async function measureBig(
  b: BigBackend & { rowCount?: (node: string) => Promise<number> },
  keys: number,
  log: (s: string) => void,
  opts: { pruneEvery?: number } = {},
): Promise<BigRow> {
  const pruneEvery = opts.pruneEvery ?? 10;
  await b.reset();
  const s = new BigState(`big${keys}`, keys);
  const first = s.full();
  const fullMs = await timed(() => b.storage.writeCheckpoints([first]));
  log(`  ${b.name} ${keys} keys: full snapshot ${round(fullMs, 0)} ms`);
  const deltas: BigRow['deltas'] = [];
  for (const share of [0.001, 0.01]) {
    const changed = Math.max(1, Math.round(keys * share));
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = s.delta(changed);
      times.push(await timed(() => b.storage.writeCheckpoints([r])));
    }
    const ms = median(times);
    deltas.push({ changed, ms: round(ms), usPerChangedKey: round((ms * 1000) / changed, 3) });
    log(`  ${b.name} ${keys} keys: delta of ${changed} keys ${round(ms)} ms`);
  }

  // The runtime's schedule at 1 % changed, from a full snapshot, until the second full one after it.
  await b.reset();
  const changed = Math.round(keys * 0.01);
  // As node.ts makes it.
  const schedule = new SnapshotSchedule();
  const base = s.full();
  schedule.reset(); // the node's state is that of `base`, a full snapshot
  const fullAgainMs = await timed(() => b.storage.writeCheckpoints([base]));
  let versions = 0;
  let fulls = 0;
  let deltaTotal = 0;
  let deltaCount = 0;
  let fullTotal = 0;
  let pruneTotal = 0;
  let pruneMax = 0;
  let lastFull = base.version;
  let cycle = 0;
  let chain = 0;
  let rowsAtRestore: number | null = null;
  let restoreAfterChainMs = NaN;
  let restoreFullMs = NaN;
  const cap = 8 * Math.ceil(keys / changed) + 8;
  while (fulls < 2) {
    if (versions >= cap) throw new Error(`schedule: no full snapshot in ${cap} versions`);
    const dirty = s.change(changed);
    const t = performance.now();
    const r = s.scheduled(schedule, dirty);
    const captured = performance.now() - t;
    if (r.full && fulls === 1) {
      // Before the last full snapshot: the newest version ends the longest chain the schedule writes.
      chain = r.version - 1 - lastFull;
      restoreAfterChainMs = await restoreMs(b, s.node, r.version - 1, keys);
      rowsAtRestore = b.rowCount === undefined ? null : await b.rowCount(s.node);
    }
    const ms = captured + (await timed(() => b.storage.writeCheckpoints([r])));
    versions++;
    if (!r.full) {
      deltaTotal += ms;
      deltaCount++;
    } else {
      fullTotal += ms;
      fulls++;
      cycle = r.version - lastFull;
      lastFull = r.version;
    }
    if (versions % pruneEvery === 0) {
      const ms = await timed(() => b.storage.prune(s.node, r.version));
      pruneTotal += ms;
      pruneMax = Math.max(pruneMax, ms);
    }
  }
  restoreFullMs = await restoreMs(b, s.node, s.top, keys);
  const delta = deltaTotal / deltaCount;
  const writeMs = (deltaTotal + fullTotal) / versions;
  const pruneMs = pruneTotal / versions;
  const row: BigRow = {
    backend: b.name,
    keys,
    fullMs: round(median([fullMs, fullAgainMs]), 1),
    deltas,
    schedule: {
      versions,
      fullSnapshots: fulls,
      cycle,
      writeMs: round(writeMs),
      deltaMs: round(delta),
      fullMs: round(fullTotal / fulls, 1),
      pruneEvery,
      pruneMs: round(pruneMs),
      totalMs: round(writeMs + pruneMs),
      overDelta: round((writeMs + pruneMs) / delta),
      pruneMaxMs: round(pruneMax, 1),
      rows: b.rowCount === undefined ? null : await b.rowCount(s.node),
    },
    restoreAfterChainMs: round(restoreAfterChainMs, 1),
    chain,
    rowsAtRestore,
    restoreFullMs: round(restoreFullMs, 1),
  };
  const sc = row.schedule;
  log(
    `  ${b.name} ${keys} keys: schedule at 1 %: ${sc.versions} versions, a full snapshot every ${sc.cycle}; a version costs ${sc.writeMs} ms to write (deltas ${sc.deltaMs} ms, full snapshots ${sc.fullMs} ms) + ${sc.pruneMs} ms of pruning (every ${pruneEvery}, slowest ${sc.pruneMaxMs} ms) = ${sc.overDelta}x a delta; ${sc.rows ?? '?'} rows held`,
  );
  log(
    `  ${b.name} ${keys} keys: restore just before a full snapshot (${chain} deltas after the last, ${rowsAtRestore ?? '?'} rows held) ${row.restoreAfterChainMs} ms, of a full snapshot ${row.restoreFullMs} ms`,
  );
  return row;
}

/** The big-state report: delta cost against keys changed (one line per backend and state size), restore times, policies. */
export function renderBigHtml(r: { startedAt: string; command: string; loadAvg: number[]; rows: BigRow[] }): string {
  const colors = ['#E69F00', '#0072B2', '#009E73', '#D55E00', '#CC79A7', '#56B4E9'];
  const markers = ['circle', 'square', 'triangle', 'diamond'] as const;
  const series = r.rows.map((row, i) => ({
    name: `${row.backend}, ${row.keys.toLocaleString('en')} keys`,
    color: colors[i % colors.length]!,
    dash: row.backend === 'postgres' ? '6 3' : '',
    marker: markers[i % markers.length]!,
    points: row.deltas.map((d): [number, number] => [d.changed, d.ms]),
  }));
  const chart = lineChart({
    title: 'Delta checkpoint: write time against keys changed',
    xLabel: 'keys changed in the version (log)',
    yLabel: 'ms per checkpoint (log)',
    xLog: true,
    yLog: true,
    series,
  });
  return reportPage({
    title: 'DSE big states: checkpoint and restore',
    note: `${esc(r.startedAt)} · <code>${esc(r.command)}</code> · load average ${r.loadAvg.map((x) => x.toFixed(2)).join(' ')} at start. One node; values like <code>{"n":…,"at":…,"s":"…"}</code>. Figures from one run on a shared machine: read ratios and slopes.`,
    body: `${chart}
${table(
  [
    'backend',
    'keys',
    'full snapshot ms',
    'delta 0.1 %',
    'delta 1 %',
    'schedule at 1 %: versions a full snapshot',
    'ms a delta',
    'ms a full snapshot',
    'ms a version, writing',
    'ms a version, pruning',
    'ms a version (× a delta)',
    'restore before a full snapshot ms',
    'restore full ms',
  ],
  r.rows.map((x) => [
    x.backend,
    x.keys,
    x.fullMs,
    ...x.deltas.map((d) => `${d.changed}: ${d.ms} ms (${d.usPerChangedKey} µs/key)`),
    x.schedule.cycle,
    x.schedule.deltaMs,
    x.schedule.fullMs,
    x.schedule.writeMs,
    `${x.schedule.pruneMs} (max ${x.schedule.pruneMaxMs})`,
    `${x.schedule.totalMs} (${x.schedule.overDelta}×)`,
    `${x.restoreAfterChainMs} (${x.chain} deltas, ${x.rowsAtRestore ?? '?'} rows)`,
    x.restoreFullMs,
  ]),
)}`,
    raw: r,
  });
}
