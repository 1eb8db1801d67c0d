import type { Json, NodeId } from '@dse/shared';
import { StateMirror } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * A browser that joins late gets, in its snapshot, each node's app state as of just before the
 * history it is sent (`baseStates`): that base plus the history must give the nodes' real state,
 * across a SIGKILL and its rollbacks, although most events fell out of the (small) history.
 */
describe('snapshot base states (PGlite)', () => {
  let t: TestServer;
  const cluster = () => t.server.cluster.info(0);

  beforeAll(async () => {
    t = await startTestServer({
      nodes: 3,
      // Recovery cut, so that the kill surely rolls versions back on the survivors (precise recovery
      // might keep them all, and then nothing here would test the base states across a rollback).
      config: { checkpointIntervalMs: 20, heartbeatTimeoutMs: 4000, autoRestart: true, recovery: 'cut' },
      workload: { kind: 'mixed', rate: 0 },
      stream: { historyEventsMax: 150 },
    });
    await waitFor('every node up', () => cluster().nodes.every((n) => n.status === 'up'), 60_000);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
  });

  it('base states plus history give every node its real state', async () => {
    const w0 = cluster().worldLine;
    t.server.workload.set({ kind: 'mixed', rate: 60 });
    await waitFor(
      'writes on every node',
      () => new Set(t.events.filter((e) => e.type === 'stateChanged').map((e) => (e as { node: NodeId }).node)).size === 3,
      30_000,
    );
    // A kill when every survivor's work had just committed rolls nothing back: then kill again (up to
    // three times), since what this test is about is base states across rollbacks.
    let rolledBack = 0;
    for (let attempt = 0; attempt < 3 && rolledBack === 0; attempt++) {
      const w = cluster().worldLine;
      const victim = cluster().nodes.find((n) => n.id === 'n2')!;
      process.kill(victim.pid!, 'SIGKILL');
      await waitFor('the new world-line', () => cluster().worldLine > Math.max(w, w0), 30_000);
      await waitFor('n2 back up', () => cluster().nodes.find((n) => n.id === 'n2')?.status === 'up', 60_000);
      await new Promise((r) => setTimeout(r, 1000));
      rolledBack = t.events.filter((e) => e.type === 'rollback' && e.discarded !== null).length;
    }
    t.server.workload.set({ kind: 'mixed', rate: 0 });

    // The nodes' real state: a get of every key each node holds, on that node (after the load stopped).
    await new Promise((r) => setTimeout(r, 1500));
    const all = new StateMirror();
    for (const e of t.events) all.apply(e);
    const real: Record<NodeId, Record<string, Json>> = {};
    for (const node of ['n1', 'n2', 'n3']) {
      real[node] = {};
      for (const key of Object.keys(all.current(node))) {
        const r = await t.api('POST', '/api/requests', { op: 'get', key, node });
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        real[node][key] = (r.json.result as { value: Json }).value;
      }
    }
    const snap = t.server.stream.snapshotNow('connect');
    expect(snap.history.length).toBeLessThanOrEqual(150);
    expect(snap.history[0]!.n).toBeGreaterThan(1000); // most events fell out of the history
    const rebuilt = new StateMirror();
    // Seed a mirror with the base states by replaying them as changes, then the history.
    for (const [node, base] of Object.entries(snap.baseStates ?? {})) {
      rebuilt.apply({ type: 'stateChanged', t: 0, node, version: 0, set: base.committed, deleted: [] });
      for (const c of base.pending) rebuilt.apply({ type: 'stateChanged', t: 0, node, version: c.version, set: c.set, deleted: c.deleted });
      rebuilt.apply({ type: 'cutAdvanced', t: 0, worldLine: 0, cut: { [node]: base.committedVersion } });
    }
    for (const e of snap.history) rebuilt.apply(e);
    // Every event up to the snapshot, from the first one: the state the base and history must rebuild.
    expect(t.events[0]!.n).toBe(1);
    const upToSnapshot = new StateMirror();
    for (const e of t.events) if (e.n <= snap.lastEvent) upToSnapshot.apply(e);
    for (const node of ['n1', 'n2', 'n3']) {
      expect(Object.keys(real[node]!).length).toBeGreaterThan(0);
      expect(rebuilt.current(node)).toEqual(upToSnapshot.current(node));
      // The gets only added session bookkeeping; every key the node had reads back as the mirror says.
      for (const [key, value] of Object.entries(real[node]!)) expect(rebuilt.current(node)[key], `${node} ${key}`).toEqual(value);
    }
    expect(rolledBack).toBeGreaterThan(0);
    // Real node processes speak only for themselves: the relay dropped nothing as forged (security F6).
    expect(t.server.cluster.forgedDropped).toBe(0);
    // While n2 was down, what was sent to it is reported lost by the relay, not silently dropped.
    expect(t.events.some((e) => e.type === 'messageLost' && e.to === 'n2' && e.reason === 'down')).toBe(true);
  }, 180_000);
});
