import type { Json } from '@dse/shared';
import { isDseError, MODES } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { BrokerClient, Producer } from '../../src/services/broker';
import { rejection, TestCluster } from './cluster';

async function setup(mode: (typeof MODES)[number] = 'speculative') {
  const c = await TestCluster.start({ mode });
  const client = () => new BrokerClient(c.session(), { nodes: c.nodeIds, cutView: c.host });
  return { c, client };
}

const ids = (events: { producer: string; seq: number }[]) => events.map((e) => `${e.producer}/${e.seq}`);

describe('event broker', () => {
  it('publishes with (producer, seq): duplicates are dropped, a skipped seq is refused with the one expected', async () => {
    const { c, client } = await setup();
    const b = client();
    expect((await c.run(b.publish('t', 'p', 1, 'a'))).value).toEqual({ offset: 0, duplicate: false });
    expect((await c.run(b.publish('t', 'q', 1, 'x'))).value).toEqual({ offset: 1, duplicate: false });
    expect((await c.run(b.publish('t', 'p', 1, 'a'))).value).toEqual({ offset: null, duplicate: true });
    expect((await c.run(b.publish('t', 'p', 3, 'c'))).value).toEqual({ offset: null, duplicate: false, expected: 2 });
    expect((await c.run(b.publish('t', 'p', 2, 'b'))).value).toEqual({ offset: 2, duplicate: false });
    expect((await c.run(b.offsets('t', 'g'))).value).toEqual({ offset: 0, length: 3 });
  });

  it('consumer groups keep their own offsets in the topic node: each event once per group, in order', async () => {
    const { c, client } = await setup();
    const prod = client();
    for (let s = 1; s <= 5; s++) await c.run(prod.publish('t', 'p', s, s));
    const g1a = client();
    const g1b = client();
    const g2 = client();
    const first = await c.run(g1a.poll('t', 'g1', { max: 2 }));
    expect(first.value).toMatchObject({ from: 0, next: 2, committed: false });
    expect(ids(first.value.events)).toEqual(['p/1', 'p/2']);
    // Another consumer of the same group goes on from there; another group starts at 0.
    expect(ids((await c.run(g1b.poll('t', 'g1'))).value.events)).toEqual(['p/3', 'p/4', 'p/5']);
    expect(ids((await c.run(g2.poll('t', 'g2', { max: 1 }))).value.events)).toEqual(['p/1']);
    expect((await c.run(g1a.poll('t', 'g1'))).value).toMatchObject({ from: 5, events: [], next: 5 });
    expect((await c.run(g1a.offsets('t', 'g1'))).value).toEqual({ offset: 5, length: 5 });
  });

  it('a speculative consumer sees events at once and depends on them; a committed-only one sees only committed events', async () => {
    const { c, client } = await setup();
    const prod = client();
    const node = prod.nodeOf('t');
    const a = await c.run(prod.publish('t', 'p', 1, 'a'));
    await c.run(a.commit());
    const b = await c.run(prod.publish('t', 'p', 2, 'b'));
    const comm = client();
    const got = await c.run(comm.poll('t', 'comm', { committed: true }));
    expect(got.value.committed).toBe(true);
    expect(ids(got.value.events)).toEqual(['p/1']);
    const spec = client();
    const seen = await c.run(spec.poll('t', 'spec'));
    expect(ids(seen.value.events)).toEqual(['p/1', 'p/2']);
    expect(seen.deps[node]).toBeGreaterThanOrEqual(b.deps[node]!);
    await c.run(b.commit());
    expect(ids((await c.run(comm.poll('t', 'comm', { committed: true }))).value.events)).toEqual(['p/2']);
  });

  it('a producer publishes again what a crash rolled back: no event lost, none twice, in order', async () => {
    const { c, client } = await setup();
    const b = client();
    const producer = new Producer(b, 't', 'p');
    const node = b.nodeOf('t');
    await c.run((await c.run(producer.send('e1'))).commit());
    const lost = await c.run(producer.send('e2'));
    c.crash(node);
    await c.advance(5);
    c.restart(node);
    const err = await c.run(rejection(lost.commit()));
    expect(isDseError(err) && err.code === 'RolledBack').toBe(true);
    const third = await c.run(producer.send('e3'));
    await c.run(third.commit());
    expect(producer.uncommitted).toBe(0);
    const all = await c.run(client().poll('t', 'check'));
    expect(all.value.events.map((e) => [e.seq, e.data])).toEqual([
      [1, 'e1'],
      [2, 'e2'],
      [3, 'e3'],
    ]);
  });

  it('flush publishes again what was rolled back after the last send', async () => {
    const { c, client } = await setup();
    const b = client();
    const producer = new Producer(b, 't', 'p');
    const node = b.nodeOf('t');
    await c.run(producer.send('only'));
    c.crash(node);
    await c.advance(5);
    c.restart(node);
    await c.advance(100);
    expect(producer.publishedUpTo).toBe(0);
    await c.run(producer.flush());
    const events: Json[] = (await c.run(client().poll('t', 'g'))).value.events.map((e) => e.data);
    expect(events).toEqual(['only']);
  });

  it('committed-only polls need the cut: a client without a cutView is refused', () => {
    const c = { session: null as never };
    const b = new BrokerClient(c.session, { nodes: ['n1'] });
    expect(() => b.poll('t', 'g', { committed: true })).toThrow(/cutView/);
  });

  for (const mode of MODES) {
    it(`runs in ${mode} mode`, async () => {
      const { c, client } = await setup(mode);
      const p = new Producer(client(), 'm', 'p');
      await c.run(p.send(1));
      await c.run((await c.run(p.send(2))).commit());
      const r = await c.run(client().poll('m', 'g', { committed: true }));
      expect(r.value.events.map((e) => e.data)).toEqual([1, 2]);
    });
  }
});
