/**
 * An hour (or any time) of the live cluster under the default workload, with a node killed every
 * minute: does memory stay flat and storage bounded?
 *
 *   npm run bench:soak -- [--minutes 60] [--nodes 4] [--kill-every-s 60] [--sample-s 10] [--spare 1]
 *                         [--warmup-min 5] [--out DIR] [--quiet]
 *
 * The server is this process, started as `npm start` starts it (the same options: the mixed workload
 * at 4 requests a second, PGlite in a temporary folder unless DATABASE_URL is set), run from the build
 * (`npm run bench:soak` builds first) so that its node processes are compiled JavaScript too.
 * Every `--kill-every-s`, one node process is SIGKILLed (rotating over every node but the first
 * `--spare`, which live the whole run, so that a node's own memory curve spans it) and restarted
 * once the cluster committed on the new world-line. Every `--sample-s`: the server's memory, every
 * node process's resident set, the checkpoint rows and bytes held, and the server's event-loop delay.
 *
 * Slopes (per hour) are least-squares fits over the samples after `--warmup-min`. Writes
 * `bench-results/soak-<time>.{json,html}`; the last line on stdout is the result as one JSON object.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeId, NumberedEvent } from '@dse/shared';
import { commandLine } from '../command-line';
import type { RunningServer } from '../server/server';
import { startServer } from '../server/server';
import { dropSchema } from '../storage/postgres';
import type { OpenedStorage } from '../storage/open';
import { openStorage } from '../storage/open';
import { COMPILED } from '../storage/entry-points';
import { processRssMb, serverMemory, slope, storageSize } from './live/memory';
import { median } from './report/stats';
import { renderSoakHtml } from './report/live-html';
import type { SoakResult, SoakSample } from './report/live-types';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const USAGE = `usage: npm run bench:soak -- [--minutes 60] [--nodes 4] [--kill-every-s 60] [--sample-s 10] [--spare 1] [--warmup-min 5] [--out DIR] [--quiet]
PostgreSQL when DATABASE_URL is set, else PGlite.`;

const { values, number } = commandLine(
  {
    options: {
      minutes: { type: 'string', default: '60' },
      nodes: { type: 'string', default: '4' },
      'kill-every-s': { type: 'string', default: '60' },
      'sample-s': { type: 'string', default: '10' },
      spare: { type: 'string', default: '1' },
      'warmup-min': { type: 'string' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench-results') },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  },
  USAGE,
);
const minutes = number('minutes', values.minutes, { min: 0.1 });
const nodeCount = Math.round(number('nodes', values.nodes, { min: 2 }));
const killEveryS = number('kill-every-s', values['kill-every-s'], { min: 5 });
const sampleS = number('sample-s', values['sample-s'], { min: 1 });
const spare = Math.min(nodeCount - 1, Math.round(number('spare', values.spare, { min: 0 })));
const warmupMin = number('warmup-min', values['warmup-min'], { default: Math.min(5, minutes / 6), min: 0 });
const say = (s: string): void => {
  if (!values.quiet) process.stderr.write(`${s}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const r1 = (x: number): number => Math.round(x * 10) / 10;

const kind: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';
const schema = `dse_soak_${process.pid}_${Date.now().toString(36)}`;
let dataDir: string | null = null;
let opened: OpenedStorage;
if (kind === 'postgres') opened = await openStorage({ kind: 'postgres', schema });
else {
  dataDir = mkdtempSync(join(tmpdir(), 'dse-soak-'));
  opened = await openStorage({ kind: 'pglite', dataDir });
}

const serverLog: string[] = [];
const loop = monitorEventLoopDelay({ resolution: 10 });
const startedAt = new Date().toISOString();
const load0 = loadavg().map((x) => Math.round(x * 100) / 100);
let server: RunningServer | null = null;

async function cleanup(): Promise<void> {
  await server?.close().catch(() => undefined);
  await opened.close().catch(() => undefined);
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  if (kind === 'postgres') await dropSchema(process.env.DATABASE_URL ?? '', schema).catch(() => undefined);
}

try {
  const t0 = performance.now();
  // As `npm start` does (backend/src/server/main.ts): the default workload, auto-restart off.
  server = await startServer({
    port: 0,
    storage: opened,
    nodes: nodeCount,
    workload: { kind: 'mixed', rate: 4 },
    nodeStderr: false,
    log: (line) => {
      serverLog.push(`${new Date().toISOString()} ${line}`);
      if (serverLog.length > 200) serverLog.shift();
    },
  });
  const srv = server;
  const cluster = srv.cluster;
  const allUp = (): boolean => cluster.nodeIds().every((n) => cluster.status(n) === 'up');
  for (let i = 0; !allUp(); i++) {
    if (i > 1200) throw new Error('soak: the cluster did not come up within 120 s');
    await sleep(100);
  }
  say(
    `soak: ${nodeCount} node processes up in ${Math.round(performance.now() - t0)} ms (${COMPILED ? 'compiled' : 'tsx'}); ${minutes} min, a kill every ${killEveryS} s`,
  );

  // Commits on each world-line, for recovery times.
  const firstCommit = new Map<number, number>();
  srv.stream.onEvent((e: NumberedEvent) => {
    if (e.type === 'cutAdvanced' && !firstCommit.has(e.worldLine)) firstCommit.set(e.worldLine, performance.now());
  });

  const samples: SoakSample[] = [];
  const kills: SoakResult['kills'] = [];
  const victims = cluster.nodeIds().slice(spare);
  // The run's minutes count from the moment the cluster is up.
  const end = performance.now() + minutes * 60_000;
  let nextSample = performance.now();
  let nextKill = performance.now() + killEveryS * 1000;
  let killNo = 0;
  let restartPending: { victim: NodeId; worldLine: number; at: number } | null = null;
  loop.enable();

  const takeSample = async (): Promise<void> => {
    const nodes: Record<NodeId, number | null> = {};
    for (const n of cluster.info(0).nodes) nodes[n.id] = n.pid === null ? null : processRssMb(n.pid);
    const size = await storageSize(opened, dataDir);
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    samples.push({
      tMin: Math.round(((performance.now() - t0) / 60_000) * 1000) / 1000,
      server: serverMemory(),
      nodes,
      rows: size.rows,
      tableBytes: size.tableBytes,
      folderBytes: size.folderBytes,
      loopP50Ms: ms(loop.percentile(50)),
      loopP99Ms: ms(loop.percentile(99)),
      loopMaxMs: ms(loop.max),
      worldLine: cluster.coordinator.worldLine,
      kills: killNo,
      load1m: Math.round(loadavg()[0]! * 100) / 100,
    });
    loop.reset();
    const s = samples[samples.length - 1]!;
    say(
      `soak ${s.tMin.toFixed(1)} min: server ${s.server.rssMb} MB (heap ${s.server.heapUsedMb}), nodes ${Object.values(nodes).join('/')} MB, rows ${s.rows}, table ${s.tableBytes === null ? '—' : r1(s.tableBytes / 1048576)} MB, loop p99 ${s.loopP99Ms} ms, load ${s.load1m}`,
    );
  };

  while (performance.now() < end) {
    const now = performance.now();
    if (now >= nextSample) {
      nextSample += sampleS * 1000;
      await takeSample();
    }
    if (restartPending !== null) {
      // Restart the victim once the cluster committed on the new world-line (as the recovery benchmark does), or after 30 s.
      const p = restartPending;
      const committed = [...firstCommit.entries()].some(([w, t]) => w > p.worldLine && t >= p.at);
      if (committed || now - p.at > 30_000) {
        const wl = [...firstCommit.entries()].filter(([w, t]) => w > p.worldLine && t >= p.at).sort((a, b) => a[1] - b[1])[0];
        kills.push({ tMin: r1((p.at - t0) / 60_000), victim: p.victim, killToFirstCommitMs: wl === undefined ? null : Math.round(wl[1] - p.at) });
        try {
          cluster.restart(p.victim);
        } catch (e) {
          say(`soak: restart of ${p.victim} refused: ${e instanceof Error ? e.message : String(e)}`);
        }
        restartPending = null;
      }
    } else if (now >= nextKill && victims.length > 0) {
      nextKill += killEveryS * 1000;
      const victim = victims[killNo % victims.length]!;
      const pid = cluster.info(0).nodes.find((n) => n.id === victim)?.pid ?? null;
      if (pid !== null && allUp()) {
        killNo++;
        restartPending = { victim, worldLine: cluster.coordinator.worldLine, at: performance.now() };
        process.kill(pid, 'SIGKILL');
      } else {
        say(`soak: kill skipped at ${((now - t0) / 60_000).toFixed(1)} min (${victim} has no process or a node is not up)`);
      }
    }
    await sleep(50);
  }
  await takeSample();
  loop.disable();

  // Slopes after the warm-up, per hour.
  const after = samples.filter((s) => s.tMin >= warmupMin);
  const perHour = (pts: [number, number][]): number | null => {
    const k = slope(pts.map(([m, y]) => [m / 60, y]));
    return k === null ? null : r1(k);
  };
  const nodeIds = cluster.nodeIds();
  const nodeSlopes: Record<NodeId, number | null> = {};
  for (const id of nodeIds) {
    // A killed node's process is new after each kill: its slope is over its last life only.
    const pts = after.filter((s) => s.nodes[id] !== null && s.nodes[id] !== undefined).map((s): [number, number] => [s.tMin, s.nodes[id]!]);
    const lastKill = kills.filter((k) => k.victim === id).reduce((m, k) => Math.max(m, k.tMin), -1);
    const life = pts.filter(([t]) => t > lastKill + 0.5);
    // A slope over a few minutes says nothing of an hour: only lives of 10 minutes or more are fitted.
    nodeSlopes[id] = life.length > 1 && life[life.length - 1]![0] - life[0]![0] >= 10 ? perHour(life) : null;
  }
  const spanMin = after.length > 1 ? after[after.length - 1]!.tMin - after[0]!.tMin : 0;
  const half = (from: number, to: number): SoakSample[] => samples.filter((s) => s.tMin >= from && s.tMin < to);
  const mid = minutes / 2;
  const maxRows = (ss: SoakSample[]): number | null => (ss.some((s) => s.rows !== null) ? Math.max(...ss.map((s) => s.rows ?? 0)) : null);
  const recov = kills.map((k) => k.killToFirstCommitMs).filter((x): x is number => x !== null);
  const last = samples[samples.length - 1]!;
  const result: SoakResult = {
    schema: 1,
    kind: 'soak',
    command: `npm run bench:soak -- ${process.argv.slice(2).join(' ')}`.trim(),
    compiled: COMPILED,
    startedAt,
    elapsedMs: Math.round(performance.now() - t0),
    machine: {
      cpus: cpus().length,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAvgStart: load0,
      loadAvgEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    storage: kind,
    storageDescribe: opened.describe,
    nodes: nodeCount,
    spare,
    minutes,
    killEveryS,
    sampleS,
    warmupMin,
    workload: { kind: 'mixed', rate: 4 },
    kills,
    recovery: {
      n: recov.length,
      medianMs: recov.length > 0 ? Math.round(median(recov)) : null,
      maxMs: recov.length > 0 ? Math.max(...recov) : null,
      stalls: kills.length - recov.length,
    },
    slopesPerHour: {
      spanMin: r1(spanMin),
      serverRssMb: perHour(after.map((s) => [s.tMin, s.server.rssMb])),
      serverHeapUsedMb: perHour(after.map((s) => [s.tMin, s.server.heapUsedMb])),
      nodesRssMb: nodeSlopes,
      rows: perHour(after.filter((s) => s.rows !== null).map((s) => [s.tMin, s.rows!])),
      tableMb: perHour(after.filter((s) => s.tableBytes !== null).map((s) => [s.tMin, s.tableBytes! / 1048576])),
      folderMb: perHour(after.filter((s) => s.folderBytes !== null).map((s) => [s.tMin, s.folderBytes! / 1048576])),
    },
    storageBound: {
      maxRowsFirstHalf: maxRows(half(0, mid)),
      maxRowsSecondHalf: maxRows(half(mid, Infinity)),
      lastRows: last.rows,
      lastTableBytes: last.tableBytes,
      lastFolderBytes: last.folderBytes,
    },
    loopDelay: {
      p99MedianMs: median(samples.map((s) => s.loopP99Ms)),
      p99MaxMs: Math.max(...samples.map((s) => s.loopP99Ms)),
      maxMs: Math.max(...samples.map((s) => s.loopMaxMs)),
    },
    serverLogTail: serverLog.slice(-20),
    samples,
  };

  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const base = join(outDir, `soak-${kind}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(`${base}.html`, renderSoakHtml(result));
  const sl = result.slopesPerHour;
  process.stdout.write(
    `soak: ${minutes} min, ${kills.length} kills (recovery median ${result.recovery.medianMs} ms, ${result.recovery.stalls} stalls); slopes per hour after ${warmupMin} min: server RSS ${sl.serverRssMb} MB, heap ${sl.serverHeapUsedMb} MB, rows ${sl.rows}, table ${sl.tableMb} MB; nodes ${JSON.stringify(sl.nodesRssMb)}\nreport: ${relative(process.cwd(), `${base}.html`)} (and .json)\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await cleanup();
  process.exit(0);
} catch (e) {
  process.stderr.write(`soak failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  if (serverLog.length > 0) process.stderr.write(`last server log lines:\n${serverLog.slice(-20).join('\n')}\n`);
  await cleanup();
  process.exit(1);
}
