/**
 * The DSE benchmark: latency of workflows, key-value throughput and recovery, in every mode, on a
 * deployment of the runtime (`processes`: the live cluster, one OS process per node; `embedded`: every
 * node in this process), beside a durable-execution peer (DBOS Transact) on the same database.
 *
 *   npm run bench -- [--quick] [--deployment processes|embedded] [--observation full|summary|off]
 *                    [--peers dbos|none] [--storage-delay-ms D] [--json] [--out DIR]
 *
 * Storage: PostgreSQL when DATABASE_URL is set (in a schema of its own, dropped at the end), else
 * PGlite (in a temporary folder). `--storage-delay-ms D` makes every storage commit D ms slower, a
 * model of a cloud disk; the result labels it as modelled.
 *
 * Writes `bench-results/bench-<storage>-<delay>-<time>.{json,html}` and prints a short table; the
 * last line on stdout is the result as one JSON object (`BenchResult`, report/types.ts). A progress
 * bar goes to stderr. Counts can be made tiny for a smoke test (`--workflows 2 --kv-seconds 0.5 …`).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine } from '../command-line';
import type { Mode } from '@dse/shared';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dropSchema } from '../storage/postgres';
import type { RunningServer } from '../server/server';
import { startServer } from '../server/server';
import type { OpenedStorage } from '../storage/open';
import { openStorage } from '../storage/open';
import { cpuBetween, loopDelayRead, loopDelayReset } from './live/cpu';
import { delayedStorage } from './live/delayed-storage';
import type { KillSample } from './live/phases';
import { kvLoad, kvSaturation, runWorkflows } from './live/phases';
import type { Deployment } from './deployments';
import { DEPLOYMENT_KINDS, embeddedDeployment, processesDeployment } from './deployments';
import { SERVICES_APP } from './live/services-app';
import { renderHtml } from './report/html';
import { Progress } from './report/progress';
import { histogram, median, percentiles } from './report/stats';
import { formatTable } from './report/table';
import type { BenchResult, CpuRow, GoalCheck, KvLoadRow, KvRow, PeerRow, Ratios, WorkflowRow } from './report/types';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PRELOAD = new URL('./live/services-app.ts', import.meta.url).href;
const MODES: readonly Mode[] = ['none', 'speculative', 'durable'];

const USAGE = `usage: npm run bench -- [--quick] [--deployment processes|embedded] [--observation full|summary|off] [--peers dbos|none]
  [--storage-delay-ms D] [--json] [--out DIR]
  [--workflows N] [--warm N] [--steps 1,2,5,10] [--modes none,speculative,durable] [--kv-sessions C]
  [--kv-seconds S] [--loads 0.25,0.5,0.75] [--load-seconds S] [--kills K] [--interval MS] [--nodes N] [--rounds R] [--quiet]
PostgreSQL when DATABASE_URL is set, else PGlite.`;

const { values, number, numbers, oneOf } = commandLine(
  {
    options: {
      quick: { type: 'boolean', default: false },
      deployment: { type: 'string', default: 'processes' },
      observation: { type: 'string', default: 'summary' },
      peers: { type: 'string', default: 'dbos' },
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
  },
  USAGE,
);

const deploymentKind = oneOf('deployment', values.deployment, DEPLOYMENT_KINDS);
const observation = deploymentKind === 'embedded' ? 'off' : oneOf('observation', values.observation, ['full', 'summary', 'off'] as const);
const peersWanted = oneOf('peers', values.peers, ['dbos', 'none'] as const) === 'dbos';
const quick = values.quick;
const delayMs = number('storage-delay-ms', values['storage-delay-ms'], { min: 0 });
const workflowsN = Math.round(number('workflows', values.workflows, { default: quick ? 20 : 100, min: 1 }));
const warm = Math.round(number('warm', values.warm, { default: quick ? 3 : 10, min: 0 }));
const stepsList = numbers('steps', values.steps, { min: 1 }).map((n) => Math.round(n));
const modes = values.modes.split(',').map((m) => oneOf('modes', m.trim(), MODES));
const kvSessions = Math.round(number('kv-sessions', values['kv-sessions'], { min: 1 }));
const kvSeconds = number('kv-seconds', values['kv-seconds'], { default: quick ? 2 : 8, min: 0 });
const kvWarm = Math.min(1, kvSeconds / 2);
const loadFractions = numbers('loads', values.loads, { min: 0, allowEmpty: true });
const loadSeconds = number('load-seconds', values['load-seconds'], { default: quick ? 2 : 6, min: 0 });
const kills = Math.round(number('kills', values.kills, { default: quick ? 3 : 7, min: 0 }));
const interval = Math.round(number('interval', values.interval, { min: 5 }));
const nodeCount = Math.round(number('nodes', values.nodes, { min: 2 }));
const rounds = Math.round(number('rounds', values.rounds, { default: quick ? 2 : 3, min: 1 }));
const kind: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';

const peersSkipped = !peersWanted
  ? '--peers none'
  : kind !== 'postgres'
    ? 'DBOS Transact needs a PostgreSQL server (set DATABASE_URL); this run is on PGlite'
    : null;
const progress = new Progress(
  modes.length * (stepsList.length * workflowsN + Math.round((kvSeconds + kvWarm * rounds) * 10) + Math.round(loadFractions.length * loadSeconds * 10)) +
    kills +
    (peersSkipped === null ? stepsList.length * workflowsN : 0),
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
progress.say(
  `bench: storage ${kind === 'postgres' ? 'PostgreSQL' : 'PGlite'}: ${storage.describe}; ${nodeCount} node processes; checkpoint every ${interval} ms`,
);

const startedAt = new Date().toISOString();
const t0 = performance.now();
const machine = {
  cpus: cpus().length,
  loadAvg1m: Math.round(loadavg()[0]! * 100) / 100,
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
};
let server: RunningServer | null = null;
let deployment: Deployment | null = null;
let peer: Peer | null = null;

/** DBOS Transact in a child process (see peers/dbos-peer.ts), on a schema of its own. */
interface Peer {
  version: string;
  run(steps: number, n: number, warm: number): Promise<number[]>;
  stop(): Promise<void>;
}

async function startDbosPeer(url: string): Promise<Peer> {
  const peerSchema = `dse_bench_dbos_${process.pid}_${Date.now().toString(36)}`;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'backend/src/bench/peers/dbos-peer.ts'), url, peerSchema], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => {
    err = (err + b.toString()).slice(-2000);
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (what: string): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    if (r.done === true) throw new Error(`the DBOS peer exited while ${what}: ${err.trim().split('\n').slice(-3).join(' ')}`);
    const o = JSON.parse(r.value) as Record<string, unknown>;
    if (typeof o.error === 'string') throw new Error(`the DBOS peer: ${o.error}`);
    return o;
  };
  await next('starting');
  // The package does not export its package.json: read it from where it is installed.
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/@dbos-inc/dbos-sdk/package.json'), 'utf8')) as { version: string }).version;
  return {
    version,
    async run(steps, n, w) {
      child.stdin!.write(`${JSON.stringify({ run: { steps, n, warm: w } })}\n`);
      return (await next('running workflows')).samples as number[];
    },
    async stop() {
      child.stdin!.write(`${JSON.stringify({ stop: true })}\n`);
      await Promise.race([next('stopping').catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
      child.kill();
      await dropSchema(url, peerSchema).catch(() => undefined);
    },
  };
}

async function cleanup(): Promise<void> {
  await peer?.stop().catch(() => undefined);
  await deployment?.close().catch(() => undefined);
  if (deploymentKind === 'embedded' || server === null) await storage.close().catch(() => undefined);
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  if (kind === 'postgres') {
    await dropSchema(process.env.DATABASE_URL ?? '', schema).catch(() => undefined); // best effort
  }
}

function workflowRow(steps: number, mode: Mode, samples: number[]): WorkflowRow {
  const p = percentiles(samples);
  return { steps, mode, n: p.n, p50Ms: p.p50Ms, p90Ms: p.p90Ms, p99Ms: p.p99Ms, meanMs: p.meanMs, maxMs: p.maxMs, hist: histogram(samples) };
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a === undefined || b === undefined || b <= 0 ? null : Math.round((a / b) * 100) / 100;

try {
  progress.setLabel(deploymentKind === 'processes' ? 'starting the cluster' : 'starting the embedded runtime');
  if (deploymentKind === 'processes') {
    server = await startServer({
      port: 0,
      storage,
      nodes: nodeCount,
      app: SERVICES_APP,
      config: { mode: modes[0]!, checkpointIntervalMs: interval, autoRestart: false, heartbeatTimeoutMs: 5000, observation },
      nodeStderr: false,
      log: (line) => {
        serverLog.push(line);
        if (serverLog.length > 200) serverLog.shift();
      },
    });
    deployment = processesDeployment(server, 'node processes talk over direct TCP links on loopback; the server is the control plane and session host');
  } else {
    deployment = await embeddedDeployment(storage, nodeCount, interval, modes[0]!);
  }
  const dep = deployment;
  if (peersSkipped === null) {
    progress.setLabel('starting the DBOS Transact peer');
    peer = await startDbosPeer(process.env.DATABASE_URL ?? '');
  }
  const tick = (u: number, label?: string): void => progress.tick(u, label);
  const peerSamples = new Map<number, number[]>();

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
      await dep.setMode(mode);
      // Warm-up (JIT, connections, tables), not measured.
      progress.setLabel(`${mode}${where}: warm-up`);
      await runWorkflows(dep.target, mode, 2, warm, 0, () => undefined);
      const wfCpu = dep.cpu();
      loopDelayReset();
      for (const steps of stepsList) {
        const n = share(workflowsN, round);
        if (n === 0) continue;
        progress.setLabel(`${mode}${where}: workflows of ${steps} step${steps === 1 ? '' : 's'}`);
        const s = await runWorkflows(dep.target, mode, steps, n, 0, tick);
        failedWorkflows += s.failed;
        const k = `${mode}|${steps}`;
        wfAnswer.set(k, [...(wfAnswer.get(k) ?? []), ...s.answerMs]);
        wfCommit.set(k, [...(wfCommit.get(k) ?? []), ...s.commitMs]);
      }
      addCpu(mode, 'workflow', cpuBetween(wfCpu, dep.cpu()));
      progress.setLabel(`${mode}${where}: key-value store at saturation (${kvSessions} sessions)`);
      const kvCpu = dep.cpu();
      loopDelayReset();
      const r = await kvSaturation(dep.target, kvSessions, kvSeconds / rounds, kvWarm, tick);
      addCpu(mode, 'kv-saturation', cpuBetween(kvCpu, dep.cpu()));
      const acc = sat.get(mode) ?? { latencyMs: [], completed: 0, errors: 0, seconds: 0 };
      sat.set(mode, {
        latencyMs: [...acc.latencyMs, ...r.latencyMs],
        completed: acc.completed + r.completed,
        errors: acc.errors + r.errors,
        seconds: acc.seconds + r.seconds,
      });
      // Fixed offered loads: fractions of the first saturation measured (the same loads for every mode).
      loads ??= [...new Set(loadFractions.map((f) => Math.max(10, Math.round(((r.completed / r.seconds) * f) / 10) * 10)))];
      for (const rate of loads) {
        progress.setLabel(`${mode}${where}: key-value store at ${rate} ops/s offered`);
        const l = await kvLoad(dep.target, rate, loadSeconds / rounds, (u) => progress.tick(u * (loadFractions.length / loads!.length)));
        const k = `${mode}|${rate}`;
        const a = loadRuns.get(k) ?? { latencyMs: [], completed: 0, dropped: 0, seconds: 0 };
        loadRuns.set(k, {
          latencyMs: [...a.latencyMs, ...l.latencyMs],
          completed: a.completed + l.completed,
          dropped: a.dropped + l.dropped,
          seconds: a.seconds + l.seconds,
        });
      }
    }
    // The peer takes its share of the round too, after the modes, on the same database.
    if (peer !== null) {
      for (const steps of stepsList) {
        const n = share(workflowsN, round);
        if (n === 0) continue;
        progress.setLabel(`DBOS Transact${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}: workflows of ${steps} step${steps === 1 ? '' : 's'}`);
        const samples = await peer.run(steps, n, round === 0 ? warm : 0);
        peerSamples.set(steps, [...(peerSamples.get(steps) ?? []), ...samples]);
        tick(n);
      }
    }
  }
  const peers: PeerRow[] = [];
  for (const steps of stepsList) {
    const samples = peerSamples.get(steps);
    if (samples === undefined || peer === null) continue;
    const p = percentiles(samples);
    peers.push({ name: 'dbos', version: peer.version, steps, n: p.n, p50Ms: p.p50Ms, p99Ms: p.p99Ms });
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
    kv.push({
      mode,
      opsPerSec: Math.round(a.completed / a.seconds),
      p50Ms: sp.p50Ms,
      p99Ms: sp.p99Ms,
      n: sp.n,
      sessions: kvSessions,
      seconds: Math.round(a.seconds * 100) / 100,
      errors: a.errors,
    });
    for (const rate of loads ?? []) {
      const l = loadRuns.get(`${mode}|${rate}`);
      if (l === undefined) continue;
      const lp = percentiles(l.latencyMs);
      kvLoads.push({
        mode,
        offeredOpsPerSec: rate,
        achievedOpsPerSec: Math.round(l.completed / l.seconds),
        p50Ms: lp.p50Ms,
        p99Ms: lp.p99Ms,
        n: lp.n,
        dropped: l.dropped,
        seconds: Math.round(l.seconds * 100) / 100,
      });
    }
    for (const phase of ['workflow', 'kv-saturation'] as const) {
      const c = cpuAcc.get(`${mode}|${phase}`);
      if (c === undefined) continue;
      cpu.push({
        mode,
        phase,
        serverCpuPct: Math.round((c.server / c.wall) * 1000) / 10,
        nodesCpuPct: c.nodes === null ? null : Math.round((c.nodes / c.wall) * 1000) / 10,
        wallMs: Math.round(c.wall),
        serverLoopDelayP99Ms: c.loopP99,
        serverLoopDelayMaxMs: c.loopMax,
      });
    }
  }
  if (failedWorkflows > 0) progress.say(`bench: ${failedWorkflows} workflows did not complete (failed or rolled back)`);

  let each: KillSample[] = [];
  if (kills > 0) {
    progress.setLabel('recovery: speculative mode');
    await dep.setMode('speculative');
    each = await dep.recovery(kills, tick);
  }
  progress.finish();

  const w5 = (m: Mode): number | undefined => workflow.find((w) => w.steps === 5 && w.mode === m)?.p50Ms;
  const c5 = workflowCommit.find((w) => w.steps === 5 && w.mode === 'speculative')?.p50Ms;
  const peer5 = peers.find((p) => p.steps === 5)?.p50Ms;
  const ratios: Ratios = {
    durableOverSpeculativeP50At5: ratio(w5('durable'), w5('speculative')),
    speculativeOverNoneP50At5: ratio(w5('speculative'), w5('none')),
    kvSpeculativeOverNoneThroughput: ratio(kv.find((k) => k.mode === 'speculative')?.opsPerSec, kv.find((k) => k.mode === 'none')?.opsPerSec),
    commitOverAnswerP50At5: ratio(c5, w5('speculative')),
    peerOverSpeculativeP50At5: ratio(peer5, w5('speculative')),
    peerOverCommitP50At5: ratio(peer5, c5),
  };
  const recoveryMs = median(each.map((k) => k.killToFirstCommitMs));
  const dTarget = delayMs >= 1 ? 10 : 3;
  const goal = (g: string, value: number | null, target: string, ok: (v: number) => boolean): GoalCheck => ({
    goal: g,
    value,
    target,
    met: value === null ? null : ok(value),
  });
  // The goals of issue 16 (ratios from this one run), by deployment and observation.
  const answerGoal = deploymentKind === 'embedded' ? 50 : observation === 'full' ? 5 : 10;
  const commitGoal = deploymentKind === 'embedded' ? 2 : 1;
  const goals: GoalCheck[] = [
    goal(
      `DBOS p50 / speculative answer p50, 5 steps (${deploymentKind}, observation ${observation})`,
      ratios.peerOverSpeculativeP50At5,
      `≥ ${answerGoal}×`,
      (v) => v >= answerGoal,
    ),
    goal(`DBOS p50 / speculative committed p50, 5 steps (${deploymentKind})`, ratios.peerOverCommitP50At5, `≥ ${commitGoal}×`, (v) => v >= commitGoal),
    goal('kv throughput at saturation, speculative / none', ratios.kvSpeculativeOverNoneThroughput, '≥ 0.9', (v) => v >= 0.9),
    goal(
      `recovery, kill → first commit on the new world-line (median, checkpoint ${interval} ms)`,
      each.length > 0 ? recoveryMs : null,
      '< 200 ms',
      (v) => v < 200,
    ),
    goal(
      'durable p50 / speculative p50, 5 steps',
      ratios.durableOverSpeculativeP50At5,
      `≥ ${dTarget}×${delayMs >= 1 ? ' with --storage-delay-ms ≥ 1' : ''}`,
      (v) => v >= dTarget,
    ),
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
    deployment: deploymentKind,
    observation,
    cluster: { nodes: nodeCount, rounds, checkpointIntervalMs: interval, cut: 'exact', relay: dep.network },
    peers,
    peersSkipped,
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
      each: each.map((k) => ({
        victim: k.victim,
        detectMs: r2(k.detectMs),
        worldLineMs: r2(k.worldLineMs),
        killToFirstCommitMs: r2(k.killToFirstCommitMs),
        rolledBackVersions: k.rolledBackVersions,
        stalled: k.stalled,
      })),
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
