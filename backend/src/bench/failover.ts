/**
 * Failover and latency of the live cluster (real node processes, real storage).
 *
 *   npm run bench:failover -- [--kills 5] [--interval 10] [--rate 50] [--latency-s 20] [--storage pglite|memory|postgres] [--json]
 *
 * 1. Latency of the default workload (mixed, 4 requests a second, as `npm start` runs it): time to the
 *    speculative answer and to the commit, p50 and p99.
 * 2. Failover, `--kills` times: SIGKILL of a node process (from this process, as an operator would),
 *    then the time to its detection, to the new world-line, to the first commit on the new world-line
 *    (the first cut advance), and to the first committed client request on it. The workload runs at
 *    `--rate` meanwhile, so that survivors have work to commit. The killed node is restarted after each.
 *
 * The last line with `--json` is one object with every figure.
 */
import { commandLine } from '../command-line';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropSchema } from '../storage/postgres';
import type { NumberedEvent } from '@dse/shared';
import { summarize } from '../live/workload';
import type { LatencySummary } from '../live/workload';
import { startServer } from '../server/server';
import type { StorageKind } from '../storage/open';
import { openStorage } from '../storage/open';

const { values, number, oneOf } = commandLine(
  {
    options: {
      kills: { type: 'string', default: '5' },
      interval: { type: 'string', default: '10' },
      rate: { type: 'string', default: '50' },
      'latency-s': { type: 'string', default: '20' },
      storage: { type: 'string', default: process.env.DATABASE_URL ? 'postgres' : 'pglite' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  },
  'usage: npm run bench:failover -- [--kills 5] [--interval 10] [--rate 50] [--latency-s 20] [--storage pglite|memory|postgres] [--json]',
);
const kills = number('kills', values.kills, { min: 1, integer: true });
const interval = number('interval', values.interval, { min: 1 });
const rate = number('rate', values.rate, { min: 0 });
const latencyS = number('latency-s', values['latency-s'], { min: 1 });
const storageKind = oneOf<StorageKind>('storage', values.storage, ['pglite', 'memory', 'postgres']);
const say = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

const dataDir = mkdtempSync(join(tmpdir(), 'dse-bench-'));
// On PostgreSQL the benchmark works in a schema of its own, dropped at the end.
const schema = `dse_bench_${process.pid}`;
const storage = storageKind === 'postgres' ? await openStorage({ kind: 'postgres', schema }) : storageKind;
const server = await startServer({
  port: 0,
  storage,
  dataDir,
  nodes: 4,
  config: { checkpointIntervalMs: interval, autoRestart: false },
  nodeStderr: false,
  log: () => undefined,
});
const events: NumberedEvent[] = [];
server.stream.onEvent((e) => {
  if (e.type === 'nodeFailed' || e.type === 'worldLineChanged' || e.type === 'cutAdvanced' || (e.type === 'sessionResult' && e.status === 'committed'))
    events.push(e);
  if (events.length > 200_000) events.splice(0, 100_000);
});
const cluster = server.cluster;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, cond: () => T | undefined | null | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
const allUp = (): boolean => cluster.info(0).nodes.every((n) => n.status === 'up');

try {
  say(`storage: ${server.storage.describe}; checkpoint interval ${interval} ms; 4 node processes`);
  await waitFor('every node up', allUp);

  // 1. Latency of the default workload.
  server.workload.set({ kind: 'mixed', rate: 4 });
  await sleep(2000);
  server.workload.resetStats();
  await sleep(latencyS * 1000);
  const def = server.workload.stats();
  say(
    `default workload (mixed, 4/s, ${latencyS} s): speculative p50 ${def.speculative.p50} ms p99 ${def.speculative.p99} ms; commit p50 ${def.commit.p50} ms p99 ${def.commit.p99} ms (${def.commit.count} committed)`,
  );

  // 2. Failover under load.
  server.workload.set({ kind: 'mixed', rate });
  await sleep(2000);
  server.workload.resetStats();
  const detect: number[] = [];
  const worldLine: number[] = [];
  const firstCut: number[] = [];
  const firstRequest: number[] = [];
  for (let k = 0; k < kills; k++) {
    await waitFor('every node up', allUp);
    const before = { ...cluster.coordinator.cut };
    await waitFor('the cut to advance everywhere', () => Object.keys(before).every((n) => (cluster.coordinator.cut[n] ?? 0) > before[n]!));
    const victim = `n${(k % 4) + 1}`;
    const pid = cluster.info(0).nodes.find((n) => n.id === victim)!.pid!;
    const w = cluster.coordinator.worldLine;
    const from = events.length;
    const t0 = cluster.clock.now();
    process.kill(pid, 'SIGKILL');
    const find = <T extends NumberedEvent>(pred: (e: NumberedEvent) => boolean): T | undefined => {
      for (let i = from; i < events.length; i++) if (pred(events[i]!)) return events[i] as T;
      return undefined;
    };
    const failed = await waitFor('nodeFailed', () => find((e) => e.type === 'nodeFailed' && e.node === victim));
    const wl = await waitFor('worldLineChanged', () => find((e) => e.type === 'worldLineChanged' && e.worldLine === w + 1));
    const cut = await waitFor('the first commit on the new world-line', () => find((e) => e.type === 'cutAdvanced' && e.worldLine === w + 1));
    const req = await waitFor('the first committed request on the new world-line', () => find((e) => e.type === 'sessionResult' && e.worldLine === w + 1));
    detect.push(failed.t - t0);
    worldLine.push(wl.t - t0);
    firstCut.push(cut.t - t0);
    firstRequest.push(req.t - t0);
    say(
      `kill ${k + 1}/${kills} (${victim}): detected ${(failed.t - t0).toFixed(1)} ms, world-line ${(wl.t - t0).toFixed(1)} ms, first commit ${(cut.t - t0).toFixed(1)} ms, first committed request ${(req.t - t0).toFixed(1)} ms`,
    );
    cluster.restart(victim);
  }
  await waitFor('every node up', allUp);
  const loaded = server.workload.stats();
  const s = (xs: number[]): LatencySummary & { max: number } => ({ ...summarize(xs), max: Math.round(Math.max(...xs) * 100) / 100 });
  const result = {
    storage: storageKind,
    checkpointIntervalMs: interval,
    nodes: 4,
    kills,
    failoverMs: s(firstCut),
    detectMs: s(detect),
    worldLineMs: s(worldLine),
    firstCommittedRequestMs: s(firstRequest),
    goalMs: 500,
    defaultWorkload: {
      kind: 'mixed',
      rate: 4,
      seconds: latencyS,
      speculative: def.speculative,
      commit: def.commit,
      committed: def.committed,
      rolledBack: def.rolledBack,
    },
    loadedWorkload: { kind: 'mixed', rate, speculative: loaded.speculative, commit: loaded.commit, committed: loaded.committed, rolledBack: loaded.rolledBack },
  };
  say(`failover (SIGKILL → first commit on the new world-line): p50 ${result.failoverMs.p50} ms, max ${result.failoverMs.max} ms (goal < 500 ms)`);
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (storageKind === 'postgres') {
    await dropSchema(process.env.DATABASE_URL ?? '', schema);
  }
}
process.exit(0);
