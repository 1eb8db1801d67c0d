import type { Json } from '@dse/shared';
import { MODES } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { Booking, TripLeg, WorkflowOutcome, WorkflowStep } from '../../src/services/workflow';
import { providerNode, travelReservation, WorkflowClient } from '../../src/services/workflow';
import { kvNode } from '../../src/services/kv';
import { walNode } from '../../src/services/wal';
import { TestCluster } from './cluster';

async function setup(mode: (typeof MODES)[number] = 'speculative', nodes = 4) {
  const c = await TestCluster.start({ mode, nodes });
  return { c, wf: new WorkflowClient(c.session(), { nodes: c.nodeIds }) };
}

function booking(c: TestCluster, id: string, step: number, legs: TripLeg[]): Booking | undefined {
  return c.state(providerNode(legs[step]!.item, c.nodeIds)).get(`tr/b/${id}/${step}`) as unknown as Booking | undefined;
}

function stock(c: TestCluster, kind: TripLeg['kind'], item: string): number | undefined {
  return (c.state(providerNode(item, c.nodeIds)).get(`tr/s/${item}`) as { c: number } | undefined)?.c;
}

const trip: TripLeg[] = [
  { kind: 'flight', item: 'LH1', capacity: 10 },
  { kind: 'hotel', item: 'ritz', capacity: 5 },
  { kind: 'car', item: 'avis', capacity: 3 },
  { kind: 'payment', item: 'visa', capacity: null },
];

describe('workflows', () => {
  it('a travel reservation books every step and answers with the outcome', async () => {
    const { c, wf } = await setup();
    const r = await c.run(wf.run('t1', travelReservation('t1', trip, c.nodeIds)));
    expect(r.value).toEqual({ id: 't1', status: 'completed', compensated: [] });
    expect(await c.run(r.commit())).toEqual(r.value);
    for (let k = 0; k < trip.length; k++) expect(booking(c, 't1', k, trip)).toMatchObject({ st: 'booked', n: 1, cn: 0 });
    expect([stock(c, 'flight', 'LH1'), stock(c, 'hotel', 'ritz'), stock(c, 'car', 'avis')]).toEqual([9, 4, 2]);
    expect((await c.run(wf.status('t1'))).value).toMatchObject({ phase: 'done', next: 4, steps: 4, outcome: { status: 'completed' } });
  });

  it('a business failure compensates the steps before it, last first (saga)', async () => {
    const { c, wf } = await setup();
    const legs = trip.map((l) => (l.kind === 'payment' ? { ...l, decline: true } : l));
    const r = await c.run(wf.run('t2', travelReservation('t2', legs, c.nodeIds)));
    expect(r.value).toEqual({ id: 't2', status: 'failed', failedAt: 3, reason: 'declined', compensated: [2, 1, 0] });
    for (let k = 0; k < 3; k++) expect(booking(c, 't2', k, legs)).toMatchObject({ st: 'cancelled', n: 1, cn: 1 });
    expect(booking(c, 't2', 3, legs)).toMatchObject({ st: 'refused', n: 1, cn: 0, why: 'declined' });
    // Compensations gave the stock back.
    expect([stock(c, 'flight', 'LH1'), stock(c, 'hotel', 'ritz'), stock(c, 'car', 'avis')]).toEqual([10, 5, 3]);
  });

  it('a sold-out item fails the workflow at that step; nothing after it runs', async () => {
    const { c, wf } = await setup();
    const legs: TripLeg[] = [
      { kind: 'hotel', item: 'tiny', capacity: 1 },
      { kind: 'car', item: 'one', capacity: 1 },
      { kind: 'payment', item: 'visa', capacity: null },
    ];
    expect((await c.run(wf.run('a', travelReservation('a', legs, c.nodeIds)))).value.status).toBe('completed');
    const r = await c.run(wf.run('b', travelReservation('b', legs, c.nodeIds)));
    expect(r.value).toEqual({ id: 'b', status: 'failed', failedAt: 0, reason: 'sold out', compensated: [] });
    expect(booking(c, 'b', 1, legs)).toBeUndefined();
  });

  it('a workflow id is used once; a workflow without steps completes at once', async () => {
    const { c, wf } = await setup();
    expect((await c.run(wf.run('e', []))).value).toEqual({ id: 'e', status: 'completed', compensated: [] });
    await expect(c.run(wf.run('e', []))).rejects.toMatchObject({ code: 'Conflict' });
    await expect(c.run(wf.run('bad', [{ name: 'x', node: '', do: 1, undo: null }]))).rejects.toMatchObject({ code: 'BadRequest' });
  });

  it('steps may call any service: a key-value write, a log append, a reservation', async () => {
    const { c, wf } = await setup();
    const steps: WorkflowStep[] = [
      {
        name: 'remember',
        node: kvNode('order:7', c.nodeIds),
        do: { svc: 'kv', op: 'put', key: 'order:7', value: 'pending' },
        undo: { svc: 'kv', op: 'delete', key: 'order:7' },
      },
      { name: 'journal', node: walNode('orders', c.nodeIds), do: { svc: 'wal', op: 'append', log: 'orders', data: 'order 7' }, undo: null },
      ...travelReservation('mixed', [{ kind: 'payment', item: 'visa', capacity: null, decline: true }], c.nodeIds).map((s) => ({
        ...s,
        do: { ...(s.do as Record<string, Json>), step: 2 },
      })),
    ];
    const r = await c.run(wf.run('mixed', steps));
    expect(r.value).toMatchObject({ status: 'failed', failedAt: 2, compensated: [0] });
    expect(c.state(kvNode('order:7', c.nodeIds)).get('kv/order:7')).toMatchObject({ x: null, n: 2 });
    expect(c.state(walNode('orders', c.nodeIds)).get('wal/orders/n')).toBe(1);
  });

  // The orchestrator crashes at different moments of a 10-step workflow (messages take 2 ms, so the
  // workflow spans several checkpoints). After the recovery it continues from its committed step, and
  // every step runs exactly once; a start that was not committed is rolled back and leaves nothing.
  it('continues from its committed step after its orchestrator crashes, each step once', async () => {
    const continued: number[] = [];
    for (const at of [3, 9, 15, 22, 30, 38, 47, 60]) {
      const c = await TestCluster.start({ nodes: 4, latencyMs: 2 });
      const kinds = ['flight', 'hotel', 'car'] as const;
      // Items held by the other nodes, so that the orchestrator's crash loses no booking of its own.
      const orchestrator = 'n4';
      const items = Array.from({ length: 100 }, (_, i) => `i${i}`).filter((item) => providerNode(item, c.nodeIds) !== orchestrator);
      const legs: TripLeg[] = Array.from({ length: 10 }, (_, i) => ({ kind: kinds[i % 3]!, item: items[i]!, capacity: 5 }));
      let restoredAt = -1;
      c.onEvent = (e) => {
        if (e.type === 'rollback' && e.node === orchestrator && e.worldLine > 1)
          restoredAt = (c.state(orchestrator).get('wf/long') as { k?: number } | undefined)?.k ?? -1;
      };
      const client = new WorkflowClient(c.session(), { nodes: c.nodeIds });
      const started = client.run('long', travelReservation('long', legs, c.nodeIds), orchestrator);
      await c.advance(at);
      c.crash(orchestrator);
      await c.advance(3);
      c.restart(orchestrator);
      let outcome: WorkflowOutcome | null = null;
      try {
        outcome = await c.run((await c.run(started)).commit());
      } catch (e) {
        expect(e).toMatchObject({ code: 'RolledBack' });
      }
      if (outcome !== null) {
        expect(outcome).toEqual({ id: 'long', status: 'completed', compensated: [] });
        for (let k = 0; k < 10; k++) expect(booking(c, 'long', k, legs)).toMatchObject({ st: 'booked', n: 1 });
        for (let k = 0; k < 10; k++) expect(stock(c, legs[k]!.kind, legs[k]!.item)).toBe(4);
        if (restoredAt > 0 && restoredAt < 10) continued.push(restoredAt);
      } else {
        for (let k = 0; k < 10; k++) expect(booking(c, 'long', k, legs)).toBeUndefined();
      }
      expect(c.sthreadErrors()).toEqual([]);
    }
    // Some crashes hit the middle: the workflow went on from a committed step above the first.
    expect(continued.length).toBeGreaterThan(1);
  });

  for (const mode of MODES) {
    it(`runs in ${mode} mode`, async () => {
      const { c, wf } = await setup(mode);
      const legs = trip.map((l) => (l.kind === 'payment' ? { ...l, decline: true } : l));
      const r = await c.run(wf.run('m', travelReservation('m', legs, c.nodeIds)));
      expect(await c.run(r.commit())).toMatchObject({ status: 'failed', compensated: [2, 1, 0] });
    });
  }
});
