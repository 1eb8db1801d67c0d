import type { ClusterInfo } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../src/storage/open';
import { dropSchema, POSTGRES_REQUIRED, POSTGRES_URL, postgresProblem, reportSkip, uniqueSchema } from '../storage/pg-env';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/** The same live cluster on PostgreSQL (`DATABASE_URL`, else a local server; skipped with a notice when none answers). */

const problem = await postgresProblem();
if (problem !== null) {
  if (POSTGRES_REQUIRED) throw new Error(`PostgreSQL is required (DSE_REQUIRE_POSTGRES=1) but not reachable: ${problem}`);
  reportSkip('live cluster on PostgreSQL', problem);
}

describe.skipIf(problem !== null)('live cluster on PostgreSQL', () => {
  let t: TestServer;
  const schema = uniqueSchema('dse_live');
  const cluster = (): ClusterInfo => t.server.cluster.info(0);

  beforeAll(async () => {
    const storage = await openStorage({ kind: 'postgres', databaseUrl: POSTGRES_URL, schema });
    t = await startTestServer({ storage, nodes: 2, config: { checkpointIntervalMs: 20, heartbeatTimeoutMs: 3000 }, workload: { kind: 'chain', rate: 20 } });
    await waitFor('every node up', () => cluster().nodes.every((n) => n.status === 'up'), 60_000);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    await dropSchema(schema).catch(() => undefined);
  });

  it('commits, survives a SIGKILL with a rollback and a restart, and answers committed reads from PostgreSQL', async () => {
    expect(cluster().storage).toMatch(/PostgreSQL|postgres/i);
    await waitFor('the cut to advance on both nodes', () => Object.values(cluster().cut).every((v) => v > 0), 30_000);
    const put = await t.api('POST', '/api/requests', { session: 'pg', op: 'put', key: 'city', value: 'Lyon' });
    expect(put.json).toMatchObject({ ok: true, status: 'speculative' });
    const w = cluster().worldLine;
    const from = t.events.length;
    const r = await t.api('POST', '/api/nodes/n1/kill');
    expect(r.json).toMatchObject({ ok: true });
    await waitFor('the new world-line', () => t.find('worldLineChanged', (e) => e.worldLine === w + 1, from));
    await waitFor('a rollback on n2', () => t.find('rollback', (e) => e.node === 'n2' && e.worldLine === w + 1, from));
    await t.api('POST', '/api/nodes/n1/restart');
    await waitFor('n1 up again', () => cluster().nodes.find((n) => n.id === 'n1')?.status === 'up', 60_000);
    const before = { ...cluster().cut };
    await waitFor('the cut to advance after the restart', () => Object.keys(before).every((n) => (cluster().cut[n] ?? 0) > before[n]!), 45_000);
    // The put was answered before the kill: it either committed or was rolled back, never lost silently.
    const id = put.json.id as string;
    let final = 'speculative';
    for (let i = 0; final === 'speculative'; i++) {
      const info = await t.server.exec({ type: 'getRequest', id });
      expect(info).toMatchObject({ ok: true });
      final = 'status' in info ? info.status : '';
      if (i > 600) throw new Error('the put was never decided');
      if (final === 'speculative') await new Promise((res) => setTimeout(res, 50));
    }
    expect(['committed', 'rolled-back']).toContain(final);
    const co = await t.api('POST', '/api/requests', { op: 'get', key: 'city', committedOnly: true });
    expect(co.json).toMatchObject({ ok: true, status: 'committed', result: { key: 'city', value: final === 'committed' ? 'Lyon' : null } });
    // The node processes wrote and read their checkpoints themselves: none went through the server.
    expect(t.server.cluster.storageCallsServed).toBe(0);
  });
});
