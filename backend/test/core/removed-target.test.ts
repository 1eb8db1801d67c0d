import type { Json } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/core/app';
import type { RemovedReply } from '../../src/core/caller-table';
import { sthreadReplies } from '../../src/core/caller-table';
import type { WireMessage } from '../../src/core/messages';
import { DseNode } from '../../src/core/node';
import { callerKey } from '../../src/core/state-keys';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';

/**
 * An sthread waiting on a node removed for good (`ActionContext.targetRemoved`): its call is answered
 * on its own node from what the removed node's committed state holds, never left waiting.
 */

/** `go`: an sthread `g<n>` calls `to` once and stores the answer as `r<n>`; `gone`: records a removed node. */
const app: App = {
  onRequest(ctx, req): Json {
    const p = req.payload as { op: string; to?: string; n?: number; node?: string; replies?: RemovedReply[] };
    if (p.op === 'go') {
      const n = p.n!;
      ctx.detach(`g${n}`, async (st) => {
        const answer = await st.call(p.to!, { x: n });
        await st.merge((m) => m.put(`r${n}`, answer));
      });
      return { started: n };
    }
    if (p.op === 'gone') {
      ctx.targetRemoved(p.node!, p.replies!);
      return { ok: true };
    }
    return null;
  },
  onMessage(ctx, from, payload) {
    ctx.put(`m/${from}`, payload);
  },
};

async function setup() {
  const sched = new Scheduler();
  const sent: [string, WireMessage][] = [];
  const node = new DseNode(
    'n1',
    app,
    { clock: new ProcessClock(sched), network: { send: (to, msg) => sent.push([to, msg]) }, storage: new MemoryStorage(), observer: { emit: () => undefined } },
    { checkpointIntervalMs: 10, retransmitMs: 30 },
  );
  const settle = async (ms = 0): Promise<void> => {
    const end = sched.now + ms;
    for (let i = 0; i < 50; i++) await Promise.resolve();
    while (sched.step(end)) for (let i = 0; i < 20; i++) await Promise.resolve();
    for (let i = 0; i < 50; i++) await Promise.resolve();
  };
  node.start();
  node.receive({ kind: 'recover', worldLine: 1, cut: { n1: 0 }, resumeVersion: 1 });
  await settle();
  let seq = 0;
  const ask = async (payload: Json): Promise<void> => {
    seq++;
    node.receive({ kind: 'request', h: { src: 'client', srcVersion: 0, worldLine: 1, seq }, caller: 'client.s1', deps: {}, payload, probe: false });
    await settle();
  };
  const callsTo = (to: string) => sent.filter(([t, m]) => t === to && m.kind === 'request').length;
  return { node, ask, settle, callsTo, sent };
}

describe('calls to a node removed for good', () => {
  it('answers a waiting call with the reply the removed node committed, once, without a message', async () => {
    const t = await setup();
    await t.ask({ op: 'go', to: 'n2', n: 0 });
    expect(t.callsTo('n2')).toBe(1);
    expect(t.node.appState().has('r0')).toBe(false); // n2 never answers: it is gone
    await t.ask({ op: 'gone', node: 'n2', replies: [['n1~g0', 1, { status: 'done', result: { booked: true }, version: 3 }]] });
    expect(t.node.appState().get('r0')).toEqual({ booked: true });
    // Retransmissions stop: nothing more goes to n2.
    const before = t.callsTo('n2');
    await t.settle(200);
    expect(t.callsTo('n2')).toBe(before);
  });

  it('answers NodeRemoved for a call the removed node did not commit, and Orphaned for one under way there', async () => {
    const t = await setup();
    await t.ask({ op: 'go', to: 'n2', n: 0 });
    await t.ask({ op: 'go', to: 'n2', n: 1 });
    await t.ask({ op: 'gone', node: 'n2', replies: [['n1~g1', 1, { status: 'inProgress', acceptedAt: 2 }]] });
    expect(t.node.appState().get('r0')).toMatchObject({ error: { code: 'NodeRemoved', node: 'n2' } });
    expect(t.node.appState().get('r1')).toMatchObject({ error: { code: 'Orphaned', node: 'n2' } });
  });

  it('answers a later call at once, and leaves calls to other nodes alone', async () => {
    const t = await setup();
    await t.ask({ op: 'gone', node: 'n2', replies: [] });
    await t.ask({ op: 'go', to: 'n2', n: 5 });
    await t.ask({ op: 'go', to: 'n3', n: 6 });
    expect(t.callsTo('n2')).toBe(0);
    expect(t.node.appState().get('r5')).toMatchObject({ error: { code: 'NodeRemoved' } });
    expect(t.callsTo('n3')).toBe(1);
    expect(t.node.appState().has('r6')).toBe(false);
  });

  it('drops a late copy of a message from a node removed for good (its heirs took what it sent), and acknowledges it', async () => {
    const t = await setup();
    const app = (src: string, seq: number, payload: Json): void => t.node.receive({ kind: 'app', h: { src, srcVersion: 1, worldLine: 1, seq }, payload });
    app('n2', 1, 'before');
    await t.settle();
    expect(t.node.appState().get('m/n2')).toBe('before');
    await t.ask({ op: 'gone', node: 'n2', replies: [] });
    app('n2', 2, 'late copy');
    app('n3', 1, 'from a member');
    await t.settle();
    expect(t.node.appState().get('m/n2')).toBe('before');
    expect(t.node.appState().get('m/n3')).toBe('from a member');
    expect(t.sent.filter(([to, m]) => to === 'n2' && m.kind === 'ack').length).toBe(2);
  });

  it('reads the sthreads’ replies out of a removed node’s committed state, not the sessions’', () => {
    const table = (replies: Json) => ({ lastSeq: 2, endpoint: 'x', replies });
    const state: [string, Json][] = [
      [callerKey('n1~wf/a/s0'), table({ 1: { status: 'done', result: 7, version: 4 }, 2: { status: 'aborted' } })],
      [callerKey('n3~wf/b/s1'), table({ 1: { status: 'pending', acceptedAt: 2 } })],
      [callerKey('client.s1'), table({ 1: { status: 'done', result: 1, version: 1 } })],
      ['a:key', 1],
    ];
    expect(sthreadReplies(state)).toEqual([
      ['n1~wf/a/s0', 1, { status: 'done', result: 7, version: 4 }],
      ['n3~wf/b/s1', 1, { status: 'inProgress', acceptedAt: 2 }],
    ]);
  });
});
