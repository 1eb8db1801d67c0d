import type { CostRow } from '../coordinator-cost';
import { esc, lineChart, reportPage, table, type SeriesStyle } from './page';

/** One configuration of the simulator at one size (bench:sim). */
export interface SimRow {
  nodes: number;
  mode: string;
  cut: string;
  /** `before`: the coordinator recomputed the cut from the whole graph on every report. */
  coordinator: 'before' | 'after';
  seeds: number;
  seedsPerMinute: number;
  /** Per minute of this process's CPU time (what a shared machine's load does not change). */
  seedsPerCpuMinute: number;
  simRequestsPerSec: number;
  requestsPerSeed: number;
  crashesPerSeed: number;
  violations: number;
  reportsPerSeed: number;
  cutChangesPerSeed: number;
  /** Medians of the coordinator's time per report (all, those that moved the cut, the others); and the mean. */
  coordinatorUsPerReport: number | null;
  coordinatorMeanUsPerReport: number | null;
  coordinatorUsPerCutChange: number | null;
  coordinatorUsPerOtherReport: number | null;
  /** The coordinator's share of the simulator's time. */
  coordinatorShareOfTime: number;
}

export interface ChainRelease {
  algorithm: 'before' | 'after';
  pending: number;
  ms: number;
  usPerCommittedVersion: number;
}

export interface ScaleResult {
  benchmark: 'scale';
  startedAt: string;
  command: string;
  machine: { cpus: number; loadAvg: number[]; node: string };
  seedsAtN4: number;
  workload: { sessions: number; requestsPerSession: number };
  sim: SimRow[];
  steady: CostRow[];
  chain: CostRow[];
  chainNodes: number;
  releases: ChainRelease[];
  elapsedMs: number;
}

/** Okabe-Ito colours, one per configuration; `before` in grey. */
const STYLE: Record<string, SeriesStyle> = {
  'speculative/exact': { color: '#E69F00', dash: '', marker: 'circle' },
  'speculative/cheap': { color: '#D55E00', dash: '6 3', marker: 'diamond' },
  'durable/exact': { color: '#0072B2', dash: '', marker: 'square' },
  'durable/cheap': { color: '#56B4E9', dash: '6 3', marker: 'triangle' },
  before: { color: '#777777', dash: '2 3', marker: 'circle' },
  after: { color: '#009E73', dash: '', marker: 'square' },
};

/** The scale report: the simulator's speed and the coordinator's cost against N, and against the graph's length. */
export function renderScaleHtml(r: ScaleResult): string {
  const sizes = [...new Set(r.sim.map((s) => s.nodes))].sort((a, b) => a - b);
  const simSeries = (pick: (s: SimRow) => number | null) => {
    const keys = [...new Set(r.sim.map((s) => (s.coordinator === 'before' ? 'before' : `${s.mode}/${s.cut}`)))];
    return keys.map((k) => ({
      name: k === 'before' ? 'speculative/exact, coordinator before its cut index' : k,
      ...STYLE[k]!,
      points: r.sim
        .filter((s) => (s.coordinator === 'before' ? 'before' : `${s.mode}/${s.cut}`) === k)
        .map((s): [number, number] => [s.nodes, pick(s) ?? NaN])
        .sort((a, b) => a[0] - b[0]),
    }));
  };
  const costSeries = (rows: CostRow[], x: (c: CostRow) => number, y: (c: CostRow) => number | null) =>
    (['before', 'after'] as const).map((a) => ({
      name: a === 'before' ? 'before: the cut from the whole graph' : 'after: the cut index',
      ...STYLE[a]!,
      points: rows.filter((c) => c.algorithm === a).map((c): [number, number] => [x(c), y(c) ?? NaN]),
    }));
  const charts = [
    lineChart({
      title: 'Seeds checked a CPU-minute against N',
      xLabel: 'nodes (N)',
      yLabel: 'seeds / minute of CPU time, one core (log)',
      xLog: true,
      yLog: true,
      xTicks: sizes,
      series: simSeries((s) => s.seedsPerCpuMinute),
    }),
    lineChart({
      title: 'Simulated requests a second against N',
      xLabel: 'nodes (N)',
      yLabel: 'requests / s, one core (log)',
      xLog: true,
      yLog: true,
      xTicks: sizes,
      series: simSeries((s) => s.simRequestsPerSec),
    }),
    lineChart({
      title: 'Coordinator CPU per persisted report (in the simulator)',
      xLabel: 'nodes (N)',
      yLabel: 'µs per report (log)',
      xLog: true,
      yLog: true,
      xTicks: sizes,
      series: simSeries((s) => s.coordinatorUsPerReport),
    }),
    lineChart({
      title: 'Coordinator CPU per cut change (in the simulator)',
      xLabel: 'nodes (N)',
      yLabel: 'µs per report that moved the cut (log)',
      xLog: true,
      yLog: true,
      xTicks: sizes,
      series: simSeries((s) => s.coordinatorUsPerCutChange),
    }),
    lineChart({
      title: 'Coordinator alone: CPU per report against N (steady)',
      xLabel: 'nodes (N)',
      yLabel: 'µs per report (log)',
      xLog: true,
      yLog: true,
      xTicks: sizes,
      series: costSeries(
        r.steady,
        (c) => c.nodes,
        (c) => c.usPerReport,
      ),
    }),
    lineChart({
      title: `Coordinator alone: CPU per report against uncommitted versions (${r.chainNodes} nodes)`,
      xLabel: 'uncommitted versions in the graph (log)',
      yLabel: 'µs per report (log)',
      xLog: true,
      yLog: true,
      series: costSeries(
        r.chain,
        (c) => c.pending,
        (c) => c.usPerReport,
      ),
    }),
  ];
  const title = `DSE scale benchmark — simulator and coordinator at N = ${sizes.join(', ')}`;
  return reportPage({
    title,
    note: `${esc(r.startedAt)} · <code>${esc(r.command)}</code> · machine: ${r.machine.cpus} CPUs, load average ${r.machine.loadAvg.map((x) => x.toFixed(2)).join(' ')} at start, Node ${esc(r.machine.node)} · ${(r.elapsedMs / 1000).toFixed(0)} s.
One process, one core. Each seed: ${r.workload.sessions} sessions of ${r.workload.requestsPerSession} requests with faults (node and coordinator crashes, message loss, failing storage); ${r.seedsAtN4} seeds at N = 4, seeds × 4 / N (at least 3) at N.
The coordinator's cost is the median time of its handling of one report in the single-threaded simulator (a call that waited for a CPU on the shared machine moves the mean, not the median); a report that moves the cut includes handing the cut to the simulated network (one message per live node and client).
Figures from one run on a shared machine: read the curves' shapes and ratios, not absolute numbers.`,
    body: `<div class="charts">${charts.join('')}</div>
<h2>Simulator</h2>
${table(
  [
    'N',
    'mode',
    'cut',
    'coordinator',
    'seeds',
    'seeds/min',
    'seeds/CPU-min',
    'sim requests/s',
    'requests/seed',
    'crashes/seed',
    'violations',
    'reports/seed',
    'cut changes/seed',
    'µs/report',
    'µs/cut change',
    'µs/other report',
    'µs/report (mean)',
    'coordinator share of CPU',
  ],
  r.sim.map((s) => [
    s.nodes,
    s.mode,
    s.cut,
    s.coordinator,
    s.seeds,
    s.seedsPerMinute,
    s.seedsPerCpuMinute,
    s.simRequestsPerSec,
    s.requestsPerSeed,
    s.crashesPerSeed,
    s.violations,
    s.reportsPerSeed,
    s.cutChangesPerSeed,
    s.coordinatorUsPerReport,
    s.coordinatorUsPerCutChange,
    s.coordinatorUsPerOtherReport,
    s.coordinatorMeanUsPerReport,
    `${(s.coordinatorShareOfTime * 100).toFixed(1)} %`,
  ]),
)}
<h2>Coordinator alone</h2>
<p class="note">Steady: every node persists its next version each round, depending on the previous version of two other nodes. Chains: n1's first version is not persisted until the end; the ${r.chainNodes - 1} other nodes persist version after version, each depending on it and on another node's previous one, so nothing commits and the graph grows; then n1's version arrives and everything commits in one report.</p>
${table(
  [
    'workload',
    'algorithm',
    'N',
    'uncommitted versions',
    'reports',
    'µs/report (median)',
    'µs/report (mean)',
    'cut changes',
    'µs/cut change (median)',
    'µs/other report (median)',
  ],
  [...r.steady.map((c) => ['steady', c] as const), ...r.chain.map((c) => ['chains', c] as const)].map(([w, c]) => [
    w,
    c.algorithm,
    c.nodes,
    c.pending,
    c.reports,
    c.usPerReport,
    c.meanUsPerReport,
    c.cutChanges,
    c.usPerCutChange,
    c.usPerOtherReport,
  ]),
)}
${table(
  ['n1 arrives', 'versions committed', 'CPU ms', 'µs per committed version'],
  r.releases.map((x) => [x.algorithm, x.pending, x.ms, x.usPerCommittedVersion]),
)}`,
    raw: r,
  });
}
