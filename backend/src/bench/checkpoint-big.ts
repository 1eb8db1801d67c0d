import type { Json } from '@dse/shared';
import type { CheckpointRecord, Storage } from '../core/ports';
import { Rng } from '../sim/rng';
import { esc, lineChart, reportPage, table } from './report/page';

/**
 * Big states (issue 20, item 5): one node whose state holds `keys` keys, a share of them changed each
 * version. Per state size: the first checkpoint (a full snapshot), a delta checkpoint at 0.1 % and 1 %
 * of the keys changed, a full snapshot again, and the restore of the newest version after the longest
 * delta chain the runtime writes (31 deltas after a full snapshot, `fullSnapshotEvery` 32), and after a
 * full snapshot alone. Then what a version costs on average under two policies for full snapshots:
 *
 * - the runtime's: a full snapshot every 32 checkpoints, or once the deltas since the last one changed as
 *   many keys as the state holds (node.ts, `closeVersion`);
 * - by size only: a full snapshot once the deltas since the last one changed as many keys as the state
 *   holds; a restore then reads at most about twice the state.
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
  /** Restore of the newest version: after 31 deltas of 1 % each (the runtime's longest chain), and of a full snapshot. */
  restoreAfterChainMs: number;
  restoreFullMs: number;
  /** Mean cost of a version at 1 % changed under each policy, and its ratio to a delta's cost (1 = in proportion to the keys changed). */
  perVersionMs: { runtime: number; bySize: number };
  perVersionOverDelta: { runtime: number; bySize: number };
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

  delta(changed: number): CheckpointRecord {
    const v = ++this.version;
    const set = new Map<string, Json>();
    while (set.size < changed) {
      const k = `key:${Math.floor(this.rand() * this.keys)}`;
      const val: Json = { n: Math.floor(this.rand() * 1e6), at: v, s: 'changed value' };
      this.state.set(k, val);
      set.set(k, val);
    }
    return { node: this.node, worldLine: 1, version: v, prevVersion: v - 1, deps: {}, full: false, changes: { set: [...set], del: [] } };
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

/** Measures one backend at one state size. */
export async function measureBig(b: BigBackend, keys: number, log: (s: string) => void): Promise<BigRow> {
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
  // The longest chain the runtime writes: a full snapshot, then 31 deltas of 1 %.
  await b.reset();
  const again = s.full();
  const fullAgainMs = await timed(() => b.storage.writeCheckpoints([again]));
  const fullVersion = again.version;
  const changed = Math.round(keys * 0.01);
  for (let i = 0; i < 31; i++) await b.storage.writeCheckpoints([s.delta(changed)]);
  const restoreChain: number[] = [];
  const restoreFull: number[] = [];
  for (let i = 0; i < 3; i++) {
    restoreChain.push(
      await timed(async () => {
        const cp = await b.storage.loadCheckpoint(s.node, s.top);
        if (cp === null || cp.state.size !== keys) throw new Error(`restore: wrong state read back (${cp?.state.size ?? 'none'} keys)`);
      }),
    );
    restoreFull.push(
      await timed(async () => {
        const cp = await b.storage.loadCheckpoint(s.node, fullVersion);
        if (cp === null || cp.state.size !== keys) throw new Error('restore: wrong state read back');
      }),
    );
  }
  const full = median([fullMs, fullAgainMs]);
  const delta = deltas.find((d) => d.changed === changed)!.ms;
  // The runtime: a full snapshot every 32 checkpoints (deltas of 1 % reach the state's size only after 100).
  const every = Math.min(32, Math.ceil(keys / changed));
  const runtime = (full + (every - 1) * delta) / every;
  // By size only: a full snapshot once the deltas since the last one changed as many keys as the state holds.
  const bySizeEvery = Math.ceil(keys / changed) + 1;
  const bySize = (full + (bySizeEvery - 1) * delta) / bySizeEvery;
  const row: BigRow = {
    backend: b.name,
    keys,
    fullMs: round(full, 1),
    deltas,
    restoreAfterChainMs: round(median(restoreChain), 1),
    restoreFullMs: round(median(restoreFull), 1),
    perVersionMs: { runtime: round(runtime), bySize: round(bySize) },
    perVersionOverDelta: { runtime: round(runtime / delta), bySize: round(bySize / delta) },
  };
  log(
    `  ${b.name} ${keys} keys: restore after 31 deltas ${row.restoreAfterChainMs} ms, of a full snapshot ${row.restoreFullMs} ms; a version costs ${row.perVersionOverDelta.runtime}x a delta (runtime's policy), ${row.perVersionOverDelta.bySize}x (by size only)`,
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
    'restore after 31 deltas ms',
    'restore full ms',
    "ms a version, runtime's policy (× a delta)",
    'ms a version, by size only (× a delta)',
  ],
  r.rows.map((x) => [
    x.backend,
    x.keys,
    x.fullMs,
    ...x.deltas.map((d) => `${d.changed}: ${d.ms} ms (${d.usPerChangedKey} µs/key)`),
    x.restoreAfterChainMs,
    x.restoreFullMs,
    `${x.perVersionMs.runtime} (${x.perVersionOverDelta.runtime}×)`,
    `${x.perVersionMs.bySize} (${x.perVersionOverDelta.bySize}×)`,
  ]),
)}`,
    raw: r,
  });
}
