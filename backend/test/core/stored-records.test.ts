import type { Json } from '@dse/shared';
import { afterAll, describe, expect, it } from 'vitest';
import type { App, PENDING } from '../../src/core/app';
import { callerTableJson, readCallerTable } from '../../src/core/caller-table';
import { readDedupWindow, wasApplied, withApplied } from '../../src/core/dedup';
import type { WireMessage } from '../../src/core/messages';
import { DseNode } from '../../src/core/node';
import type { CheckpointRecord, Storage } from '../../src/core/ports';
import { CorruptRecordError, readOutboxRecord } from '../../src/core/state-keys';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';
import { IN_MEMORY, PgliteStorage } from '../../src/storage/pglite';

/**
 * The runtime's own records in a node's state (outbox, dedup windows, caller tables) once had
 * one-letter fields. A checkpoint written then must restore now: these tests store one as the old
 * runtime wrote it and check that the node restored from it behaves as the old one would have.
 */

/** A checkpoint of n1 at version 5, world-line 1, as the runtime wrote it before the fields were named. */
const OLD_CHECKPOINT: CheckpointRecord = {
  node: 'n1',
  worldLine: 1,
  version: 5,
  prevVersion: 0,
  deps: {},
  full: true,
  changes: {
    set: [
      ['a:k', 1],
      // Two app messages sent to n2; the second is not acknowledged yet.
      ['r:seq:n2', 2],
      ['r:out:n2:2', { p: { hello: 2 }, v: 4 }],
      // From n2: 1 to 3 applied, and 5.
      ['r:dd:n2', { f: 3, a: [5] }],
      // Session s1: request 1 done in version 3 (accepted in 2), request 2 in progress (accepted in 4).
      ['r:cl:client.s1', { q: 2, e: 'client', c: { '1': { s: 'd', r: { ok: 1 }, v: 3, b: 2 }, '2': { s: 'p', b: 4 } } }],
      // Session s2 settled everything up to 7; request 8 was aborted by a probe.
      ['r:cl:client.s2', { q: 8, e: 'client', c: { '8': { s: 'a' } }, d: 7 }],
    ],
    del: [],
  },
};

/** `complete` finishes the request `seq` of `caller`, left in progress. */
const app: App = {
  onRequest(ctx, req): Json | typeof PENDING {
    const p = req.payload as { op: string; caller?: string; seq?: number };
    if (p.op === 'complete') {
      ctx.completeRequest(p.caller!, p.seq!, { completed: p.seq! });
      return { ok: true };
    }
    if (p.op === 'send') {
      ctx.send('n2', { hello: 3 });
      return { ok: true };
    }
    return null;
  },
  onMessage(ctx, from) {
    ctx.put(`m:${from}`, ((ctx.get(`m:${from}`) as number | undefined) ?? 0) + 1);
  },
};

const request = (caller: string, seq: number, payload: Json): WireMessage => ({
  kind: 'request',
  h: { src: 'client', srcVersion: 0, worldLine: 1, seq },
  caller,
  deps: {},
  payload,
  probe: false,
});
const appMsg = (seq: number): WireMessage => ({ kind: 'app', h: { src: 'n2', srcVersion: 1, worldLine: 1, seq }, payload: { seq } });

async function restoredNode(storage: Storage) {
  const sched = new Scheduler();
  const sent: [string, WireMessage][] = [];
  const node = new DseNode(
    'n1',
    app,
    {
      clock: new ProcessClock(sched),
      network: { send: (to, msg) => sent.push([to, msg]) },
      storage,
      observer: { emit: () => {} },
      onFatal: (e) => sent.push(['fatal', e as never]),
    },
    { checkpointIntervalMs: 10, retransmitMs: 1000 },
  );
  const settle = async (ms = 0): Promise<void> => {
    const end = sched.now + ms;
    for (let i = 0; i < 100; i++) await Promise.resolve();
    while (sched.step(end)) for (let i = 0; i < 20; i++) await Promise.resolve();
    for (let i = 0; i < 100; i++) await Promise.resolve();
  };
  node.start();
  node.receive({ kind: 'recover', worldLine: 1, cut: { n1: 5, n2: 0 }, resumeVersion: 6 });
  // PGlite answers on its own time, not the scheduler's.
  for (let i = 0; i < 200 && node.status !== 'up'; i++) await new Promise((r) => setTimeout(r, 5));
  await settle();
  expect(node.status).toBe('up');
  return { node, sent, settle, sched };
}

const storages: [string, () => Promise<{ storage: Storage; close(): Promise<void> }>][] = [
  ['memory', () => Promise.resolve({ storage: new MemoryStorage(), close: () => Promise.resolve() })],
  [
    'PGlite',
    async () => {
      const db = await PgliteStorage.open({ dataDir: IN_MEMORY });
      return { storage: db.storage, close: () => db.close() };
    },
  ],
];

describe.each(storages)('a checkpoint in the old record format restores (%s)', (_name, open) => {
  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of opened) await o.close();
  });

  it('outbox, dedup window and caller tables read as the old runtime left them; new writes are in the named form', async () => {
    const s = await open();
    opened.push(s);
    await s.storage.writeCheckpoints([OLD_CHECKPOINT]);
    const { node, sent, settle } = await restoredNode(s.storage);
    expect(sent.filter(([to]) => to === 'fatal')).toEqual([]);
    expect(node.appState()).toEqual(new Map([['k', 1]]));

    // The unacknowledged message goes out again after the restore, with its payload and version.
    const resent = sent.filter((x): x is [string, Extract<WireMessage, { kind: 'app' }>] => x[1].kind === 'app');
    expect(resent.map(([to, m]) => [to, m.h.seq, m.h.srcVersion, m.payload])).toEqual([['n2', 2, 4, { hello: 2 }]]);
    expect(node.outboxVersions()).toEqual([4]);

    // Dedup: 1..3 and 5 were applied (duplicates, acknowledged only); 4 and 6 are new.
    for (const seq of [1, 3, 4, 5, 6]) node.receive(appMsg(seq));
    expect(node.appState().get('m:n2')).toBe(2);
    expect(sent.filter(([, m]) => m.kind === 'ack')).toHaveLength(5);

    // Session s1: request 1 is answered from the table, not run again; request 2 completes with its acceptance version.
    sent.length = 0;
    node.receive(request('client.s1', 1, { op: 'send' }));
    node.receive(request('client.s1', 3, { op: 'complete', caller: 'client.s1', seq: 2 }));
    const replies = sent
      .filter((x): x is [string, Extract<WireMessage, { kind: 'reply' }>] => x[1].kind === 'reply')
      .map(([to, m]) => [to, m.seq, m.result, m.acceptedAt]);
    expect(replies).toEqual([
      ['client', 1, { ok: 1 }, 2],
      ['client', 2, { completed: 2 }, 4],
      ['client', 3, { ok: true }, expect.any(Number) as number],
    ]);
    expect(sent.some(([, m]) => m.kind === 'app')).toBe(false); // request 1 (`send`) did not run again

    // Session s2: request 8 was aborted, and 7 is settled: a late copy of it is dropped.
    sent.length = 0;
    node.receive(request('client.s2', 8, { op: 'send' }));
    node.receive(request('client.s2', 7, { op: 'send' }));
    expect(sent.map(([, m]) => (m.kind === 'reply' ? [m.seq, m.status] : m.kind))).toEqual([[8, 'aborted']]);

    // A new message continues the old numbering.
    node.receive(request('client.s1', 4, { op: 'send' }));
    expect(sent.filter(([, m]) => m.kind === 'app').map(([, m]) => (m as Extract<WireMessage, { kind: 'app' }>).h.seq)).toEqual([3]);

    // What the node writes now is in the named form, and restores too.
    node.checkpointNow();
    await settle(50);
    for (let i = 0; i < 200 && node.persistedVersion < 6; i++) await new Promise((r) => setTimeout(r, 5));
    const v = node.persistedVersion;
    expect(v).toBeGreaterThan(5);
    const cp = await s.storage.loadCheckpoint('n1', v);
    expect(cp!.state.get('r:dd:n2')).toEqual({ appliedUpTo: 6, appliedAbove: [] });
    expect(cp!.state.get('r:out:n2:3')).toEqual({ payload: { hello: 3 }, version: expect.any(Number) as number });
    expect(cp!.state.get('r:cl:client.s1')).toEqual({
      lastSeq: 4,
      endpoint: 'client',
      replies: {
        '1': { status: 'done', result: { ok: 1 }, version: 3, acceptedAt: 2 },
        '2': { status: 'done', result: { completed: 2 }, version: expect.any(Number) as number, acceptedAt: 4 },
        '3': { status: 'done', result: { ok: true }, version: expect.any(Number) as number, acceptedAt: expect.any(Number) as number },
        '4': { status: 'done', result: { ok: true }, version: expect.any(Number) as number, acceptedAt: expect.any(Number) as number },
      },
    });
    // Session s2's table did not change: it stays as it was stored, and reads the same.
    expect(readCallerTable(cp!.state.get('r:cl:client.s2')!, 'client.s2')).toEqual({
      lastSeq: 8,
      endpoint: 'client',
      replies: { '8': { status: 'aborted' } },
      settledUpTo: 7,
    });
  });
});

describe('stored record readers', () => {
  it('read the old and the named form alike; the named form round-trips', () => {
    const old = { q: 2, e: 'client', c: { '1': { s: 'd', r: null, v: 3, b: 2 }, '2': { s: 'p', b: 4 } }, d: 1 };
    const table = readCallerTable(old, 'c');
    expect(table).toEqual({
      lastSeq: 2,
      endpoint: 'client',
      replies: { '1': { status: 'done', result: null, version: 3, acceptedAt: 2 }, '2': { status: 'pending', acceptedAt: 4 } },
      settledUpTo: 1,
    });
    expect(readCallerTable(callerTableJson(table), 'c')).toEqual(table);
    expect(readDedupWindow({ f: 3, a: [5, 7] })).toEqual(readDedupWindow({ appliedUpTo: 3, appliedAbove: [5, 7] }));
    expect(readOutboxRecord({ p: { x: 1 }, v: 4 })).toEqual(readOutboxRecord({ payload: { x: 1 }, version: 4 }));
  });

  it('refuse a record that is neither form, naming what it is', () => {
    expect(() => readCallerTable({ q: 1, c: {} }, 'client.s9')).toThrow(CorruptRecordError);
    expect(() => readCallerTable({ q: 1, e: 'x', c: { '1': { s: 'z' } } }, 'client.s9')).toThrow(/caller table of client.s9/);
    expect(() => readDedupWindow({ f: 'x', a: [] })).toThrow(CorruptRecordError);
    expect(() => readDedupWindow([1, 2])).toThrow(CorruptRecordError);
    expect(() => readOutboxRecord({ p: 1 })).toThrow(CorruptRecordError);
  });

  it('the dedup window fills its gaps', () => {
    let w = { appliedUpTo: 0, appliedAbove: [] as number[] };
    for (const seq of [2, 4, 1]) w = withApplied(w, seq);
    expect(w).toEqual({ appliedUpTo: 2, appliedAbove: [4] });
    expect([1, 2, 3, 4].map((s) => wasApplied(w, s))).toEqual([true, true, false, true]);
    expect(withApplied(w, 3)).toEqual({ appliedUpTo: 4, appliedAbove: [] });
  });
});
