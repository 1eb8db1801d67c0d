import { describe, expect, it } from 'vitest';
import { APPS, DEFAULT_APP, playgroundApp, resolveApp } from '../../src/live/apps';
import { tripLegs } from '../../src/live/workload';
import { SERVICE_PREFIXES, WalClient } from '../../src/services';
import { TestCluster } from '../services/cluster';

/** The playground app (kv app + services on the same nodes) on virtual time, and the workflow workload's trips. */
describe('the playground app', () => {
  it('is the default, and kv and services stay available by name', () => {
    expect(DEFAULT_APP).toBe('playground');
    expect(resolveApp('playground')).toBe(playgroundApp);
    expect(resolveApp('kv')).toBe(APPS.kv);
    expect(resolveApp('services')).toBe(APPS.services);
    expect(resolveApp('toString')).toBeUndefined();
    expect([...SERVICE_PREFIXES].sort()).toEqual(['br/', 'kv/', 'pl/', 'tr/', 'wal/', 'wf/']);
  });

  it('routes svc payloads to the services and the others to the kv app, which refuses service prefixes', async () => {
    const c = await TestCluster.start({ app: playgroundApp, nodes: 2 });
    const s = c.session();
    const wal = new WalClient(s, { nodes: c.nodeIds, cutView: c.host });
    const node = wal.nodeOf('audit');
    const a = await c.run(wal.append('audit', { i: 0 }));
    expect(a.value).toEqual({ pos: 0 });

    const plain = await c.run(s.request(node, { op: 'put', key: 'audit', value: 7 }));
    expect(plain.result).toMatchObject({ key: 'audit' });
    for (const key of ['wal/audit/n', 'kv/x', 'br/t/n', 'wf/w', 'tr/s/card']) {
      const r = await c.run(s.request(node, { op: 'put', key, value: 99 }));
      expect(r.result, key).toMatchObject({ error: { code: 'BadRequest' } });
      const g = await c.run(s.request(node, { op: 'get', key }));
      expect(g.result, key).toMatchObject({ error: { code: 'BadRequest' } });
    }
    // The log is untouched by the refused puts; the kv app's key lives next to it.
    const r = await c.run(wal.read('audit'));
    expect(r.value).toMatchObject({ entries: [{ pos: 0, data: { i: 0 } }], length: 1 });
    const state = c.state(node);
    expect(state.get('wal/audit/n')).toBe(1);
    expect(state.get('audit')).toBe(7);
  });
});

describe('workflow workload trips', () => {
  /** A seeded random: the same sequence every run. */
  function seeded(seed: number): () => number {
    let x = seed;
    return () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 2 ** 32;
    };
  }

  it('have 1 to 10 legs, a payment last when several, and a few fail on purpose at the last leg', () => {
    const rnd = seeded(7);
    const trips = Array.from({ length: 2000 }, () => tripLegs(rnd));
    const lengths = new Set(trips.map((t) => t.length));
    expect(Math.min(...lengths)).toBe(1);
    expect(Math.max(...lengths)).toBe(10);
    const declined = trips.filter((t) => t[t.length - 1]!.decline === true);
    const soldOut = trips.filter((t) => t[t.length - 1]!.capacity === 0);
    for (const t of trips) {
      for (const leg of t.slice(0, -1)) {
        expect(leg.decline ?? false).toBe(false);
        expect(leg.capacity).not.toBe(0);
      }
      if (t.length > 1 && t[t.length - 1]!.capacity !== 0) expect(t[t.length - 1]!.kind).toBe('payment');
    }
    // About 6 % each (2000 trips: 120 expected), enough for compensations to show, not most.
    expect(declined.length).toBeGreaterThan(60);
    expect(declined.length).toBeLessThan(240);
    expect(soldOut.length).toBeGreaterThan(60);
    expect(soldOut.length).toBeLessThan(240);
  });
});
