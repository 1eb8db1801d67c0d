import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * Holding the cluster (a tour asks its question about a state that stands still): the workload sends
 * nothing, nodes close no version and resend nothing; released, everything moves again.
 */
describe('holding the cluster', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({ nodes: 3, config: { checkpointIntervalMs: 30, heartbeatTimeoutMs: 5000 }, workload: { kind: 'chain', rate: 30 } });
    await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
  });

  const moving = (from: number): number =>
    t.events.slice(from).filter((e) => e.type === 'checkpointStarted' || (e.type === 'messageSent' && e.kind === 'request')).length;

  it('nothing moves while held; everything moves again when released', async () => {
    // Things move to begin with (else "nothing moved" would prove nothing).
    const a = t.events.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(moving(a)).toBeGreaterThan(5);

    expect((await t.api('POST', '/api/config', { held: true })).json).toMatchObject({ ok: true, config: { held: true } });
    // Messages and writes already in flight finish; then the picture stands still.
    await new Promise((r) => setTimeout(r, 400));
    const cut = JSON.stringify(t.server.cluster.info(0).cut);
    const b = t.events.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(moving(b)).toBe(0);
    expect(JSON.stringify(t.server.cluster.info(0).cut)).toBe(cut);

    expect((await t.api('POST', '/api/config', { held: false })).json).toMatchObject({ ok: true, config: { held: false } });
    const c = t.events.length;
    await waitFor('the cluster to move again', () => moving(c) > 5, 10_000);
    await waitFor('the cut to advance again', () => JSON.stringify(t.server.cluster.info(0).cut) !== cut, 10_000);
  });
});
