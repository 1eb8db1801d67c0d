import { isDseError, MODES } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { readLog, WalClient, walNode } from '../../src/services/wal';
import { rejection, TestCluster } from './cluster';

async function setup(mode: (typeof MODES)[number] = 'speculative') {
  const c = await TestCluster.start({ mode });
  const wal = new WalClient(c.session(), { nodes: c.nodeIds, cutView: c.host });
  return { c, wal };
}

describe('write-ahead log', () => {
  it('appends return positions at once, speculatively; commit() makes them durable', async () => {
    const { c, wal } = await setup();
    const a = await c.run(wal.append('orders', 'first'));
    const b = await c.run(wal.append('orders', { second: 2 }));
    expect([a.value.pos, b.value.pos]).toEqual([0, 1]);
    expect(a.deps[wal.nodeOf('orders')]).toBeGreaterThan(0);
    await expect(c.run(b.commit())).resolves.toEqual({ pos: 1 });
    const r = await c.run(wal.read('orders'));
    expect(r.value).toEqual({
      entries: [
        { pos: 0, data: 'first' },
        { pos: 1, data: { second: 2 } },
      ],
      next: 2,
      length: 2,
      committed: false,
    });
  });

  it('a speculative read sees an append at once; a committed-only read only once it is committed', async () => {
    const { c, wal } = await setup();
    const a = await c.run(wal.append('audit', 'x'));
    const spec = await c.run(wal.read('audit'));
    expect(spec.value.entries).toHaveLength(1);
    const before = await c.run(wal.read('audit', { committed: true }));
    expect(before.value).toEqual({ entries: [], next: 0, committed: true });
    expect((await c.run(wal.length('audit', { committed: true }))).value.length).toBe(0);
    await c.run(a.commit());
    const after = await c.run(wal.read('audit', { committed: true }));
    expect(after.value.entries).toEqual([{ pos: 0, data: 'x' }]);
    expect((await c.run(wal.length('audit', { committed: true }))).value.length).toBe(1);
    expect((await c.run(wal.read('audit', { from: 1 }))).value.entries).toEqual([]);
  });

  it('logs are placed on nodes by name, every client agreeing', async () => {
    const { c, wal } = await setup();
    for (const log of ['a', 'b', 'c', 'd', 'e']) {
      await c.run(wal.append(log, log));
      expect(wal.nodeOf(log)).toBe(walNode(log, c.nodeIds));
      expect(c.state(wal.nodeOf(log)).get(`wal/${log}/n`)).toBe(1);
      for (const other of c.nodeIds.filter((n) => n !== wal.nodeOf(log))) expect(c.state(other).has(`wal/${log}/n`)).toBe(false);
    }
  });

  it('the committed prefix survives a crash of the log node; appends not yet committed are rolled back, definitely', async () => {
    const { c, wal } = await setup();
    const node = wal.nodeOf('orders');
    for (const d of ['a', 'b', 'c']) await c.run(wal.append('orders', d));
    await c.run((await c.run(wal.append('orders', 'd'))).commit());
    const lost = await c.run(wal.append('orders', 'e'));
    c.crash(node); // before 'e' is checkpointed
    await c.advance(5);
    c.restart(node);
    const err = await c.run(rejection(lost.commit()));
    expect(isDseError(err) && err.code === 'RolledBack' && err.definite).toBe(true);
    await expect(c.run(wal.read('orders', { committed: true }))).rejects.toMatchObject({ code: 'SessionRolledBack' });
    wal.resume();
    const r = await c.run(wal.read('orders', { committed: true }));
    expect(r.value.entries.map((e) => e.data)).toEqual(['a', 'b', 'c', 'd']);
    // The log goes on from the committed prefix.
    expect((await c.run(wal.append('orders', 'f'))).value.pos).toBe(4);
  });

  it('refuses a request without a log name (a typed, definite error)', async () => {
    const { c } = await setup();
    const s = c.session();
    const r = await c.run(s.request('n1', { svc: 'wal', op: 'append', data: 1 }));
    expect(r.result).toMatchObject({ error: { code: 'BadRequest', definite: true } });
    const wal = new WalClient(c.session(), { nodes: c.nodeIds });
    expect(() => wal.read('x', { committed: true })).toThrow(/cutView/);
  });

  it('readLog stops at the first entry above the bound', () => {
    const state = new Map<string, unknown>([
      ['wal/l/n', 3],
      ['wal/l/e/0', { d: 'a', v: 1 }],
      ['wal/l/e/1', { d: 'b', v: 2 }],
      ['wal/l/e/2', { d: 'c', v: 4 }],
    ]);
    const get = (k: string) => state.get(k) as never;
    expect(readLog({ get }, 'l', 0, 10, 2).map((e) => e.data)).toEqual(['a', 'b']);
    expect(readLog({ get }, 'l', 1, 1).map((e) => e.data)).toEqual(['b']);
  });

  for (const mode of MODES) {
    it(`runs in ${mode} mode`, async () => {
      const { c, wal } = await setup(mode);
      const a = await c.run(wal.append('m', 1));
      const b = await c.run(wal.append('m', 2));
      await c.run(b.commit());
      expect(await c.run(a.commit())).toEqual({ pos: 0 });
      expect((await c.run(wal.read('m', { committed: true }))).value.entries.map((e) => e.data)).toEqual([1, 2]);
    });
  }
});
