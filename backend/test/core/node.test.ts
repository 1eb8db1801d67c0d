import type { InspectionEvent, Json, Mode, WorldLine } from '@dse/shared';
import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/core/app';
import { PENDING } from '../../src/core/app';
import type { WireMessage } from '../../src/core/messages';
import type { NodeConfig } from '../../src/core/node';
import { DseNode } from '../../src/core/node';
import type { CheckpointRecord, Storage } from '../../src/core/ports';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';
import { overrideStorage } from '../../src/storage/override';

/** A tiny app: `put` writes a key, `fwd` writes locally and sends a message on, messages write `m:<from>`. */
const app: App = {
  onRequest(ctx, req): Json | typeof PENDING {
    const p = req.payload as { op: string; key?: string; value?: Json; to?: string; upTo?: number };
    if (p.op === 'take') return ctx.takeUndelivered(p.to!, p.upTo === undefined ? undefined : { appliedUpTo: p.upTo, appliedAbove: [] });
    if (p.op === 'put') {
      ctx.put(p.key!, p.value!);
      return { ok: true };
    }
    if (p.op === 'fwd') {
      ctx.put(p.key!, p.value!);
      ctx.send(p.to!, { key: p.key!, value: p.value! });
      return { sent: true };
    }
    if (p.op === 'bad') {
      ctx.put('half', 1);
      throw new DseError('BadRequest', 'no such thing');
    }
    if (p.op === 'later') return PENDING;
    return null;
  },
  onMessage(ctx, from, payload) {
    const count = (ctx.get(`m:${from}`) as number | undefined) ?? 0;
    ctx.put(`m:${from}`, count + 1);
    void payload;
  },
};

interface Harness {
  sched: Scheduler;
  node: DseNode;
  sent: [string, WireMessage][];
  events: InspectionEvent[];
  storage: Storage;
  settle(ms?: number): Promise<void>;
  recover(worldLine: WorldLine, version?: number): Promise<void>;
}

async function harness(cfg: Partial<NodeConfig> = {}, storage: Storage = new MemoryStorage()): Promise<Harness> {
  const sched = new Scheduler();
  const sent: [string, WireMessage][] = [];
  const events: InspectionEvent[] = [];
  const node = new DseNode(
    'n1',
    app,
    { clock: new ProcessClock(sched), network: { send: (to, msg) => sent.push([to, msg]) }, storage, observer: { emit: (e) => events.push(e) } },
    { checkpointIntervalMs: 10, retransmitMs: 30, ...cfg },
  );
  const settle = async (ms = 0): Promise<void> => {
    const end = sched.now + ms;
    for (let i = 0; i < 100; i++) await Promise.resolve();
    while (sched.step(end)) for (let i = 0; i < 20; i++) await Promise.resolve();
    for (let i = 0; i < 100; i++) await Promise.resolve();
  };
  const h: Harness = {
    sched,
    node,
    sent,
    events,
    storage,
    settle,
    async recover(worldLine, version = 0) {
      node.receive({ kind: 'recover', worldLine, cut: { n1: version, n2: 0 }, resumeVersion: version + 1 });
      await settle();
    },
  };
  node.start();
  await h.recover(1);
  expect(node.status).toBe('up');
  return h;
}

const header = (src: string, srcVersion: number, worldLine: number, seq: number) => ({ src, srcVersion, worldLine, seq });
const app1 = (srcVersion: number, worldLine: number, seq: number): WireMessage => ({
  kind: 'app',
  h: header('n2', srcVersion, worldLine, seq),
  payload: { hi: seq },
});
const request = (seq: number, payload: Json, opts: { worldLine?: number; probe?: boolean } = {}): WireMessage => ({
  kind: 'request',
  h: header('client', 0, opts.worldLine ?? 1, seq),
  caller: 'client.s1',
  deps: {},
  payload,
  probe: opts.probe ?? false,
});
const of = <K extends WireMessage['kind']>(h: Harness, kind: K) =>
  h.sent.filter(([, m]) => m.kind === kind).map(([to, m]) => [to, m] as [string, Extract<WireMessage, { kind: K }>]);

describe('a restore point missing from storage', () => {
  it('a late recover whose restore point a newer world-line deleted: the fresh process asks again, and takes the next one', async () => {
    const sched = new Scheduler();
    const sent: [string, WireMessage][] = [];
    const fatal: unknown[] = [];
    const storage = new MemoryStorage();
    const record = (version: number): CheckpointRecord => ({
      node: 'n1',
      worldLine: 1,
      version,
      prevVersion: 0,
      deps: {},
      full: true,
      changes: { set: [['a:x', version]], del: [] },
    });
    await storage.writeCheckpoints([record(3)]);
    const node = new DseNode(
      'n1',
      app,
      {
        clock: new ProcessClock(sched),
        network: { send: (to, msg) => sent.push([to, msg]) },
        storage,
        observer: { emit: () => undefined },
        onFatal: (e) => fatal.push(e),
      },
      { checkpointIntervalMs: 10, retransmitMs: 30 },
    );
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) await Promise.resolve();
      while (sched.step(sched.now + 1)) for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    node.start();
    // World-line 7 kept version 5 of n1; world-line 8 rolled it back (and deleted it) before this recover came.
    sent.length = 0;
    node.receive({ kind: 'recover', worldLine: 7, cut: { n1: 3 }, restore: { n1: 5 }, resumeVersion: 6 });
    await settle();
    expect(fatal).toEqual([]);
    expect(node.status).toBe('starting');
    expect(sent.some(([to, m]) => to === 'coordinator' && m.kind === 'hello')).toBe(true);
    node.receive({ kind: 'recover', worldLine: 8, cut: { n1: 3 }, restore: { n1: 3 }, resumeVersion: 6 });
    await settle();
    expect(node.status).toBe('up');
    expect(node.appState().get('x')).toBe(3);
  });

  it('the restore point of the same world-line missing again is a storage fault: the node stops', async () => {
    const sched = new Scheduler();
    const fatal: unknown[] = [];
    const node = new DseNode(
      'n1',
      app,
      {
        clock: new ProcessClock(sched),
        network: { send: () => undefined },
        storage: new MemoryStorage(),
        observer: { emit: () => undefined },
        onFatal: (e) => fatal.push(e),
      },
      { checkpointIntervalMs: 10, retransmitMs: 30 },
    );
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) await Promise.resolve();
    };
    node.start();
    for (let i = 0; i < 2; i++) {
      node.receive({ kind: 'recover', worldLine: 7, cut: { n1: 3 }, restore: { n1: 5 }, resumeVersion: 6 });
      await settle();
    }
    expect(fatal).toHaveLength(1);
    expect(String(fatal[0])).toMatch(/checkpoint 5 to restore is missing/);
  });
});

describe('messages to a node removed for good', () => {
  it('takeUndelivered returns what the removed node did not apply, in order, and empties the outbox to it', async () => {
    const h = await harness();
    for (const value of [1, 2, 3]) h.node.receive(request(value, { op: 'fwd', key: `k${value}`, value, to: 'n2' }));
    expect(h.node.outboxVersions()).toHaveLength(3);
    // n2 applied seq 1 within its final cut (its dedup window says so): only 2 and 3 come back.
    h.node.receive(request(4, { op: 'take', to: 'n2', upTo: 1 }));
    await h.settle();
    const reply = of(h, 'reply').find(([, m]) => m.seq === 4)![1];
    expect(reply.result).toEqual([
      { key: 'k2', value: 2 },
      { key: 'k3', value: 3 },
    ]);
    expect(h.node.outboxVersions()).toEqual([]);
    // Nothing is sent to it again.
    h.sent.length = 0;
    await h.settle(200);
    expect(of(h, 'app')).toEqual([]);
  });
});

describe('leaving the cluster', () => {
  it('a node that left takes no input, opens no version with anything in it, and names its last version', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    const left = h.node.leave();
    // The write is closed into the version it names.
    expect(left).toEqual({ version: h.events.filter((e) => e.type === 'checkpointStarted').at(-1)!.version, worldLine: 1 });
    const version = h.node.version;
    h.sent.length = 0;
    h.node.receive(app1(version + 5, 1, 1));
    h.node.receive(request(2, { op: 'put', key: 'y', value: 2 }));
    await h.settle(100);
    expect(h.node.appState().get('m:n2')).toBeUndefined();
    expect(h.node.appState().get('y')).toBeUndefined();
    expect(h.node.version).toBe(version);
    // Nothing acknowledged or answered, and no checkpoint after the one it named.
    expect(h.sent.filter(([, m]) => m.kind === 'ack' || m.kind === 'reply')).toEqual([]);
    expect(h.events.filter((e) => e.type === 'checkpointStarted').at(-1)!.version).toBe(left!.version);
  });

  it('a node that is not up cannot leave', async () => {
    const h = await harness();
    h.node.receive({ kind: 'prepare', worldLine: 2 });
    expect(h.node.leave()).toBeNull();
  });
});

describe('receive rules', () => {
  it('rule 1: a message from an older world-line is rejected, never applied, and the sender is told', async () => {
    const h = await harness();
    await h.recover(2);
    h.node.receive(app1(1, 1, 1));
    expect(h.node.appState().get('m:n2')).toBeUndefined();
    const rejects = of(h, 'reject');
    expect(rejects).toHaveLength(1);
    expect(rejects[0]![0]).toBe('n2');
    expect(rejects[0]![1].h.worldLine).toBe(2);
    expect(h.events.some((e) => e.type === 'messageRejected')).toBe(true);
  });

  it('rule 2: a message from a newer world-line waits for the restore, then applies', async () => {
    const h = await harness();
    h.node.receive(app1(1, 2, 1));
    expect(h.node.appState().get('m:n2')).toBeUndefined();
    expect(of(h, 'sync')).toHaveLength(1);
    await h.recover(2);
    expect(h.node.worldLine).toBe(2);
    expect(h.node.appState().get('m:n2')).toBe(1);
  });

  it('rule 3: a message from a higher version moves the receiver to at least that version, closing the open one first', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    const before = h.node.version;
    h.node.receive(app1(before + 10, 1, 1));
    expect(h.node.version).toBeGreaterThanOrEqual(before + 10);
    // The write before the jump was captured under its own number.
    const started = h.events.filter((e) => e.type === 'checkpointStarted');
    expect(started.some((e) => e.type === 'checkpointStarted' && e.version === before)).toBe(true);
    // And the dependency recorded points at or below the receiving version.
    const dep = h.events.find((e) => e.type === 'dependencyRecorded');
    expect(dep?.type === 'dependencyRecorded' && dep.version >= dep.on.n2!).toBe(true);
  });

  it('rule 4: a duplicate (src, seq) is acknowledged again but applied once', async () => {
    const h = await harness();
    h.node.receive(app1(1, 1, 1));
    h.node.receive(app1(1, 1, 1));
    expect(h.node.appState().get('m:n2')).toBe(1);
    expect(of(h, 'ack')).toHaveLength(2);
    // Out of order seqs are each applied once too.
    h.node.receive(app1(1, 1, 3));
    h.node.receive(app1(1, 1, 2));
    h.node.receive(app1(1, 1, 3));
    expect(h.node.appState().get('m:n2')).toBe(3);
  });
});

describe('checkpoints', () => {
  it('a full snapshot by size only: once the deltas since the last one weigh as much as the state, never on a count', async () => {
    const h = await harness();
    for (let i = 0; i < 200; i++) h.node.receive(request(i + 1, { op: 'put', key: `k${i}`, value: i }));
    h.node.checkpointNow();
    for (let i = 0; i < 60; i++) {
      h.node.receive(request(201 + i, { op: 'put', key: 'k0', value: 1000 + i }));
      h.node.checkpointNow();
    }
    await h.settle(5);
    const started = h.events.filter((e) => e.type === 'checkpointStarted');
    expect(started).toHaveLength(61);
    expect(started[0]).toMatchObject({ full: true });
    const fulls = started.map((e, i) => (e.full ? i : -1)).filter((i) => i >= 0);
    // Each small checkpoint changes 2 keys (k0 and the caller's table) of about 202 and weighs 2 + 16
    // (DELTA_ROW_WEIGHT): a full snapshot once 11 or 12 of them add up to the state, far more often
    // than the old count of 32, never after a fixed number.
    expect(fulls.length).toBeGreaterThanOrEqual(4);
    expect(fulls.length).toBeLessThanOrEqual(6);
    for (let i = 1; i < fulls.length; i++) {
      expect(fulls[i]! - fulls[i - 1]!).toBeGreaterThanOrEqual(11);
      expect(fulls[i]! - fulls[i - 1]!).toBeLessThanOrEqual(14);
    }
    // The state read back from the last checkpoint (a delta chain, or a full one) is the node's own.
    const last = started.at(-1)!;
    const cp = await h.storage.loadCheckpoint('n1', last.type === 'checkpointStarted' ? last.version : 0);
    expect(cp?.state.get('a:k0')).toBe(1059);
    expect(cp?.state.get('a:k199')).toBe(199);
    expect(new Map([...cp!.state].filter(([k]) => k.startsWith('a:')).map(([k, v]) => [k.slice(2), v]))).toEqual(h.node.appState());
  });
});

describe('requests', () => {
  it('a repeated request gets the same reply without running again', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    h.node.receive(request(1, { op: 'put', key: 'x', value: 2 }));
    expect(h.node.appState().get('x')).toBe(1);
    const replies = of(h, 'reply');
    expect(replies).toHaveLength(2);
    expect(replies[1]![1].result).toEqual(replies[0]![1].result);
  });

  it('a reply names the version its request was accepted in (acceptedAt), the same when repeated', async () => {
    const h = await harness();
    h.node.checkpointNow();
    h.node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    const at = h.node.version;
    h.node.checkpointNow();
    h.node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    const replies = of(h, 'reply').map(([, m]) => m);
    expect(replies).toHaveLength(2);
    for (const r of replies) expect(r).toMatchObject({ status: 'ok', deps: { n1: at }, acceptedAt: at });
    expect(h.node.version).toBeGreaterThan(at);
  });

  it('an action that throws a typed error changes nothing and answers with the error', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'bad' }));
    expect(h.node.appState().has('half')).toBe(false);
    const [, reply] = of(h, 'reply')[0]!;
    expect(reply.status).toBe('ok');
    expect(reply.result).toMatchObject({ error: { code: 'BadRequest', definite: true } });
  });

  it('a probe for an unknown request aborts it for good: the request itself is refused afterwards', async () => {
    const h = await harness();
    h.node.receive(request(5, { op: 'put', key: 'x', value: 1 }, { probe: true }));
    expect(of(h, 'reply')[0]![1].status).toBe('aborted');
    h.node.receive(request(5, { op: 'put', key: 'x', value: 1 }));
    expect(h.node.appState().has('x')).toBe(false);
    expect(of(h, 'reply')[1]![1].status).toBe('aborted');
  });

  it('a pending request answers nothing until completed', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'later' }));
    expect(of(h, 'reply')).toHaveLength(0);
  });
});

describe('outbox', () => {
  it('keeps a message until acknowledged, resending it meanwhile', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'fwd', key: 'x', value: 1, to: 'n2' }));
    expect(of(h, 'app')).toHaveLength(1);
    expect(h.node.outboxVersions()).toHaveLength(1);
    await h.settle(100);
    expect(of(h, 'app').length).toBeGreaterThan(1);
    const seq = of(h, 'app')[0]![1].h.seq;
    h.node.receive({ kind: 'ack', h: header('n2', 1, 1, 0), ackSeq: seq });
    expect(h.node.outboxVersions()).toHaveLength(0);
    const count = of(h, 'app').length;
    await h.settle(100);
    expect(of(h, 'app')).toHaveLength(count);
  });
});

describe('checkpoints', () => {
  it('captures a version at once and reports it persisted after the write: two writes in flight, reported in order, the rest grouped', async () => {
    // A storage whose writes complete only when the test says so.
    const inner = new MemoryStorage();
    const writes: { records: readonly CheckpointRecord[]; done: () => void }[] = [];
    const storage = overrideStorage(inner, {
      writeCheckpoints: (records) => new Promise<void>((resolve) => writes.push({ records, done: () => void inner.writeCheckpoints(records).then(resolve) })),
    });
    const h = await harness({}, storage);
    for (let i = 1; i <= 4; i++) {
      h.node.receive(request(i, { op: 'put', key: `k${i}`, value: i }));
      h.node.checkpointNow();
    }
    // Four versions closed; two are being written, the others queue up.
    expect(h.events.filter((e) => e.type === 'checkpointStarted')).toHaveLength(4);
    expect(writes).toHaveLength(2);
    // The second lands first: nothing is reported until the first has too.
    writes[1]!.done();
    await h.settle();
    expect(of(h, 'persisted')).toHaveLength(0);
    expect(writes).toHaveLength(2);
    writes[0]!.done();
    await h.settle();
    const first = of(h, 'persisted').map(([, m]) => m.version);
    expect(first).toHaveLength(2);
    expect(first[0]!).toBeLessThan(first[1]!);
    // The queued two go together: group commit.
    expect(writes).toHaveLength(3);
    expect(writes[2]!.records).toHaveLength(2);
    writes[2]!.done();
    await h.settle();
    const persisted = of(h, 'persisted').map(([, m]) => m.version);
    expect(persisted).toHaveLength(4);
    expect([...persisted].sort((a, b) => a - b)).toEqual(persisted);
    expect(h.node.persistedVersion).toBe(persisted[3]);
    // The last one reads back with every key.
    const cp = await inner.loadCheckpoint('n1', persisted[3]!);
    expect([...cp!.state.keys()].filter((k) => k.startsWith('a:')).sort()).toEqual(['a:k1', 'a:k2', 'a:k3', 'a:k4']);
  });

  it('a write that fails while the next one lands is written again, and both are reported in order', async () => {
    const inner = new MemoryStorage();
    let calls = 0;
    const storage = overrideStorage(inner, {
      writeCheckpoints: (records) =>
        ++calls === 1 ? Promise.reject(new DseError('StorageUnavailable', 'planted: down for a moment')) : inner.writeCheckpoints(records),
    });
    const h = await harness({ storageRetryMs: 5 }, storage);
    h.node.receive(request(1, { op: 'put', key: 'a', value: 1 }));
    h.node.checkpointNow();
    h.node.receive(request(2, { op: 'put', key: 'b', value: 2 }));
    h.node.checkpointNow();
    await h.settle();
    // The second landed, the first failed: nothing reported yet.
    expect(of(h, 'persisted')).toHaveLength(0);
    await h.settle(20);
    const persisted = of(h, 'persisted').map(([, m]) => m.version);
    expect(persisted).toHaveLength(2);
    expect(persisted[0]!).toBeLessThan(persisted[1]!);
    expect(calls).toBe(3);
  });

  it('with one write in flight (writesInFlight 1), the others wait and go as one batch', async () => {
    const inner = new MemoryStorage();
    const writes: { records: readonly CheckpointRecord[]; done: () => void }[] = [];
    const storage = overrideStorage(inner, {
      writeCheckpoints: (records) => new Promise<void>((resolve) => writes.push({ records, done: () => void inner.writeCheckpoints(records).then(resolve) })),
    });
    const h = await harness({ writesInFlight: 1 }, storage);
    for (let i = 1; i <= 3; i++) {
      h.node.receive(request(i, { op: 'put', key: `k${i}`, value: i }));
      h.node.checkpointNow();
    }
    expect(writes).toHaveLength(1);
    writes[0]!.done();
    await h.settle();
    expect(writes).toHaveLength(2);
    expect(writes[1]!.records).toHaveLength(2);
  });

  it('restores to the cut version and forgets everything above it', async () => {
    const h = await harness();
    h.node.receive(request(1, { op: 'put', key: 'kept', value: 1 }));
    h.node.checkpointNow();
    await h.settle(5);
    const committed = h.node.persistedVersion;
    h.node.receive(request(2, { op: 'put', key: 'lost', value: 2 }));
    h.node.checkpointNow();
    await h.settle(5);
    expect(h.node.appState().has('lost')).toBe(true);
    await h.recover(2, committed);
    expect(h.node.appState().get('kept')).toBe(1);
    expect(h.node.appState().has('lost')).toBe(false);
    const rb = h.events.filter((e) => e.type === 'rollback').at(-1);
    expect(rb).toMatchObject({ toVersion: committed, worldLine: 2 });
  });
});

describe('modes', () => {
  const replyTimes = async (mode: Mode) => {
    const h = await harness({ mode });
    h.node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    const immediately = of(h, 'reply').length;
    await h.settle(30);
    return { immediately, later: of(h, 'reply').length };
  };
  it('speculative mode replies at once', async () => {
    expect(await replyTimes('speculative')).toEqual({ immediately: 1, later: 1 });
  });
  it('durable mode holds the reply until its version is persisted', async () => {
    expect(await replyTimes('durable')).toEqual({ immediately: 0, later: 1 });
  });
});

describe('storage refusals', () => {
  it('a definite refusal of a checkpoint stops the node (onFatal) instead of retrying forever', async () => {
    const inner = new MemoryStorage();
    let writes = 0;
    const storage = overrideStorage(inner, {
      writeCheckpoints: () => {
        writes++;
        return Promise.reject(new DseError('BadRequest', 'value nested too deep'));
      },
    });
    const sched = new Scheduler();
    const fatal: unknown[] = [];
    const node = new DseNode(
      'n1',
      app,
      { clock: new ProcessClock(sched), network: { send: () => undefined }, storage, observer: { emit: () => undefined }, onFatal: (e) => fatal.push(e) },
      { storageRetryMs: 5 },
    );
    node.start();
    node.receive({ kind: 'recover', worldLine: 1, cut: { n1: 0 }, resumeVersion: 1 });
    for (let i = 0; i < 50; i++) await Promise.resolve();
    node.receive(request(1, { op: 'put', key: 'x', value: 1 }));
    node.checkpointNow();
    for (let k = 0; k < 20; k++) {
      for (let i = 0; i < 20; i++) await Promise.resolve();
      sched.step(sched.now + 10);
    }
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'BadRequest' });
    expect(node.status).toBe('stopped');
    expect(writes).toBe(1);
  });
});
