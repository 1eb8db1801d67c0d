import { commandLine } from '../command-line';
import type { Json } from '@dse/shared';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CheckpointRecord, Storage } from '../core/ports';
import { PgliteStorage } from '../storage/pglite';
import { PostgresStorage } from '../storage/postgres';
import type { BigRow } from './checkpoint-big';
import { measureBig, renderBigHtml } from './checkpoint-big';

/**
 * Checkpoint persistence: a node with a 10,000-key state of which 1% changes each version, written
 * as full snapshots or as deltas (a full snapshot every 32 versions: a fixed stand-in; the runtime's
 * own schedule, by size, is what `--big` runs), on PGlite and on PostgreSQL.
 *
 * - latency: one persisted checkpoint (one node, one version per transaction, one after the other);
 * - throughput: 4 nodes writing at once, one transaction in flight each, in versions a second and in
 *   state rows (key-value entries) written a second; and with group commit (8 versions a transaction);
 * - restore: loading the newest version back (a delta chain of up to 31 rows, or one full row).
 *
 *   npm run bench:checkpoint -- [--seconds 3] [--backends pglite,postgres] [--json]
 *   npm run bench:checkpoint -- --big [--keys 100000,1000000] [--prune-every 10] [--backends pglite,postgres] [--json]
 *
 * `--big`: one node with a big state (default 100,000 and 1,000,000 keys), see checkpoint-big.ts; it
 * writes `bench-results/checkpoint-big-<time>.{json,html}` too. `--prune-every`: versions between two
 * prunes in its run of the runtime's schedule.
 *
 * PostgreSQL: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test when it answers (a schema of
 * its own, dropped afterwards). The last line of `--json` output is one object with every figure.
 */
const { values, number, numbers } = commandLine(
  {
    options: {
      seconds: { type: 'string', default: '3' },
      backends: { type: 'string', default: 'pglite,postgres' },
      keys: { type: 'string' },
      big: { type: 'boolean', default: false },
      'prune-every': { type: 'string', default: '10' },
      out: { type: 'string', default: 'bench-results' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  },
  'usage: npm run bench:checkpoint -- [--seconds 3] [--backends pglite,postgres] [--json] | --big [--keys 100000,1000000] [--prune-every 10] [--backends pglite,postgres] [--json]',
);
const SECONDS = number('seconds', values.seconds, { positive: true });
const KEYS = values.big ? 0 : number('keys', values.keys, { default: 10000, min: 100, integer: true });
const CHANGED = Math.max(1, Math.round(KEYS / 100));
const FULL_EVERY = 32;
const NODES = 4;
const GROUP = 8;
const BIG_KEYS = values.big ? numbers('keys', values.keys ?? '100000,1000000', { min: 1000, integer: true }) : [];
const PRUNE_EVERY = number('prune-every', values['prune-every'], { min: 1, integer: true });
const log = (s: string): void => void (values.json ? process.stderr : process.stdout).write(s + '\n');

type Strategy = 'full' | 'delta';

/** One node's state and its stream of checkpoints. */
class Writer {
  private state = new Map<string, Json>();
  private version = 0;
  private seed: number;
  constructor(
    readonly node: string,
    private readonly strategy: Strategy,
  ) {
    this.seed = node.length * 7919 + 17;
    for (let i = 0; i < KEYS; i++) this.state.set(`key:${i}`, { n: i, at: 0, s: 'initial value' });
  }

  private rand(): number {
    this.seed = (this.seed * 1103515245 + 12345) % 2147483648;
    return this.seed / 2147483648;
  }

  next(): CheckpointRecord {
    const v = ++this.version;
    const set: [string, Json][] = [];
    for (let i = 0; i < CHANGED; i++) {
      const k = `key:${Math.floor(this.rand() * KEYS)}`;
      const val: Json = { n: Math.floor(this.rand() * 1e6), at: v, s: 'changed value' };
      this.state.set(k, val);
      set.push([k, val]);
    }
    const full = this.strategy === 'full' || v === 1 || (v - 1) % FULL_EVERY === 0;
    return {
      node: this.node,
      worldLine: 1,
      version: v,
      prevVersion: v - 1,
      deps: {},
      full,
      changes: full ? { set: [...this.state], del: [] } : { set, del: [] },
    };
  }
}

interface Backend {
  name: string;
  storage: Storage;
  rowCount(node: string): Promise<number>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

async function openBackends(): Promise<Backend[]> {
  const out: Backend[] = [];
  const wanted = values.backends.split(',').map((s) => s.trim());
  if (wanted.includes('pglite')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dse-bench-'));
    const p = await PgliteStorage.open({ dataDir: dir });
    out.push({
      name: 'pglite',
      storage: p.storage,
      rowCount: (node) => p.storage.rowCount(node),
      reset: async () => void (await p.query('TRUNCATE dse_checkpoints')),
      close: async () => {
        await p.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    });
  }
  if (wanted.includes('postgres')) {
    const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
    const schema = `dse_bench_${process.pid}`;
    try {
      // --big: a full snapshot of a million keys takes longer than the storage's default query timeout (30 s) on a loaded machine; measure it instead.
      const p = await PostgresStorage.open({ url, schema, ...(values.big ? { queryTimeoutMs: 900_000 } : {}) });
      out.push({
        name: 'postgres',
        storage: p.storage,
        rowCount: (node) => p.storage.rowCount(node),
        reset: async () => void (await p.pool.query('TRUNCATE dse_checkpoints')),
        close: async () => {
          await p.pool.query(`DROP SCHEMA ${schema} CASCADE`);
          await p.close();
        },
      });
    } catch (e) {
      log(`PostgreSQL skipped: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return out;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const round = (x: number, d = 1): number => Number(x.toFixed(d));
const entries = (r: CheckpointRecord): number => r.changes.set.length + r.changes.del.length;

/** Writes `group` versions per transaction from `nodes` writers at once, for SECONDS. */
async function run(b: Backend, strategy: Strategy, nodes: number, group: number): Promise<{ versions: number; rows: number; ms: number; latencies: number[] }> {
  await b.reset();
  const writers = Array.from({ length: nodes }, (_, i) => new Writer(`node${i + 1}`, strategy));
  let versions = 0;
  let rows = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const end = started + SECONDS * 1000;
  await Promise.all(
    writers.map(async (w) => {
      while (performance.now() < end || versions < 4 * nodes) {
        const batch = Array.from({ length: group }, () => w.next());
        for (const r of batch) rows += entries(r);
        const t = performance.now();
        await b.storage.writeCheckpoints(batch);
        latencies.push(performance.now() - t);
        versions += batch.length;
      }
    }),
  );
  return { versions, rows, ms: performance.now() - started, latencies };
}

/** Average size of a version's changes as JSON (measured apart from the timed runs). */
function kbPerVersion(strategy: Strategy): number {
  const w = new Writer('size', strategy);
  let bytes = 0;
  for (let v = 0; v < 2 * FULL_EVERY; v++) bytes += JSON.stringify(w.next().changes).length;
  return bytes / (2 * FULL_EVERY) / 1024;
}

async function restoreMs(b: Backend, strategy: Strategy): Promise<number> {
  // The newest version, FULL_EVERY - 1 versions after a full snapshot: the longest delta chain.
  await b.reset();
  const w = new Writer('restore', strategy);
  for (let v = 1; v <= FULL_EVERY; v++) await b.storage.writeCheckpoints([w.next()]);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const cp = await b.storage.loadCheckpoint('restore', FULL_EVERY);
    times.push(performance.now() - t);
    if (cp === null || cp.state.size !== KEYS) throw new Error('restore: wrong state read back');
  }
  return percentile(times, 50);
}

if (values.big) {
  const startedAt = new Date().toISOString();
  const loadAvg = os.loadavg();
  const backends = await openBackends();
  log(`big-state checkpoints: ${BIG_KEYS.join(', ')} keys, one node; load average ${loadAvg.map((x) => x.toFixed(2)).join(' ')}`);
  const bigRows: BigRow[] = [];
  for (const b of backends) for (const keys of BIG_KEYS) bigRows.push(await measureBig(b, keys, log, { pruneEvery: PRUNE_EVERY }));
  for (const b of backends) await b.close();
  const result = { benchmark: 'checkpoint-big', startedAt, command: `npm run bench:checkpoint -- ${process.argv.slice(2).join(' ')}`, loadAvg, rows: bigRows };
  fs.mkdirSync(path.resolve(values.out), { recursive: true });
  const base = path.join(path.resolve(values.out), `checkpoint-big-${startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z')}`);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 1)}\n`);
  fs.writeFileSync(`${base}.html`, renderBigHtml(result));
  log(`report: ${path.relative(process.cwd(), `${base}.html`)} (and .json)`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const rows: Record<string, string | number>[] = [];
const backends = await openBackends();
log(`checkpoint benchmark: ${KEYS} keys, ${CHANGED} changed per version, ${SECONDS} s per measurement, ${os.cpus().length} cores`);
log('backend   strategy  latency p50/p95 ms   versions/s (4 nodes)   state rows/s   KB/version   group commit x8 versions/s   restore ms');
for (const b of backends) {
  for (const strategy of ['full', 'delta'] as Strategy[]) {
    const lat = await run(b, strategy, 1, 1);
    const thr = await run(b, strategy, NODES, 1);
    const grp = await run(b, strategy, NODES, GROUP);
    const restore = await restoreMs(b, strategy);
    const row = {
      backend: b.name,
      strategy,
      latencyMsP50: round(percentile(lat.latencies, 50), 2),
      latencyMsP95: round(percentile(lat.latencies, 95), 2),
      versionsPerSec: round((thr.versions / thr.ms) * 1000),
      rowsPerSec: Math.round((thr.rows / thr.ms) * 1000),
      kbPerVersion: round(kbPerVersion(strategy)),
      groupCommitVersionsPerSec: round((grp.versions / grp.ms) * 1000),
      restoreMs: round(restore, 2),
    };
    rows.push(row);
    log(
      `${b.name.padEnd(9)} ${strategy.padEnd(8)}  ${`${row.latencyMsP50} / ${row.latencyMsP95}`.padStart(17)}   ${String(row.versionsPerSec).padStart(20)}   ${String(row.rowsPerSec).padStart(12)}   ${String(row.kbPerVersion).padStart(10)}   ${String(row.groupCommitVersionsPerSec).padStart(26)}   ${String(row.restoreMs).padStart(10)}`,
    );
  }
}

// Ratios: what deltas buy over full snapshots on each backend, and PGlite against PostgreSQL.
const find = (backend: string, strategy: Strategy): Record<string, string | number> | undefined =>
  rows.find((r) => r.backend === backend && r.strategy === strategy);
const ratio = (a: number | string | undefined, b: number | string | undefined): number | null =>
  typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b, 2) : null;
const ratios: Record<string, number | null> = {};
for (const b of backends) {
  const full = find(b.name, 'full');
  const delta = find(b.name, 'delta');
  ratios[`${b.name}.deltaVsFull.versionsPerSec`] = ratio(delta?.versionsPerSec, full?.versionsPerSec);
  ratios[`${b.name}.fullVsDelta.latencyP50`] = ratio(full?.latencyMsP50, delta?.latencyMsP50);
  ratios[`${b.name}.deltaVsFull.groupCommitVersionsPerSec`] = ratio(delta?.groupCommitVersionsPerSec, full?.groupCommitVersionsPerSec);
  ratios[`${b.name}.deltaVsFull.restoreMs`] = ratio(delta?.restoreMs, full?.restoreMs);
  ratios[`${b.name}.groupCommitVsSingle.delta`] = ratio(delta?.groupCommitVersionsPerSec, delta?.versionsPerSec);
}
for (const strategy of ['full', 'delta'] as Strategy[]) {
  ratios[`pgliteVsPostgres.${strategy}.versionsPerSec`] = ratio(find('pglite', strategy)?.versionsPerSec, find('postgres', strategy)?.versionsPerSec);
}
log(
  'ratios: ' +
    Object.entries(ratios)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k} ${v}x`)
      .join(', '),
);
for (const b of backends) await b.close();
if (values.json)
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'checkpoint', keys: KEYS, changedPerVersion: CHANGED, fullEvery: FULL_EVERY, nodes: NODES, group: GROUP, seconds: SECONDS, rows, ratios })}\n`,
  );
