/**
 * The live cluster at growing sizes: how start-up, memory, key-value throughput and recovery change
 * with the number of node processes.
 *
 *   npm run bench:scale -- [--nodes 4,16,64] [--settle-s 30] [--startup-limit-s 600] [--kv-sessions 32] [--kv-seconds 10]
 *                          [--kills 5] [--out DIR] [--quiet]
 *
 * For each size, a server is started in this process as `npm start` starts it (the default workload, a
 * fresh PGlite folder, or a schema of its own when DATABASE_URL is set), from the build (`npm run
 * bench:scale` builds first), so that its node processes are compiled JavaScript. Start-up: until
 * every node is up. Memory: `--settle-s` after that, under the default workload (the server: this
 * whole process, PGlite's thread included; each node process: its resident set, from /proc). Then the
 * workload stops and the key-value store is driven to saturation (as in `npm run bench`), and nodes
 * are SIGKILLed one at a time (kill → first commit on the new world-line, as in `npm run bench`).
 *
 * Writes `bench-results/scale-<time>.{json,html}`; the last line on stdout is the result as one JSON object.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine } from '../command-line';
import { COMPILED } from '../storage/entry-points';
import type { RunningServer } from '../server/server';
import { startServer } from '../server/server';
import { dropSchema } from '../storage/postgres';
import type { OpenedStorage } from '../storage/open';
import { openStorage } from '../storage/open';
import { processPrivateMb, processRssMb, serverMemory } from './live/memory';
import { allUp, kvSaturation, liveTarget, runRecovery } from './live/phases';
import { renderScaleHtml } from './report/live-html';
import type { ScaleResult, ScaleRow } from './report/live-types';
import { median, percentiles } from './report/stats';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const USAGE = `usage: npm run bench:scale -- [--nodes 4,16,64] [--settle-s 30] [--startup-limit-s 600] [--kv-sessions 32] [--kv-seconds 10] [--kills 5] [--out DIR] [--quiet]
PostgreSQL when DATABASE_URL is set, else PGlite.`;

const { values, number, numbers } = commandLine(
  {
    options: {
      nodes: { type: 'string', default: '4,16,64' },
      'settle-s': { type: 'string', default: '30' },
      'startup-limit-s': { type: 'string', default: '600' },
      'kv-sessions': { type: 'string', default: '32' },
      'kv-seconds': { type: 'string', default: '10' },
      kills: { type: 'string', default: '5' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench-results') },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  },
  USAGE,
);
const sizes = numbers('nodes', values.nodes, { min: 2 }).map((n) => Math.round(n));
const settleS = number('settle-s', values['settle-s'], { min: 0 });
const startupLimitS = number('startup-limit-s', values['startup-limit-s'], { min: 10 });
const kvSessions = Math.round(number('kv-sessions', values['kv-sessions'], { min: 1 }));
const kvSeconds = number('kv-seconds', values['kv-seconds'], { min: 0.5 });
const kills = Math.round(number('kills', values.kills, { min: 0 }));
const say = (s: string): void => {
  if (!values.quiet) process.stderr.write(`${s}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const load = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);
const kind: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';
const CHECKPOINT_MS = 100; // the cluster's default, as `npm start` runs it

let server: RunningServer | null = null;
const serverLog: string[] = [];
let opened: OpenedStorage | null = null;
let dataDir: string | null = null;
let schema: string | null = null;

async function closeSize(): Promise<void> {
  await server?.close().catch(() => undefined);
  await opened?.close().catch(() => undefined);
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  if (schema !== null) await dropSchema(process.env.DATABASE_URL ?? '', schema).catch(() => undefined);
  server = null;
  opened = null;
  dataDir = null;
  schema = null;
}

/** One cluster size: start, settle, read memory, saturate the key-value store, kill. */
async function measure(n: number): Promise<ScaleRow> {
  if (kind === 'postgres') {
    schema = `dse_scale_${process.pid}_${n}_${Date.now().toString(36)}`;
    opened = await openStorage({ kind: 'postgres', schema });
  } else {
    dataDir = mkdtempSync(join(tmpdir(), 'dse-scale-'));
    opened = await openStorage({ kind: 'pglite', dataDir });
  }
  const t0 = performance.now();
  server = await startServer({
    port: 0,
    storage: opened,
    nodes: n,
    limits: { nodesMax: Math.max(16, n) },
    workload: { kind: 'mixed', rate: 4 },
    nodeStderr: true,
    log: (line) => {
      serverLog.push(`${new Date().toISOString()} ${line}`);
      if (serverLog.length > 100) serverLog.shift();
    },
  });
  const srv = server;
  // Auto-restart is off (as in `npm start`): a node process that gave up while the machine was slow
  // (its join unanswered in 15 s) is started again here, and counted.
  let restarts = 0;
  for (let i = 0; !allUp(srv); i++) {
    if (performance.now() - t0 > startupLimitS * 1000) {
      const down = srv.cluster.info(0).nodes.filter((x) => x.status !== 'up');
      throw new Error(
        `${down.length} of ${n} node processes not up within ${startupLimitS} s (${down.filter((x) => x.status === 'down').length} down, the others recovering)`,
      );
    }
    // Every 10 s, not at once: a herd of restarts on a saturated machine only makes every join later.
    if (i % 500 === 499) {
      for (const id of srv.cluster.nodeIds()) {
        if (srv.cluster.status(id) !== 'down') continue;
        restarts++;
        srv.cluster.restart(id);
      }
    }
    await sleep(20);
  }
  const startupMs = Math.round(performance.now() - t0);
  say(`scale ${n}: every node up in ${startupMs} ms (${restarts} node processes started again); settling ${settleS} s under the default workload`);
  await sleep(settleS * 1000);
  const serverIdle = serverMemory();
  const pids = srv.cluster
    .info(0)
    .nodes.map((x) => x.pid)
    .filter((p): p is number => p !== null);
  const rss = pids.map(processRssMb).filter((x): x is number => x !== null);
  const priv = pids.map(processPrivateMb).filter((x): x is number => x !== null);
  say(`scale ${n}: server ${serverIdle.rssMb} MB; node processes ${median(rss)} MB median, ${Math.max(...rss)} max (private ${median(priv)} MB)`);

  srv.workload.set({ kind: 'mixed', rate: 0 });
  await sleep(1000);
  const kv = await kvSaturation(liveTarget(srv), kvSessions, kvSeconds, 1, () => undefined);
  const kp = percentiles(kv.latencyMs);
  say(`scale ${n}: key-value ${Math.round(kv.completed / kv.seconds)} ops/s at saturation (${kvSessions} sessions)`);
  const each = kills > 0 ? await runRecovery(srv, kills, () => undefined) : [];
  const rec = each.map((k) => k.killToFirstCommitMs);
  say(`scale ${n}: recovery median ${Math.round(median(rec))} ms over ${each.length} kills`);
  const serverAfter = serverMemory();
  const row: ScaleRow = {
    nodes: n,
    startupMs,
    startupRestarts: restarts,
    serverIdle,
    nodeRssMb: rss,
    nodeRssMedianMb: median(rss),
    nodeRssMaxMb: rss.length > 0 ? Math.max(...rss) : 0,
    nodePrivateMedianMb: median(priv),
    serverAfter,
    kv: {
      sessions: kvSessions,
      seconds: kvSeconds,
      opsPerSec: Math.round(kv.completed / kv.seconds),
      p50Ms: kp.p50Ms,
      p99Ms: kp.p99Ms,
      errors: kv.errors,
    },
    recovery: {
      kills: each.length,
      medianMs: Math.round(median(rec)),
      maxMs: rec.length > 0 ? Math.round(Math.max(...rec)) : 0,
      detectMedianMs: Math.round(median(each.map((k) => k.detectMs))),
      stalls: each.filter((k) => k.stalled).length,
    },
    loadAvg1m: load()[0]!,
  };
  await closeSize();
  return row;
}

const startedAt = new Date().toISOString();
const loadStart = load();
const t0 = performance.now();
try {
  say(`scale: ${sizes.join(', ')} node processes (${COMPILED ? 'compiled JavaScript' : 'TypeScript under tsx'}); storage ${kind}; load ${loadStart.join(' ')}`);
  const rows: ScaleRow[] = [];
  const failed: ScaleResult['failed'] = [];
  for (const n of sizes) {
    try {
      rows.push(await measure(n));
    } catch (e) {
      // A size that cannot be measured (on a saturated machine, nodes that never come up) is reported, and the others still are.
      const error = e instanceof Error ? e.message : String(e);
      say(`scale ${n}: failed: ${error}`);
      if (serverLog.length > 0) say(`last server log lines:\n${serverLog.slice(-10).join('\n')}`);
      failed.push({ nodes: n, error });
      await closeSize();
    }
  }
  const at = (n: number): ScaleRow | undefined => rows.find((r) => r.nodes === n);
  const goal = (g: string, value: number | null | undefined, target: string, ok: (v: number) => boolean): ScaleResult['goals'][number] => ({
    goal: g,
    value: value ?? null,
    target,
    met: value === null || value === undefined ? null : ok(value),
  });
  const biggest = rows.reduce<ScaleRow | undefined>((m, r) => (m === undefined || r.nodes > m.nodes ? r : m), undefined);
  const smallest = rows.reduce<ScaleRow | undefined>((m, r) => (m === undefined || r.nodes < m.nodes ? r : m), undefined);
  const result: ScaleResult = {
    schema: 1,
    kind: 'scale',
    command: `npm run bench:scale -- ${process.argv.slice(2).join(' ')}`.trim(),
    compiled: COMPILED,
    startedAt,
    elapsedMs: Math.round(performance.now() - t0),
    machine: { cpus: cpus().length, node: process.version, platform: `${process.platform} ${process.arch}`, loadAvgStart: loadStart, loadAvgEnd: load() },
    storage: kind,
    checkpointIntervalMs: CHECKPOINT_MS,
    settleS,
    rows,
    failed,
    goals: [
      goal('node processes run compiled JavaScript (1 = yes)', COMPILED ? 1 : 0, '= 1', (v) => v === 1),
      goal(`node process resident set, largest at ${biggest?.nodes ?? '—'} nodes (MB)`, biggest?.nodeRssMaxMb, '≤ 50 MB', (v) => v <= 50),
      goal('server resident set with 16 nodes, after settling (MB)', at(16)?.serverIdle.rssMb, '≤ 300 MB', (v) => v <= 300),
      goal(
        `recovery median at ${biggest?.nodes ?? '—'} nodes / at ${smallest?.nodes ?? '—'} nodes`,
        biggest !== undefined && smallest !== undefined && smallest.recovery.medianMs > 0
          ? Math.round((biggest.recovery.medianMs / smallest.recovery.medianMs) * 100) / 100
          : null,
        '≤ 2×',
        (v) => v <= 2,
      ),
    ],
  };
  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const base = join(outDir, `scale-${kind}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(`${base}.html`, renderScaleHtml(result));
  const lines = rows.map(
    (r) =>
      `${String(r.nodes).padStart(4)} nodes: up in ${r.startupMs} ms; server ${r.serverIdle.rssMb} MB (after load ${r.serverAfter.rssMb}); node ${r.nodeRssMedianMb} MB median, ${r.nodeRssMaxMb} max (private ${r.nodePrivateMedianMb}); kv ${r.kv.opsPerSec} ops/s; recovery ${r.recovery.medianMs} ms median`,
  );
  for (const f of failed) lines.push(`${String(f.nodes).padStart(4)} nodes: not measured: ${f.error}`);
  process.stdout.write(`${lines.join('\n')}\nreport: ${relative(process.cwd(), `${base}.html`)} (and .json)\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`scale failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  if (serverLog.length > 0) process.stderr.write(`last server log lines:\n${serverLog.slice(-30).join('\n')}\n`);
  await closeSize();
  process.exit(1);
}
