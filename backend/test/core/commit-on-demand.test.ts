import type { InspectionEvent, Json } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/core/app';
import { PENDING } from '../../src/core/app';
import { Coordinator } from '../../src/core/coordinator';
import type { WireMessage } from '../../src/core/messages';
import { COORDINATOR } from '../../src/core/messages';
import { DseNode } from '../../src/core/node';
import { SessionHost } from '../../src/core/session';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';

/**
 * Commit on demand: a session that awaits `commit()` asks the nodes its answer depends on to close and
 * persist those versions now; each node passes the request on to what its versions depend on. With
 * checkpoints every second, the answer commits within milliseconds of virtual time instead of waiting
 * for the next checkpoint of every node on the way.
 */

/** `chain`: writes here, then forwards to the next node; the last one completes the request at the entry. */
const app: App = {
  onRequest(ctx, req): Json | typeof PENDING {
    const p = req.payload as { to: string[] };
    ctx.put(`r${req.seq}`, 1);
    if (p.to.length === 0) return { ok: true };
    ctx.send(p.to[0]!, { rest: p.to.slice(1), caller: req.caller, seq: req.seq, origin: ctx.nodeId });
    return PENDING;
  },
  onMessage(ctx, _from, payload) {
    const m = payload as { rest: string[]; caller: string; seq: number; origin: string; done?: boolean };
    if (m.done === true) {
      ctx.completeRequest(m.caller, m.seq, { ok: true });
      return;
    }
    ctx.put(`hop${m.seq}`, 1);
    if (m.rest.length > 0) ctx.send(m.rest[0]!, { ...m, rest: m.rest.slice(1) });
    else ctx.send(m.origin, { ...m, done: true });
  },
};

async function cluster(checkpointIntervalMs: number) {
  const sched = new Scheduler();
  const storage = new MemoryStorage();
  const events: InspectionEvent[] = [];
  const observer = { emit: (e: InspectionEvent) => events.push(e) };
  const endpoints = new Map<string, { receive(m: WireMessage): void }>();
  const flushes: [string, string][] = [];
  const network = (from: string) => ({
    send(to: string, m: WireMessage): void {
      if (m.kind === 'flush') flushes.push([from, to]);
      sched.after(0.5, () => endpoints.get(to)?.receive(m));
    },
  });
  const coordinator = new Coordinator({ clock: new ProcessClock(sched), network: network(COORDINATOR), storage, observer }, { pruneIntervalMs: 1_000_000 });
  endpoints.set(COORDINATOR, coordinator);
  const host = new SessionHost('client', { clock: new ProcessClock(sched), network: network('client'), observer }, { retransmitMs: 1000 });
  endpoints.set('client', host);
  coordinator.addClient('client');
  const run = async (ms: number): Promise<void> => {
    for (const end = sched.now + ms; sched.now < end;) {
      sched.runUntil(Math.min(end, sched.now + 0.5));
      for (let i = 0; i < 30; i++) await Promise.resolve();
    }
  };
  const started = coordinator.start(['n1', 'n2', 'n3']);
  await run(5);
  await started;
  host.start(coordinator.worldLine);
  let inc = 0;
  for (const id of ['n1', 'n2', 'n3']) {
    const node = new DseNode(
      id,
      app,
      { clock: new ProcessClock(sched), network: network(id), storage, observer, incarnation: ++inc },
      { checkpointIntervalMs, retransmitMs: 1000 },
    );
    endpoints.set(id, node);
    node.start();
  }
  await run(20);
  return { sched, host, events, flushes, run };
}

/** Virtual ms from sending the request to its commit, and who was asked to flush. */
async function commitTime(awaitCommit: boolean): Promise<{ answeredAt: number; committedAt: number | null; flushes: [string, string][] }> {
  const c = await cluster(1000);
  const s = c.host.session('client.s1');
  const t0 = c.sched.now;
  let answeredAt = 0;
  let committedAt: number | null = null;
  void s.request('n1', { to: ['n2', 'n3'] }).then((a) => {
    answeredAt = c.sched.now - t0;
    if (awaitCommit) void a.commit().then(() => (committedAt = c.sched.now - t0));
  });
  await c.run(100);
  return { answeredAt, committedAt, flushes: c.flushes };
}

describe('commit on demand', () => {
  it('an awaited commit comes within milliseconds, not at the next one-second checkpoint', async () => {
    const r = await commitTime(true);
    expect(r.answeredAt).toBeGreaterThan(0);
    expect(r.committedAt).not.toBeNull();
    expect(r.committedAt!).toBeLessThan(50);
    // The session asked the entry node; it passed the request on along the chain it depends on.
    expect(r.flushes).toContainEqual(['client', 'n1']);
    expect(r.flushes.some(([from, to]) => from !== 'client' && to !== 'n1')).toBe(true);
  });

  it('nobody is asked to flush when nobody awaits the commit', async () => {
    const r = await commitTime(false);
    expect(r.answeredAt).toBeGreaterThan(0);
    expect(r.flushes).toEqual([]);
  });
});
