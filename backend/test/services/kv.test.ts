import { isDseError, MODES } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { KvClient, kvNode } from '../../src/services/kv';
import { rejection, TestCluster } from './cluster';

async function setup(mode: (typeof MODES)[number] = 'speculative') {
  const c = await TestCluster.start({ mode });
  return { c, kv: new KvClient(c.session(), { nodes: c.nodeIds }) };
}

describe('key-value store', () => {
  it('get, put, delete and compare-and-set, each write numbered', async () => {
    const { c, kv } = await setup();
    expect((await c.run(kv.get('a'))).value).toEqual({ value: null, n: 0 });
    expect((await c.run(kv.put('a', 1))).value).toEqual({ n: 1 });
    expect((await c.run(kv.get('a'))).value).toEqual({ value: 1, n: 1 });
    expect((await c.run(kv.cas('a', 2, 3))).value).toEqual({ ok: false, n: 1, value: 1 });
    expect((await c.run(kv.cas('a', 1, { x: [3] }))).value).toEqual({ ok: true, n: 2, value: 1 });
    expect((await c.run(kv.cas('a', { x: [3] }, null))).value).toEqual({ ok: true, n: 3, value: { x: [3] } });
    expect((await c.run(kv.get('a'))).value).toEqual({ value: null, n: 3 });
    expect((await c.run(kv.cas('a', null, 'new'))).value).toEqual({ ok: true, n: 4, value: null });
    expect((await c.run(kv.delete('a'))).value).toEqual({ n: 5, existed: true });
    expect((await c.run(kv.delete('a'))).value).toEqual({ n: 6, existed: false });
    const last = await c.run(kv.put('a', 'end'));
    expect(await c.run(last.commit())).toEqual({ n: 7 });
  });

  it('a session reads its own writes at once, before they commit', async () => {
    const { c, kv } = await setup();
    const w = await c.run(kv.put('k', 'mine'));
    const r = await c.run(kv.get('k'));
    expect(r.value).toEqual({ value: 'mine', n: 1 });
    // The read depends on the write: it commits with it, never before.
    expect(r.deps[kv.nodeOf('k')]).toBeGreaterThanOrEqual(w.deps[kv.nodeOf('k')]!);
  });

  it('keys are sharded over the nodes: each lives on its shard only', async () => {
    const { c, kv } = await setup();
    const keys = Array.from({ length: 24 }, (_, i) => `key${i}`);
    for (const k of keys) await c.run(kv.put(k, k));
    const owners = new Set(keys.map((k) => kvNode(k, c.nodeIds)));
    expect(owners.size).toBe(3);
    for (const k of keys) {
      for (const n of c.nodeIds) expect(c.state(n).has(`kv/${k}`)).toBe(n === kv.nodeOf(k));
    }
  });

  it('a checkpoint holds only what changed, however big the store', async () => {
    const { c, kv } = await setup();
    // Big enough that a full snapshot (taken once the deltas since the last add up to the state's size,
    // see SnapshotSchedule) is the exception: most versions are written as deltas.
    const keys = Array.from({ length: 800 }, (_, i) => `big${i}`).filter((k) => kvNode(k, c.nodeIds) === 'n1');
    let last = null;
    for (const k of keys) last = await c.run(kv.put(k, 'x'.repeat(50)));
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- the rule misreads this evolving `let` (tsc needs the assertion)
    await c.run(last!.commit());
    await c.advance(50);
    const from = c.events.length;
    for (let i = 0; i < 3; i++) await c.run((await c.run(kv.put(keys[i]!, 'changed'))).commit());
    const cps = c.events.slice(from).filter((e) => e.type === 'checkpointStarted' && e.node === 'n1');
    const deltas = cps.filter((e) => e.type === 'checkpointStarted' && !e.full);
    expect(deltas.length).toBeGreaterThan(cps.length / 2);
    // The changed key, plus the runtime's own few (the caller's reply table): nowhere near the store's size.
    for (const e of deltas) if (e.type === 'checkpointStarted') expect(e.changedKeys).toBeLessThanOrEqual(3);
    expect(keys.length).toBeGreaterThan(100);
  });

  it('a write not yet committed when its shard crashes is rolled back, with every later request of the session', async () => {
    const { c, kv } = await setup();
    const node = kv.nodeOf('x');
    await c.run((await c.run(kv.put('x', 'kept'))).commit());
    const lost = await c.run(kv.put('x', 'lost'));
    const after = await c.run(kv.get('x'));
    expect(after.value.value).toBe('lost');
    c.crash(node);
    await c.advance(5);
    c.restart(node);
    for (const r of [lost, after]) {
      const err = await c.run(rejection(r.commit()));
      expect(isDseError(err) && err.code === 'RolledBack').toBe(true);
    }
    // The session stays rolled back until the client acknowledges it.
    await expect(c.run(kv.get('x'))).rejects.toMatchObject({ code: 'SessionRolledBack', definite: true });
    kv.resume();
    expect((await c.run(kv.get('x'))).value).toEqual({ value: 'kept', n: 1 });
  });

  it('refuses a put of null and an unknown op', async () => {
    const { c, kv } = await setup();
    await expect(c.run(kv.put('a', null))).rejects.toMatchObject({ code: 'BadRequest' });
    const r = await c.run(c.session().request('n1', { svc: 'kv', op: 'incr', key: 'a' }));
    expect(r.result).toMatchObject({ error: { code: 'BadRequest' } });
  });

  for (const mode of MODES) {
    it(`runs in ${mode} mode`, async () => {
      const { c, kv } = await setup(mode);
      await c.run(kv.put('m', 1));
      const r = await c.run(kv.cas('m', 1, 2));
      expect(await c.run(r.commit())).toEqual({ ok: true, n: 2, value: 1 });
    });
  }
});
