import { describe, expect, it } from 'vitest';
import { jsonEqual, serviceRouter, shardOf, throwIfError } from '../../src/services/common';
import { hash32 as hash, ownerOf } from '../../src/services/placement';
import { servicesApp } from '../../src/services';
import { TestCluster } from './cluster';

describe('service plumbing', () => {
  it('places names by a stable hash: the same node in every process', () => {
    expect(hash('')).toBe(0x811c9dc5);
    expect(hash('kv:a')).toBe(hash('kv:a'));
    const nodes = ['n1', 'n2', 'n3', 'n4'];
    const counts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const n = shardOf(`key${i}`, nodes);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const c of counts.values()) expect(c).toBeGreaterThan(50);
    expect(() => shardOf('x', [])).toThrow();
  });

  it('rendezvous placement: adding a node moves only the keys it wins, removing one moves only its own', () => {
    const four = ['n1', 'n2', 'n3', 'n4'];
    const five = [...four, 'n5'];
    const keys = Array.from({ length: 2000 }, (_, i) => `kv:key${i}`);
    const moved = keys.filter((k) => ownerOf(k, four) !== ownerOf(k, five));
    // Every moved key went to the new node, and about 1/5 of them moved.
    for (const k of moved) expect(ownerOf(k, five)).toBe('n5');
    expect(moved.length).toBeGreaterThan(2000 * 0.14);
    expect(moved.length).toBeLessThan(2000 * 0.26);
    const three = ['n1', 'n2', 'n4'];
    for (const k of keys) if (ownerOf(k, four) !== 'n3') expect(ownerOf(k, three)).toBe(ownerOf(k, four));
    // The order of the members does not matter.
    for (const k of keys.slice(0, 100)) expect(ownerOf(k, [...four].reverse())).toBe(ownerOf(k, four));
  });

  it('compares JSON values whatever the order of object keys', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2, d: 3 }] }, { b: [1, { d: 3, c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual(null, undefined)).toBe(true);
  });

  it('turns a typed refusal into a DseError', () => {
    expect(() => throwIfError({ error: { code: 'Conflict', message: 'taken', definite: true } })).toThrow(
      expect.objectContaining({ code: 'Conflict', definite: true }),
    );
    expect(() => throwIfError({ value: 1 })).not.toThrow();
  });

  it('routes by svc and refuses a request for a service the node does not run', async () => {
    const c = await TestCluster.start({ app: serviceRouter({}) });
    const r = await c.run(c.session().request('n1', { svc: 'kv', op: 'get', key: 'a' }));
    expect(r.result).toMatchObject({ error: { code: 'BadRequest' } });
    const all = await TestCluster.start({ app: servicesApp });
    const ok = await all.run(all.session().request('n2', { svc: 'kv', op: 'get', key: 'a' }));
    expect(ok.result).toEqual({ value: null, n: 0 });
  });
});
