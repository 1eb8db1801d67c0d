import type { InspectionEvent, Json } from '@dse/shared';
import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { ActionContext, App } from '../../src/core/app';
import { PENDING } from '../../src/core/app';
import type { WireMessage } from '../../src/core/messages';
import type { NodeConfig } from '../../src/core/node';
import { DseNode } from '../../src/core/node';
import { makeKvtestScenario } from '../../src/sim/scenarios/kvtest';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { DEFAULT_SIM_OPTIONS, formatViolations, runSeed } from '../../src/sim/world';
import { MemoryStorage } from '../../src/storage/memory';

/** A seed sweep: seconds on an idle machine, minutes on a loaded one; the fast project's 30 s covers the rest. */
const SWEEP = { timeout: 120_000 };

/**
 * The defects of issue 15, section 1, and the recovery behaviour that replaced the old one: each test
 * here failed on the code before its fix.
 */

type Req = Extract<WireMessage, { kind: 'request' }>;

function harness(app: App, cfg: Partial<NodeConfig> = {}) {
  const sched = new Scheduler();
  const sent: [string, WireMessage][] = [];
  const events: InspectionEvent[] = [];
  const fatal: unknown[] = [];
  const storage = new MemoryStorage();
  const node = new DseNode(
    'n1',
    app,
    {
      clock: new ProcessClock(sched),
      network: { send: (to, m) => sent.push([to, m]) },
      storage,
      observer: { emit: (e) => events.push(e) },
      onFatal: (e) => fatal.push(e),
      incarnation: 1,
    },
    { checkpointIntervalMs: 10, retransmitMs: 30, ...cfg },
  );
  const settle = async (ms = 0): Promise<void> => {
    const end = sched.now + ms;
    for (let i = 0; i < 100; i++) await Promise.resolve();
    while (sched.step(end)) for (let i = 0; i < 20; i++) await Promise.resolve();
    for (let i = 0; i < 100; i++) await Promise.resolve();
  };
  const request = (seq: number, payload: Json, over: Partial<Req> = {}): Req => ({
    kind: 'request',
    h: { src: 'client', srcVersion: 0, worldLine: 1, seq },
    caller: 'client.s1',
    deps: {},
    payload,
    probe: false,
    ...over,
  });
  const replies = (): Extract<WireMessage, { kind: 'reply' }>[] =>
    sent.filter(([, m]) => m.kind === 'reply').map(([, m]) => m as Extract<WireMessage, { kind: 'reply' }>);
  return { sched, sent, events, fatal, storage, node, settle, request, replies };
}

async function started(h: ReturnType<typeof harness>): Promise<void> {
  h.node.start();
  h.node.receive({ kind: 'recover', worldLine: 1, cut: { n1: 0 }, resumeVersion: 1, incarnation: 1 });
  await h.settle();
}

describe('replies do not escape the rollback of an action', () => {
  // `later` leaves its request pending; `finish-then-fail` completes it, then refuses with a typed error;
  // a message completes it, then throws.
  const app: App = {
    onRequest(ctx, req): Json | typeof PENDING {
      const p = req.payload as { op: string; seq?: number };
      if (p.op === 'later') return PENDING;
      if (p.op === 'finish-then-fail') {
        ctx.completeRequest(req.caller, p.seq!, { done: true });
        throw new DseError('Conflict', 'changed my mind');
      }
      return null;
    },
    onMessage(ctx, _from, payload) {
      ctx.completeRequest('client.s1', (payload as { seq: number }).seq, { done: true });
      throw new Error('the handler fails after completing');
    },
  };

  it('a typed refusal after completeRequest sends no reply for the completed request', async () => {
    const h = harness(app);
    await started(h);
    h.node.receive(h.request(1, { op: 'later' }));
    h.node.receive(h.request(2, { op: 'finish-then-fail', seq: 1 }));
    await h.settle();
    // Request 2 is answered with its error; request 1, whose completion was undone, is not answered at all.
    expect(h.replies().map((r) => r.seq)).toEqual([2]);
    expect(h.replies()[0]!.result).toMatchObject({ error: { code: 'Conflict' } });
  });

  it('a throw in onMessage after completeRequest sends no reply', async () => {
    const h = harness(app);
    await started(h);
    h.node.receive(h.request(1, { op: 'later' }));
    try {
      h.node.receive({ kind: 'app', h: { src: 'n2', srcVersion: 1, worldLine: 1, seq: 1 }, payload: { seq: 1 } });
    } catch {
      // Without onFatal the error would go on; here the node stops.
    }
    await h.settle();
    expect(h.replies()).toEqual([]);
    expect(h.fatal).toHaveLength(1);
  });
});

describe('reads outside an action are refused', () => {
  it('an sthread body that kept the action context cannot read later state through it', async () => {
    let kept: ActionContext | null = null;
    let outcome: unknown = 'not run';
    const app: App = {
      onRequest(ctx, req): Json | typeof PENDING {
        ctx.put('x', 1);
        kept = ctx;
        ctx.detach(`t${req.seq}`, async () => {
          await Promise.resolve();
          try {
            outcome = kept!.get('x');
          } catch (e) {
            outcome = e;
          }
        });
        return null;
      },
    };
    const h = harness(app);
    await started(h);
    h.node.receive(h.request(1, {}));
    await h.settle();
    expect(outcome).toBeInstanceOf(Error);
    expect(String(outcome)).toMatch(/outside an action/);
    expect(() => kept!.keys()).toThrow(/outside an action/);
  });
});

describe('timers', () => {
  it('a node holds one handle per periodic timer, however long it runs', async () => {
    const h = harness({ onRequest: () => null }, { heartbeatMs: 50 });
    await started(h);
    await h.settle(60 * 60 * 1000);
    expect(h.node.timersHeld).toBeLessThanOrEqual(4);
    // What the scheduler still holds for it: the periodic timers, not one per past tick.
    expect(h.sched.pending).toBeLessThanOrEqual(4);
  });
});

describe('caller tables forget only what callers settled', () => {
  const app: App = {
    onRequest(ctx, req): Json {
      const n = ((ctx.get('n') as number | undefined) ?? 0) + 1;
      ctx.put('n', n);
      return { n, seq: req.seq };
    },
  };

  it('a caller replaying its first call after forty later ones gets the same answer, without running it again', async () => {
    const h = harness(app);
    await started(h);
    for (let seq = 1; seq <= 40; seq++) h.node.receive(h.request(seq, {}, { caller: 'n2~st' }));
    h.node.receive(h.request(1, {}, { caller: 'n2~st' }));
    await h.settle();
    expect(h.fatal).toEqual([]);
    const again = h.replies().filter((r) => r.seq === 1);
    expect(again).toHaveLength(2);
    expect(again[1]!.result).toEqual(again[0]!.result);
    expect(h.node.appState().get('n')).toBe(40);
  });

  it('answers the caller settled are forgotten, and a late copy of one is dropped, never run again', async () => {
    const h = harness(app);
    await started(h);
    h.node.receive(h.request(1, {}));
    h.node.receive(h.request(2, {}, { settled: 1 }));
    await h.settle();
    expect(h.node.appState().get('n')).toBe(2);
    h.node.receive(h.request(1, {})); // a late duplicate of request 1, from the same world-line
    await h.settle();
    expect(h.node.appState().get('n')).toBe(2);
    expect(h.replies().filter((r) => r.seq === 1)).toHaveLength(1);
  });

  it('long sthreads (34 to 40 calls) survive recoveries: 40 seeds, no violation', SWEEP, async () => {
    const scenario = makeKvtestScenario({ hopsMin: 34, hopsMax: 40, sthreadShare: 1 });
    const failures: string[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, scenario, requestsPerSession: 4 });
      failures.push(...formatViolations(r));
    }
    expect(failures).toEqual([]);
  });
});

describe('recovery in a running node', () => {
  const app: App = {
    onRequest(ctx, req): Json {
      ctx.put(`k${req.seq}`, req.seq);
      return null;
    },
  };

  it('a prepare freezes the node and it reports every uncommitted version with its dependencies', async () => {
    const h = harness(app);
    await started(h);
    h.node.receive(h.request(1, {}, { deps: {} }));
    h.node.checkpointNow();
    h.node.receive({ kind: 'app', h: { src: 'n2', srcVersion: 3, worldLine: 1, seq: 1 }, payload: null });
    h.node.receive({ kind: 'prepare', worldLine: 2 });
    expect(h.node.status).toBe('frozen');
    const report = h.sent.find(([, m]) => m.kind === 'prepared')![1] as Extract<WireMessage, { kind: 'prepared' }>;
    expect(report).toMatchObject({ node: 'n1', worldLine: 2, from: 1, base: 0 });
    expect(report.versions.map((v) => v.version)).toEqual([1, 3]);
    expect(report.versions[1]!.deps).toEqual({ n2: 3 });
    // Frozen: new work waits.
    h.node.receive(h.request(2, {}));
    expect(h.node.appState().has('k2')).toBe(false);
  });

  it('keeps the versions its restore point names and drops the rest, in memory, then goes on', async () => {
    const h = harness(app);
    await started(h);
    h.node.receive(h.request(1, {}));
    h.node.checkpointNow(); // version 1
    h.node.receive(h.request(2, {}));
    h.node.checkpointNow(); // version 2
    h.node.receive(h.request(3, {})); // open version 3
    h.node.receive({ kind: 'prepare', worldLine: 2 });
    h.node.receive({ kind: 'recover', worldLine: 2, cut: { n1: 0 }, restore: { n1: 1 }, resumeVersion: 2, incarnation: 1 });
    await h.settle();
    expect(h.node.status).toBe('up');
    expect(h.node.worldLine).toBe(2);
    expect([...h.node.appState().keys()].sort()).toEqual(['k1']);
    expect(h.events.filter((e) => e.type === 'rollback').at(-1)).toMatchObject({ toVersion: 1, discarded: { from: 2, to: 3 } });
    // The request it forgot is run again when the caller probes or resends.
    h.node.receive(h.request(4, {}, { h: { src: 'client', srcVersion: 0, worldLine: 2, seq: 4 } }));
    expect(h.node.appState().has('k4')).toBe(true);
  });

  it('a recover meant for another process of the node is ignored, and the node says who it is', async () => {
    const h = harness(app);
    h.node.start();
    h.sent.length = 0;
    h.node.receive({ kind: 'recover', worldLine: 1, cut: { n1: 5 }, restore: { n1: 7 }, resumeVersion: 8, incarnation: 0 });
    await h.settle();
    expect(h.node.status).toBe('starting');
    expect(h.sent.map(([, m]) => m)).toContainEqual({ kind: 'hello', node: 'n1', incarnation: 1 });
  });

  it('a restore point above what the node holds is a bug: the node stops (onFatal)', async () => {
    const h = harness(app);
    await started(h);
    h.node.receive({ kind: 'recover', worldLine: 2, cut: { n1: 0 }, restore: { n1: 99 }, resumeVersion: 100, incarnation: 1 });
    await h.settle();
    expect(h.fatal).toHaveLength(1);
    expect(String(h.fatal[0])).toMatch(/assertion failed/);
    expect(h.node.status).toBe('stopped');
  });
});

describe('a prepare that comes while a restarted node loads its state', () => {
  const app: App = {
    onRequest(ctx, req): Json {
      ctx.put(`k${req.seq}`, req.seq);
      return null;
    },
  };

  it('is answered once the state is loaded, even when the first load failed and was retried', async () => {
    // The first process writes checkpoint 1.
    const first = harness(app);
    await started(first);
    first.node.receive(first.request(1, {}));
    first.node.checkpointNow();
    await first.settle(20);
    expect(await first.storage.loadCheckpoint('n1', 1)).not.toBeNull();
    first.node.stop();

    // The second process finds storage unavailable once when it loads.
    const sched = new Scheduler();
    const sent: WireMessage[] = [];
    let failures = 1;
    const storage = new Proxy(first.storage, {
      get(target, prop, receiver) {
        if (prop === 'loadCheckpoint') {
          return (node: string, version: number) => {
            if (failures-- > 0) return Promise.reject(new DseError('StorageUnavailable', 'planted: down for a moment'));
            return target.loadCheckpoint(node, version);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const node = new DseNode(
      'n1',
      app,
      { clock: new ProcessClock(sched), network: { send: (_to, m) => sent.push(m) }, storage, observer: { emit: () => undefined }, incarnation: 2 },
      { checkpointIntervalMs: 10, retransmitMs: 30, storageRetryMs: 5 },
    );
    const settle = async (ms: number): Promise<void> => {
      const end = sched.now + ms;
      for (let i = 0; i < 100; i++) await Promise.resolve();
      while (sched.step(end)) for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    node.start();
    node.receive({ kind: 'recover', worldLine: 2, cut: { n1: 1 }, restore: { n1: 1 }, resumeVersion: 2, incarnation: 2 });
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect(node.status).toBe('restoring');
    // A new failure elsewhere: the coordinator prepares world-line 3 while this node still loads.
    node.receive({ kind: 'prepare', worldLine: 3 });
    await settle(50);
    expect(failures).toBeLessThan(0);
    expect(node.status).toBe('frozen');
    expect(sent).toContainEqual(expect.objectContaining({ kind: 'prepared', node: 'n1', worldLine: 3, from: 2, base: 1 }));
  });
});
