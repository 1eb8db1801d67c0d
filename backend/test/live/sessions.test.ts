import { ownerOf } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * Sticky sessions and precise recovery over HTTP, on real node processes: a session with a rolled-back
 * request refuses the next one (409, SessionRolledBack) until resumed; a request on a node that depends on
 * nothing the failure lost survives the recovery with precise recovery, and does not with recovery cut.
 */
describe('sessions over HTTP across a SIGKILL', () => {
  let t: TestServer;

  beforeAll(async () => {
    // Checkpoints every 3 s: the puts below stay speculative until the test lets them persist.
    t = await startTestServer({ nodes: 2, config: { checkpointIntervalMs: 3000, heartbeatTimeoutMs: 5000 }, workload: { kind: 'kv', rate: 0 } });
    await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
  });

  const status = async (id: string): Promise<string> => String((await t.api('GET', `/api/requests/${id}`)).json.status);
  const until = async (what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> => {
    for (const end = Date.now() + timeoutMs; !(await cond());) {
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  for (const recovery of ['precise', 'cut'] as const) {
    it(`recovery ${recovery}: the session that lost a request is refused until resumed; the other one ${recovery === 'precise' ? 'survives and commits' : 'is rolled back too'}`, async () => {
      expect((await t.api('POST', '/api/config', { recovery, checkpointIntervalMs: 3000 })).status).toBe(200);
      // The nodes' timers armed with the interval before take one more turn: let it pass.
      await new Promise((r) => setTimeout(r, 300));
      const w0 = t.server.cluster.info(0).worldLine;
      const alice = `alice-${recovery}`;
      const bob = `bob-${recovery}`;
      // Keys that n1 and n2 own (a node answers only for the keys it owns, see placement.ts).
      const members = t.server.cluster.membership.view.members;
      const keyOn = (node: string, prefix: string): string =>
        Array.from({ length: 200 }, (_, i) => `${prefix}${i}`).find((k) => ownerOf(`app:${k}`, members) === node)!;
      const aKey = keyOn('n1', `a-${recovery}-`);
      const bKey = keyOn('n2', `b-${recovery}-`);
      const a = await t.api('POST', '/api/requests', { session: alice, op: 'put', key: aKey, value: 1, node: 'n1' });
      const b = await t.api('POST', '/api/requests', { session: bob, op: 'put', key: bKey, value: 2, node: 'n2' });
      expect(a.json).toMatchObject({ ok: true, status: 'speculative' });
      expect(b.json).toMatchObject({ ok: true, status: 'speculative' });
      await t.api('POST', '/api/nodes/n1/kill');
      await waitFor('the new world-line', () => t.server.cluster.info(0).worldLine > w0, 30_000);
      await until("alice's put rolled back", async () => (await status(a.json.id as string)) === 'rolled-back', 30_000);

      // Alice's session stays rolled back: a definite 409 that names what was lost and what survived.
      const refused = await t.api('POST', '/api/requests', { session: alice, op: 'get', key: aKey, node: 'n2' });
      expect(refused.status).toBe(409);
      expect(refused.json).toMatchObject({ error: { code: 'SessionRolledBack', definite: true } });
      expect(String((refused.json.error as { message: string }).message)).toMatch(/request 1 was rolled back; the last surviving request is none/);
      // The same through the service endpoint.
      const refusedSvc = await t.api('POST', '/api/service', { session: alice, svc: 'kv', payload: { op: 'get', key: 'x' } });
      expect(refusedSvc.status).toBe(409);

      // Let the nodes persist: n1 restarts, checkpoints go every 25 ms again.
      await t.api('POST', '/api/nodes/n1/restart');
      await t.api('POST', '/api/config', { checkpointIntervalMs: 25 });
      await waitFor('n1 back up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
      await until("bob's put decided", async () => (await status(b.json.id as string)) !== 'speculative', 30_000);
      expect(await status(b.json.id as string)).toBe(recovery === 'precise' ? 'committed' : 'rolled-back');
      const plan = t.events.find((e) => e.type === 'recoveryPlan' && e.worldLine > w0);
      expect(plan).toMatchObject({ recovery });
      if (recovery === 'precise') expect(plan?.type === 'recoveryPlan' && plan.kept.some((k) => k.node === 'n2')).toBe(true);

      // Acknowledged, the session goes on; a second resume has nothing to acknowledge.
      expect((await t.api('POST', `/api/sessions/${alice}/resume`)).json).toEqual({ ok: true, session: alice, resumed: true });
      expect((await t.api('POST', `/api/sessions/${alice}/resume`)).json).toEqual({ ok: true, session: alice, resumed: false });
      const again = await t.api('POST', '/api/requests', { session: alice, op: 'put', key: aKey, value: 3, node: 'n1' });
      expect(again.json).toMatchObject({ ok: true, status: 'speculative' });
      await until("alice's new put committed", async () => (await status(again.json.id as string)) === 'committed', 30_000);
    });
  }

  it('resuming a session this server does not know is a NotFound; a bad name a BadRequest', async () => {
    const r = await t.api('POST', '/api/sessions/nobody-here/resume');
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ error: { code: 'NotFound' } });
    expect((await t.api('POST', '/api/sessions/no%20spaces/resume')).status).toBe(400);
    expect((await t.api('POST', '/api/sessions/x/resume', { extra: 1 })).status).toBe(400);
  });
});
