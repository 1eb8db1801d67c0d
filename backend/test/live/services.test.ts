import type { ClusterInfo } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Speculative } from '../../src/services';
import { KvClient, travelReservation, WalClient, WorkflowClient } from '../../src/services';
import type { OpenedStorage } from '../../src/storage/open';
import { openStorage } from '../../src/storage/open';
import { dropSchema, POSTGRES_REQUIRED, POSTGRES_URL, postgresProblem, reportSkip, uniqueSchema } from '../storage/pg-env';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * The services on real node processes: a write-ahead log, the key-value store and travel workflows,
 * with a node SIGKILLed in the middle. On PostgreSQL when one answers, else on PGlite (said below).
 */
const problem = await postgresProblem();
if (problem !== null) {
  if (POSTGRES_REQUIRED) throw new Error(`PostgreSQL is required (DSE_REQUIRE_POSTGRES=1) but not reachable: ${problem}`);
  reportSkip('services on PostgreSQL (running them on PGlite instead)', problem);
}

type Outcome<T> = { status: 'committed'; value: T } | { status: 'rolledBack' };

/** The durable outcome of a call: committed with its value, or definitely rolled back. */
async function decided<T>(p: Promise<Speculative<T>>): Promise<Outcome<T>> {
  try {
    const s = await p;
    return { status: 'committed', value: await s.commit() };
  } catch (e) {
    if (isDseError(e) && e.code === 'RolledBack') return { status: 'rolledBack' };
    throw e;
  }
}

describe(`services on real node processes (${problem === null ? 'PostgreSQL' : 'PGlite'})`, () => {
  let t: TestServer;
  const schema = uniqueSchema('dse_services');
  const nodes = ['n1', 'n2', 'n3'];
  const cluster = (): ClusterInfo => t.server.cluster.info(0);

  beforeAll(async () => {
    const storage: OpenedStorage | 'pglite' = problem === null ? await openStorage({ kind: 'postgres', databaseUrl: POSTGRES_URL, schema }) : 'pglite';
    t = await startTestServer({ storage, app: 'services', nodes: 3, config: { checkpointIntervalMs: 20, heartbeatTimeoutMs: 4000, autoRestart: true }, workload: { kind: 'mixed', rate: 0 } });
    await waitFor('every node up', () => cluster().nodes.every((n) => n.status === 'up'), 60_000);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    if (problem === null) await dropSchema(schema).catch(() => undefined);
  });

  it('log, key-value store and workflows keep their guarantees across a SIGKILL', async () => {
    const host = t.server.cluster.host;
    const wal = new WalClient(host.session(`svc-wal-${Date.now()}`), { nodes, cutView: host });
    const kv = new KvClient(host.session(`svc-kv-${Date.now()}`), { nodes });
    const wf = new WorkflowClient(host.session(`svc-wf-${Date.now()}`), { nodes });

    const appends: Promise<Outcome<{ pos: number }>>[] = [];
    const puts: Promise<Outcome<unknown>>[] = [];
    const flows: Promise<Outcome<{ status: string }>>[] = [];
    const w0 = cluster().worldLine;
    for (let i = 0; i < 30; i++) {
      appends.push(decided(wal.append('audit', { i })));
      puts.push(decided(kv.put(`k${i % 5}`, i)));
      if (i % 5 === 0) {
        const steps = travelReservation(`trip-${i}`, [
          { kind: 'flight', item: 'LYS-CDG', capacity: null },
          { kind: 'hotel', item: 'ritz', capacity: null },
          { kind: 'payment', item: 'card', capacity: null, decline: i === 10 },
        ], nodes);
        flows.push(decided(wf.run(`trip-${i}`, steps)));
      }
      if (i === 12) {
        // A node dies in the middle of everything.
        const victim = cluster().nodes.find((n) => n.id === 'n2')!;
        process.kill(victim.pid!, 'SIGKILL');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor('the new world-line', () => cluster().worldLine > w0, 30_000);
    await waitFor('n2 back up', () => cluster().nodes.find((n) => n.id === 'n2')?.status === 'up', 60_000);

    // Every call is decided: committed or definitely rolled back, nothing left hanging.
    const a = await Promise.all(appends);
    const p = await Promise.all(puts);
    const f = await Promise.all(flows);
    expect(a.length + p.length + f.length).toBe(30 + 30 + 6);

    // Write-ahead log: the committed prefix holds exactly the committed appends, at their positions.
    const committedAppends = a.flatMap((o) => (o.status === 'committed' ? [o.value.pos] : []));
    expect(committedAppends.length).toBeGreaterThan(0);
    const reader = new WalClient(host.session(`svc-wal-reader-${Date.now()}`), { nodes, cutView: host });
    await waitFor('the cut to cover the committed appends', () => (host.cut[reader.nodeOf('audit')] ?? 0) > 0, 30_000);
    const read = await reader.read('audit', { committed: true, max: 1000 });
    const positions = read.value.entries.map((e) => e.pos);
    for (const pos of committedAppends) expect(positions).toContain(pos);
    expect(new Set(positions).size).toBe(positions.length);
    // The committed prefix never changes: read it again later, after more appends.
    await decided(reader.append('audit', { i: 'late' }));
    const again = await reader.read('audit', { committed: true, max: 1000 });
    expect(again.value.entries.slice(0, read.value.entries.length)).toEqual(read.value.entries);

    // Workflows: each one completed or failed (the declined payment), compensations with it.
    for (const o of f) {
      if (o.status !== 'committed') continue;
      expect(['completed', 'failed']).toContain(o.value.status);
    }
    expect(f.some((o) => o.status === 'committed')).toBe(true);

    // Key-value store: a committed read of each key gives the last committed write, or a later one.
    const reads = await Promise.all([0, 1, 2, 3, 4].map((k) => decided(kv.get(`k${k}`))));
    for (const r of reads) expect(r.status).toBe('committed');
    expect(p.some((o) => o.status === 'committed')).toBe(true);
  });
});
