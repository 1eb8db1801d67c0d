import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { CutKind, Mode } from '@dse/shared';
import { commandLine } from '../command-line';
import type { SimOptions } from '../sim/world';
import { DEFAULT_SIM_OPTIONS, emptyCoordinatorMeter, runSeed } from '../sim/world';
import type { CostRow } from './coordinator-cost';
import { chainCost, cpuMsSince, medianUs, steadyCost } from './coordinator-cost';
import type { ChainRelease, ScaleResult, SimRow } from './report/scale-html';
import { renderScaleHtml } from './report/scale-html';

/**
 * The simulator at several sizes (issue 20, items 1 and 2). Single process, one core: figures are per core.
 *
 * - per N and per mode and cut: seeds a minute (wall, and per minute of this process's CPU: the machine
 *   may be shared) and simulated requests a second (each seed: the default
 *   workload, 8 sessions of 26 requests, with at least 2 node crashes and a coordinator crash), and the
 *   coordinator's time per persisted report and per cut change (medians), measured inside the simulator;
 * - the same seeds (speculative, exact cut) with the coordinator as it was before its cut index
 *   (`before`: the cut recomputed from the whole graph on every report);
 * - the coordinator alone (coordinator-cost.ts): per report against N in a steady workload, and against
 *   the length of the graph of uncommitted versions, before and after.
 *
 * Writes `bench-results/scale-<time>.{json,html}`; the last line on stdout is the result as one JSON object.
 *
 *   npm run bench:sim -- [--nodes 4,16,64,256] [--seeds 100] [--no-before] [--no-coordinator] [--out bench-results] [--json]
 *
 * `--seeds` is the count at N = 4; at N nodes it is seeds × 4 / N (at least 3), so that every size
 * simulates about as many node-steps.
 */
const USAGE = 'usage: npm run bench:sim -- [--nodes 4,16,64,256] [--seeds 100] [--no-before] [--no-coordinator] [--out bench-results] [--json]';
const { values, number, numbers } = commandLine(
  {
    options: {
      nodes: { type: 'string', default: '4,16,64,256' },
      seeds: { type: 'string', default: '100' },
      'no-before': { type: 'boolean', default: false },
      'no-coordinator': { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench-results' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  },
  USAGE,
);
const seeds = number('seeds', values.seeds, { min: 1, integer: true });
const sizes = numbers('nodes', values.nodes, { min: 1, max: 1024, integer: true });
const out = (s: string): void => void (values.json ? process.stderr : process.stdout).write(`${s}\n`);
const seedsAt = (n: number): number => Math.max(3, Math.round((seeds * 4) / n));

const configs: [Mode, CutKind][] = [
  ['speculative', 'exact'],
  ['speculative', 'cheap'],
  ['durable', 'exact'],
  ['durable', 'cheap'],
];
const started = new Date();
const loadAvg = os.loadavg();
const t0 = performance.now();
const us = (ms: number, count: number): number | null => (count > 0 ? Number(((ms / count) * 1000).toFixed(2)) : null);

/** Runs `count` seeds of one configuration, timed and metered. */
async function simRow(nodes: number, mode: Mode, cutKind: CutKind, count: number, coordinator: 'before' | 'after'): Promise<SimRow> {
  const meter = emptyCoordinatorMeter();
  let requests = 0;
  let kills = 0;
  let violations = 0;
  const startedAt = performance.now();
  const cpu0 = process.cpuUsage();
  for (let seed = 1; seed <= count; seed++) {
    const opts: SimOptions = {
      ...DEFAULT_SIM_OPTIONS,
      seed,
      nodes,
      mode,
      cutKind,
      coordinatorMeter: meter,
      coordinatorWithoutCutIndex: coordinator === 'before',
    };
    const r = await runSeed(opts);
    requests += r.requests;
    kills += r.kills;
    violations += r.violations.length;
    if (process.stderr.isTTY) process.stderr.write(`\rN=${nodes} ${mode}/${cutKind}${coordinator === 'before' ? ' (before)' : ''}: ${seed}/${count} seeds   `);
  }
  const ms = performance.now() - startedAt;
  const cpuMs = cpuMsSince(cpu0);
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  return {
    nodes,
    mode,
    cut: cutKind,
    coordinator,
    seeds: count,
    seedsPerMinute: Number(((count / ms) * 60_000).toFixed(1)),
    seedsPerCpuMinute: Number(((count / cpuMs) * 60_000).toFixed(1)),
    simRequestsPerSec: Math.round((requests / ms) * 1000),
    requestsPerSeed: Math.round(requests / count),
    crashesPerSeed: Number((kills / count).toFixed(2)),
    violations,
    reportsPerSeed: Math.round(meter.reports / count),
    cutChangesPerSeed: Math.round(meter.cutChanges / count),
    coordinatorUsPerReport: medianUs([...meter.cutChangeUs, ...meter.otherReportUs]),
    coordinatorMeanUsPerReport: us(meter.reportMs, meter.reports),
    coordinatorUsPerCutChange: medianUs(meter.cutChangeUs),
    coordinatorUsPerOtherReport: medianUs(meter.otherReportUs),
    coordinatorShareOfTime: Number(((meter.reportMs + meter.otherMs) / ms).toFixed(4)),
  };
}

const sim: SimRow[] = [];
out(
  `simulator at N = ${sizes.join(', ')}: ${seeds} seeds at N = 4, seeds × 4 / N (at least 3) at N; one core; load average ${loadAvg.map((x) => x.toFixed(2)).join(' ')}`,
);
out(
  '    N  mode         cut    coord    seeds  seeds/min  seeds/CPU-min  sim req/s  req/seed  crashes/seed  violations  reports/seed  coord µs/report  µs/cut change  µs/other report  (medians)',
);
const printSim = (r: SimRow): void =>
  out(
    `${String(r.nodes).padStart(5)}  ${r.mode.padEnd(11)}  ${r.cut.padEnd(5)}  ${r.coordinator.padEnd(6)}  ${String(r.seeds).padStart(5)}  ${String(r.seedsPerMinute).padStart(9)}  ${String(r.seedsPerCpuMinute).padStart(13)}  ${String(r.simRequestsPerSec).padStart(9)}  ${String(r.requestsPerSeed).padStart(8)}  ${String(r.crashesPerSeed).padStart(12)}  ${String(r.violations).padStart(10)}  ${String(r.reportsPerSeed).padStart(12)}  ${String(r.coordinatorUsPerReport ?? '—').padStart(15)}  ${String(r.coordinatorUsPerCutChange ?? '—').padStart(13)}  ${String(r.coordinatorUsPerOtherReport ?? '—').padStart(15)}`,
  );
for (const n of sizes) {
  for (const [mode, cutKind] of configs) {
    const row = await simRow(n, mode, cutKind, seedsAt(n), 'after');
    sim.push(row);
    printSim(row);
  }
  if (!values['no-before']) {
    const row = await simRow(n, 'speculative', 'exact', seedsAt(n), 'before');
    sim.push(row);
    printSim(row);
  }
}

const steady: CostRow[] = [];
const chain: CostRow[] = [];
const releases: ChainRelease[] = [];
const CHAIN_NODES = 8;
const CHAIN_LENGTHS = [10, 100, 1000, 4000];
/** Before: the graph's whole length is walked on every report; beyond this many versions per node the build alone takes minutes. */
const CHAIN_LENGTH_MAX_BEFORE = 1000;
if (!values['no-coordinator']) {
  out('\ncoordinator alone (CPU time), steady workload (every node persists a version a round; the cut moves on most reports)');
  out('    N  algorithm  reports  µs/report  cut changes  µs/cut change  µs/other report');
  for (const n of sizes) {
    for (const algorithm of ['before', 'after'] as const) {
      const r = await steadyCost(n, algorithm, Math.max(6, Math.round(2048 / n)));
      steady.push(r);
      out(
        `${String(n).padStart(5)}  ${algorithm.padEnd(9)}  ${String(r.reports).padStart(7)}  ${String(r.usPerReport).padStart(9)}  ${String(r.cutChanges).padStart(11)}  ${String(r.usPerCutChange ?? '—').padStart(13)}  ${String(r.usPerOtherReport ?? '—').padStart(15)}`,
      );
    }
  }
  out(`\ncoordinator alone, long chains of uncommitted versions (${CHAIN_NODES} nodes; n1's first version never persisted until the end)`);
  out('  uncommitted versions  algorithm  µs/report');
  for (const algorithm of ['before', 'after'] as const) {
    const lengths = CHAIN_LENGTHS.filter((l) => algorithm === 'after' || l <= CHAIN_LENGTH_MAX_BEFORE);
    const r = await chainCost(CHAIN_NODES, algorithm, lengths, 200);
    chain.push(...r.rows);
    releases.push({ algorithm, ...r.release });
    for (const row of r.rows) out(`${String(row.pending).padStart(22)}  ${algorithm.padEnd(9)}  ${String(row.usPerReport).padStart(9)}`);
    out(`  n1's version arrives (${algorithm}): ${r.release.ms} ms to commit ${r.release.pending} versions, ${r.release.usPerCommittedVersion} µs a version`);
  }
}

const result: ScaleResult = {
  benchmark: 'scale',
  startedAt: started.toISOString(),
  command: `npm run bench:sim -- ${process.argv.slice(2).join(' ')}`.trim(),
  machine: { cpus: os.cpus().length, loadAvg, node: process.version },
  seedsAtN4: seeds,
  workload: { sessions: DEFAULT_SIM_OPTIONS.sessions, requestsPerSession: DEFAULT_SIM_OPTIONS.requestsPerSession },
  sim,
  steady,
  chain,
  chainNodes: CHAIN_NODES,
  releases,
  elapsedMs: Math.round(performance.now() - t0),
};
const outDir = resolve(values.out);
mkdirSync(outDir, { recursive: true });
const base = join(outDir, `scale-${result.startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z')}`);
writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 1)}\n`);
writeFileSync(`${base}.html`, renderScaleHtml(result));
out(`\nreport: ${relative(process.cwd(), `${base}.html`) || `${base}.html`} (and .json)`);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(sim.some((r) => r.violations > 0) ? 1 : 0);
