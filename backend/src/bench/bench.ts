/**
 * The DSE benchmark: latency of workflows, key-value throughput and recovery on the live cluster
 * (real node processes, the server relaying every message, a real database), in every mode.
 *
 *   npm run bench -- [--quick] [--storage-delay-ms D] [--json] [--out DIR]
 *
 * Storage: PostgreSQL when DATABASE_URL is set (in a schema of its own, dropped at the end), else
 * PGlite (in a temporary folder). `--storage-delay-ms D` makes every storage commit D ms slower, a
 * model of a cloud disk; the result labels it as modelled.
 *
 * Writes `bench-results/bench-<storage>-<delay>-<time>.{json,html}` and prints a short table; the
 * last line on stdout is the result as one JSON object (`BenchResult`, report/types.ts). A progress
 * bar goes to stderr. Counts can be made tiny for a smoke test (`--workflows 2 --kv-seconds 0.5 …`).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Mode } from '@dse/shared';
import { dropSchema } from '../storage/postgres';
import type { RunningServer } from '../server/server';
import { startServer } from '../server/server';
import type { OpenedStorage } from '../storage/open';
import { openStorage } from '../storage/open';
import { cpuBetween, cpuSnapshot, loopDelayRead, loopDelayReset } from './live/cpu';
import { delayedStorage } from './live/delayed-storage';
import type { KillSample } from './live/phases';
import { kvLoad, kvSaturation, runRecovery, runWorkflows, setMode } from './live/phases';
import { SERVICES_APP } from './live/services-app';
import { renderHtml } from './report/html';
import { Progress } from './report/progress';
import { histogram, median, percentiles } from './report/stats';
import { formatTable } from './report/table';
import type { BenchResult, CpuRow, GoalCheck, KvLoadRow, KvRow, Ratios, WorkflowRow } from './report/types';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PRELOAD = new URL('./live/services-app.ts', import.meta.url).href;
const MODES: readonly Mode[] = ['none', 'speculative', 'durable'];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'storage-delay-ms': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
    out: { type: 'string', default: join(REPO_ROOT, 'bench-results') },
    workflows: { type: 'string' },
    warm: { type: 'string' },
    steps: { type: 'string', default: '1,2,5,10' },
    modes: { type: 'string', default: MODES.join(',') },
    'kv-sessions': { type: 'string', default: '32' },
    'kv-seconds': { type: 'string' },
    loads: { type: 'string', default: '0.25,0.5,0.75' },
    'load-seconds': { type: 'string' },
    kills: { type: 'string' },
    interval: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '4' },
    rounds: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

const USAGE = `usage: npm run bench -- [--quick] [--storage-delay-ms D] [--json] [--out DIR]
  [--workflows N] [--warm N] [--steps 1,2,5,10] [--modes none,speculative,durable] [--kv-sessions C]
  [--kv-seconds S] [--loads 0.25,0.5,0.75] [--load-seconds S] [--kills K] [--interval MS] [--nodes N] [--rounds R] [--quiet]
PostgreSQL when DATABASE_URL is set, else PGlite.`;
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const num = (name: string, v: string | undefined, dflt: number, min = 0): number => {
  const x = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(x) || x < min) {
    process.stderr.write(`--${name}: expected a number >= ${min}, got ${v}\n${USAGE}\n`);
    process.exit(2);
  }
  return x;
};
const quick = values.quick;
const delayMs = num('storage-delay-ms', values['storage-delay-ms'], 0);
const workflowsN = Math.round(num('workflows', values.workflows, quick ? 20 : 100, 1));
const warm = Math.round(num('warm', values.warm, quick ? 3 : 10));
const stepsList = values.steps.split(',').map((s) => Math.round(num('steps', s, 1, 1)));
const modes = values.modes.split(',').map((m) => m.trim()) as Mode[];
for (const m of modes) if (!MODES.includes(m)) {
  process.stderr.write(`--modes: unknown mode ${m}\n${USAGE}\n`);
  process.exit(2);
}
const kvSessions = Math.round(num('kv-sessions', values['kv-sessions'], 32, 1));
const kvSeconds = num('kv-seconds', values['kv-seconds'], quick ? 2 : 8);
const kvWarm = Math.min(1, kvSeconds / 2);
const loadFractions = values.loads.trim() === '' ? [] : values.loads.split(',').map((s) => num('loads', s, 0.5));
const loadSeconds = num('load-seconds', values['load-seconds'], quick ? 2 : 6);
const kills = Math.round(num('kills', values.kills, quick ? 3 : 7));
const interval = Math.round(num('interval', values.interval, 10, 5));
const nodeCount = Math.round(num('nodes', values.nodes, 4, 2));
const rounds = Math.round(num('rounds', values.rounds, quick ? 2 : 3, 1));
const kind: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';

const progress = new Progress(
  modes.length * (stepsList.length * workflowsN + Math.round((kvSeconds + kvWarm * rounds) * 10) + Math.round(loadFractions.length * loadSeconds * 10)) + kills,
  !values.quiet,
);
const serverLog: string[] = [];

// Node processes get the services app (workflow orchestrator, travel providers, key-value store).
process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS ?? '', '--import tsx', `--import ${PRELOAD}`].join(' ').trim();
await import('./live/services-app');

const schema = `dse_bench_${process.pid}_${Date.now().toString(36)}`;
let dataDir: string | null = null;
let opened: OpenedStorage;
if (kind === 'postgres') {
  opened = await openStorage({ kind: 'postgres', schema });
} else {
  dataDir = mkdtempSync(join(tmpdir(), 'dse-bench-'));
  opened = await openStorage({ kind: 'pglite', dataDir });
}
const storage = delayedStorage(opened, delayMs);
progress.say(`bench: storage ${kind === 'postgres' ? 'PostgreSQL' : 'PGlite'}: ${storage.describe}; ${nodeCount} node processes; checkpoint every ${interval} ms`);

const startedAt = new Date().toISOString();
const t0 = performance.now();
const machine = { cpus: cpus().length, loadAvg1m: Math.round(loadavg()[0]! * 100) / 100, node: process.version, platform: `${process.platform} ${process.arch}` };
let server: RunningServer | null = null;

async function cleanup(): Promise<void> {
  await server?.close().catch(() => undefined);
  if (server === null) await storage.close().catch(() => undefined);
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  if (kind === 'postgres') {
    await dropSchema(process.env.DATABASE_URL ?? '', schema).catch(() => undefined); // best effort
  }
}

function workflowRow(steps: number, mode: Mode, samples: number[]): WorkflowRow {
  const p = percentiles(samples);
  return { steps, mode, n: p.n, p50Ms: p.p50Ms, p90Ms: p.p90Ms, p99Ms: p.p99Ms, meanMs: p.meanMs, maxMs: p.maxMs, hist: histogram(samples) };
}

const ratio = (a: number | undefined, b: number | undefined): number | null => (a === undefined || b === undefined || b <= 0 ? null : Math.round((a / b) * 100) / 100);

try {
  progress.setLabel('starting the cluster');
  server = await startServer({
    port: 0,
    storage,
    nodes: nodeCount,
    app: SERVICES_APP,
    config: { mode: modes[0]!, checkpointIntervalMs: interval, autoRestart: false, heartbeatTimeoutMs: 5000 },
    nodeStderr: false,
    log: (line) => {
      serverLog.push(line);
      if (serverLog.length > 200) serverLog.shift();
    },
  });
  const srv = server;
  const tick = (u: number, label?: string): void => progress.tick(u, label);

  const workflow: WorkflowRow[] = [];
  const workflowCommit: WorkflowRow[] = [];
  const kv: KvRow[] = [];
  const kvLoads: KvLoadRow[] = [];
  const cpu: CpuRow[] = [];
  let loads: number[] | null = null;
  let failedWorkflows = 0;

  // Rounds: every mode runs a share of every measurement in each round, and the order of the modes
  // rotates, so that a burst of load from elsewhere on the machine hits every mode alike.
  const wfAnswer = new Map<string, number[]>();
  const wfCommit = new Map<string, number[]>();
  const sat = new Map<Mode, { latencyMs: number[]; completed: number; errors: number; seconds: number }>();
  const loadRuns = new Map<string, { latencyMs: number[]; completed: number; dropped: number; seconds: number }>();
  const cpuAcc = new Map<string, { server: number; nodes: number | null; wall: number; loopP99: number; loopMax: number }>();
  const addCpu = (mode: Mode, phase: CpuRow['phase'], c: ReturnType<typeof cpuBetween>): void => {
    const k = `${mode}|${phase}`;
    const a = cpuAcc.get(k) ?? { server: 0, nodes: 0, wall: 0, loopP99: 0, loopMax: 0 };
    const d = loopDelayRead();
    a.loopP99 = Math.max(a.loopP99, d.p99Ms);
    a.loopMax = Math.max(a.loopMax, d.maxMs);
    a.server += (c.serverCpuPct * c.wallMs) / 100;
    a.nodes = a.nodes === null || c.nodesCpuPct === null ? null : a.nodes + (c.nodesCpuPct * c.wallMs) / 100;
    a.wall += c.wallMs;
    cpuAcc.set(k, a);
  };
  const share = (total: number, round: number): number => Math.floor((total * (round + 1)) / rounds) - Math.floor((total * round) / rounds);
  for (let round = 0; round < rounds; round++) {
    const order = modes.map((_, i) => modes[(i + round) % modes.length]!);
    for (const mode of order) {
      const where = rounds > 1 ? ` (round ${round + 1}/${rounds})` : '';
      progress.setLabel(`${mode}${where}: switching the cluster to ${mode} mode`);
      await setMode(srv, mode);
      // Warm-up (JIT, connections, tables), not measured.
      progress.setLabel(`${mode}${where}: warm-up`);
      await runWorkflows(srv, mode, 2, warm, 0, () => undefined);
      const wfCpu = cpuSnapshot(srv);
      loopDelayReset();
      for (const steps of stepsList) {
        const n = share(workflowsN, round);
        if (n === 0) continue;
        progress.setLabel(`${mode}${where}: workflows of ${steps} step${steps === 1 ? '' : 's'}`);
        const s = await runWorkflows(srv, mode, steps, n, 0, tick);
        failedWorkflows += s.failed;
        const k = `${mode}|${steps}`;
        wfAnswer.set(k, [...(wfAnswer.get(k) ?? []), ...s.answerMs]);
        wfCommit.set(k, [...(wfCommit.get(k) ?? []), ...s.commitMs]);
      }
      addCpu(mode, 'workflow', cpuBetween(wfCpu, cpuSnapshot(srv)));
      progress.setLabel(`${mode}${where}: key-value store at saturation (${kvSessions} sessions)`);
      const kvCpu = cpuSnapshot(srv);
      loopDelayReset();
      const r = await kvSaturation(srv, kvSessions, kvSeconds / rounds, kvWarm, tick);
      addCpu(mode, 'kv-saturation', cpuBetween(kvCpu, cpuSnapshot(srv)));
      const acc = sat.get(mode) ?? { latencyMs: [], completed: 0, errors: 0, seconds: 0 };
      sat.set(mode, { latencyMs: [...acc.latencyMs, ...r.latencyMs], completed: acc.completed + r.completed, errors: acc.errors + r.errors, seconds: acc.seconds + r.seconds });
      // Fixed offered loads: fractions of the first saturation measured (the same loads for every mode).
      loads ??= [...new Set(loadFractions.map((f) => Math.max(10, Math.round(((r.completed / r.seconds) * f) / 10) * 10)))];
      for (const rate of loads) {
        progress.setLabel(`${mode}${where}: key-value store at ${rate} ops/s offered`);
        const l = await kvLoad(srv, rate, loadSeconds / rounds, (u) => progress.tick(u * (loadFractions.length / loads!.length)));
        const k = `${mode}|${rate}`;
        const a = loadRuns.get(k) ?? { latencyMs: [], completed: 0, dropped: 0, seconds: 0 };
        loadRuns.set(k, { latencyMs: [...a.latencyMs, ...l.latencyMs], completed: a.completed + l.completed, dropped: a.dropped + l.dropped, seconds: a.seconds + l.seconds });
      }
    }
  }
  for (const steps of stepsList) {
    for (const mode of modes) {
      workflow.push(workflowRow(steps, mode, wfAnswer.get(`${mode}|${steps}`) ?? []));
      if (mode !== 'none') workflowCommit.push(workflowRow(steps, mode, wfCommit.get(`${mode}|${steps}`) ?? []));
    }
  }
  for (const mode of modes) {
    const a = sat.get(mode);
    if (a === undefined) continue;
    const sp = percentiles(a.latencyMs);
    kv.push({ mode, opsPerSec: Math.round(a.completed / a.seconds), p50Ms: sp.p50Ms, p99Ms: sp.p99Ms, n: sp.n, sessions: kvSessions, seconds: Math.round(a.seconds * 100) / 100, errors: a.errors });
    for (const rate of loads ?? []) {
      const l = loadRuns.get(`${mode}|${rate}`);
      if (l === undefined) continue;
      const lp = percentiles(l.latencyMs);
      kvLoads.push({ mode, offeredOpsPerSec: rate, achievedOpsPerSec: Math.round(l.completed / l.seconds), p50Ms: lp.p50Ms, p99Ms: lp.p99Ms, n: lp.n, dropped: l.dropped, seconds: Math.round(l.seconds * 100) / 100 });
    }
    for (const phase of ['workflow', 'kv-saturation'] as const) {
      const c = cpuAcc.get(`${mode}|${phase}`);
      if (c === undefined) continue;
      cpu.push({ mode, phase, serverCpuPct: Math.round((c.server / c.wall) * 1000) / 10, nodesCpuPct: c.nodes === null ? null : Math.round((c.nodes / c.wall) * 1000) / 10, wallMs: Math.round(c.wall), serverLoopDelayP99Ms: c.loopP99, serverLoopDelayMaxMs: c.loopMax });
    }
  }
  if (failedWorkflows > 0) progress.say(`bench: ${failedWorkflows} workflows did not complete (failed or rolled back)`);

  let each: KillSample[] = [];
  if (kills > 0) {
    progress.setLabel('recovery: speculative mode');
    await setMode(srv, 'speculative');
    each = await runRecovery(srv, kills, tick);
  }
  progress.finish();

  const w5 = (m: Mode): number | undefined => workflow.find((w) => w.steps === 5 && w.mode === m)?.p50Ms;
  const ratios: Ratios = {
    durableOverSpeculativeP50At5: ratio(w5('durable'), w5('speculative')),
    speculativeOverNoneP50At5: ratio(w5('speculative'), w5('none')),
    kvSpeculativeOverNoneThroughput: ratio(kv.find((k) => k.mode === 'speculative')?.opsPerSec, kv.find((k) => k.mode === 'none')?.opsPerSec),
    commitOverAnswerP50At5: ratio(workflowCommit.find((w) => w.steps === 5 && w.mode === 'speculative')?.p50Ms, w5('speculative')),
  };
  const recoveryMs = median(each.map((k) => k.killToFirstCommitMs));
  const dTarget = delayMs >= 1 ? 10 : 3;
  const goal = (g: string, value: number | null, target: string, ok: (v: number) => boolean): GoalCheck => ({ goal: g, value, target, met: value === null ? null : ok(value) });
  const goals: GoalCheck[] = [
    goal('durable p50 / speculative p50, 5 steps', ratios.durableOverSpeculativeP50At5, `≥ ${dTarget}×${delayMs >= 1 ? ' with --storage-delay-ms ≥ 1' : ''}`, (v) => v >= dTarget),
    goal('speculative p50 / none p50, 5 steps', ratios.speculativeOverNoneP50At5, '≤ 1.5×', (v) => v <= 1.5),
    goal('kv throughput speculative / none', ratios.kvSpeculativeOverNoneThroughput, '≥ 0.7', (v) => v >= 0.7),
    goal(`recovery, kill → first commit (median, checkpoint ${interval} ms)`, each.length > 0 ? recoveryMs : null, '< 500 ms', (v) => v < 500),
  ];
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  const result: BenchResult = {
    schema: 1,
    storage: kind,
    storageDescribe: storage.describe,
    storageDelayMs: delayMs,
    storageDelayModelled: true,
    quick,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt,
    elapsedMs: Math.round(performance.now() - t0),
    machine,
    cluster: { nodes: nodeCount, rounds, checkpointIntervalMs: interval, cut: srv.cluster.config.cut, relay: 'every message relayed by the server process (one extra loopback hop)' },
    workflow,
    workflowCommit,
    kv,
    kvLoad: kvLoads,
    recovery: {
      mode: 'speculative',
      checkpointIntervalMs: interval,
      kills: each.length,
      killToFirstCommitMs: recoveryMs,
      rolledBackVersions: median(each.map((k) => k.rolledBackVersions)),
      detectMs: median(each.map((k) => k.detectMs)),
      maxKillToFirstCommitMs: each.length > 0 ? r2(Math.max(...each.map((k) => k.killToFirstCommitMs))) : 0,
      stalls: each.filter((k) => k.stalled).length,
      each: each.map((k) => ({ victim: k.victim, detectMs: r2(k.detectMs), worldLineMs: r2(k.worldLineMs), killToFirstCommitMs: r2(k.killToFirstCommitMs), rolledBackVersions: k.rolledBackVersions, stalled: k.stalled })),
    },
    cpu,
    ratios,
    goals,
  };

  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const base = join(outDir, `bench-${kind}-d${delayMs}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(`${base}.html`, renderHtml(result));
  const table = formatTable(result);
  const where = `report: ${relative(process.cwd(), `${base}.html`) || `${base}.html`} (and .json)`;
  if (values.json) process.stderr.write(`${table}\n${where}\n`);
  else process.stdout.write(`${table}\n${where}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await cleanup();
  process.exit(0);
} catch (e) {
  progress.say(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  if (serverLog.length > 0) progress.say(`last server log lines:\n${serverLog.slice(-20).join('\n')}`);
  await cleanup();
  process.exit(1);
}
