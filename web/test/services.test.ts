import { describe, expect, it } from 'vitest';
import type { ClusterInfo, InspectionEvent, Json, NumberedEvent } from '@dse/shared';
import { PlaygroundModel } from '../src/model/model';
import { deriveServices, deriveServicesFrom, nodeStateInputs, scenarioOf, serviceCounts, workloadFor } from '../src/model/services';

type E = InspectionEvent;
const ev = <T extends E['type']>(type: T, t: number, rest: Omit<Extract<E, { type: T }>, 'type' | 't'>): E => ({ type, t, ...rest }) as unknown as E;
const numbered = (e: E, n: number): NumberedEvent => ({ ...e, n });
const change = (t: number, node: string, version: number, set: Record<string, Json>, deleted: string[] = []): E =>
  ev('stateChanged', t, { node, version, set, deleted });

/** One node, `a`, world-line 1, versions 1..3 opened; nothing committed yet. */
function oneNode(): PlaygroundModel {
  const m = new PlaygroundModel();
  m.applyAll([
    ev('worldLineChanged', 0, { worldLine: 1, cut: { a: 0 }, failed: [], kept: { a: 0 }, reason: 'start', recovery: 'cut' }),
    ev('versionOpened', 1, { node: 'a', worldLine: 1, version: 1, prevVersion: 0 }),
    ev('versionOpened', 2, { node: 'a', worldLine: 1, version: 2, prevVersion: 1 }),
    ev('versionOpened', 3, { node: 'a', worldLine: 1, version: 3, prevVersion: 2 }),
  ]);
  return m;
}

describe('service state from node state', () => {
  it('wal: entries by position, the committed prefix and the speculative tail', () => {
    const m = oneNode();
    m.apply(change(2, 'a', 1, { 'wal/L/n': 1, 'wal/L/e/0': { d: 'x', v: 1 } }));
    m.apply(change(3, 'a', 2, { 'wal/L/n': 3, 'wal/L/e/1': { d: 'y', v: 2 }, 'wal/L/e/2': { d: { z: 1 }, v: 2 } }));
    let v = deriveServices(m);
    expect(v.wal).toHaveLength(1);
    expect(v.wal[0]).toMatchObject({ log: 'L', node: 'a', length: 3, committedLength: 0 });
    expect(v.wal[0]!.entries.map((e) => [e.pos, e.data, e.committed])).toEqual([
      [0, 'x', false],
      [1, 'y', false],
      [2, { z: 1 }, false],
    ]);
    m.apply(ev('cutAdvanced', 4, { worldLine: 1, cut: { a: 1 } }));
    v = deriveServices(m);
    expect(v.wal[0]!.committedLength).toBe(1);
    expect(v.wal[0]!.entries.map((e) => e.committed)).toEqual([true, false, false]);
    m.apply(ev('cutAdvanced', 5, { worldLine: 1, cut: { a: 2 } }));
    v = deriveServices(m);
    expect(v.wal[0]!.committedLength).toBe(3);
  });

  it('a rollback takes the speculative tail back (and a failed node’s lost versions go at once)', () => {
    const m = oneNode();
    m.apply(change(2, 'a', 1, { 'wal/L/n': 1, 'wal/L/e/0': { d: 'x', v: 1 } }));
    m.apply(change(3, 'a', 2, { 'wal/L/n': 2, 'wal/L/e/1': { d: 'y', v: 2 } }));
    m.apply(ev('cutAdvanced', 4, { worldLine: 1, cut: { a: 1 } }));
    // a dies: its version 2 is above the cut, lost with the process, before a restarts and rolls back.
    m.apply(ev('nodeFailed', 5, { node: 'a', reason: 'killed' }));
    m.apply(ev('worldLineChanged', 6, { worldLine: 2, cut: { a: 1 }, failed: ['a'], kept: { a: 1 }, reason: 'failure', recovery: 'cut' }));
    let v = deriveServices(m);
    expect(v.wal[0]).toMatchObject({ length: 1, committedLength: 1 });
    expect(v.wal[0]!.entries.map((e) => e.data)).toEqual(['x']);
    // The raw node state still has it until the rollback event; the plain derivation shows that.
    expect(deriveServicesFrom(nodeStateInputs(m)).wal[0]!.length).toBe(2);
    m.apply(ev('rollback', 7, { node: 'a', worldLine: 2, toVersion: 1, discarded: { from: 2, to: 3 } }));
    v = deriveServices(m);
    expect(v.wal[0]!.entries.map((e) => e.data)).toEqual(['x']);
    expect(deriveServicesFrom(nodeStateInputs(m)).wal[0]!.length).toBe(1);
  });

  it('kv store: value, write count, writer version, committed or speculative; tombstones', () => {
    const m = oneNode();
    m.apply(change(2, 'a', 1, { 'kv/alpha': { x: 1, n: 1, v: 1 }, 'kv/a/b': { x: 's', n: 1, v: 1 } }));
    m.apply(change(3, 'a', 2, { 'kv/alpha': { x: null, n: 2, v: 2 } }));
    m.apply(ev('cutAdvanced', 4, { worldLine: 1, cut: { a: 1 } }));
    const v = deriveServices(m);
    expect(v.kv.map((k) => [k.key, k.value, k.writes, k.version, k.committed])).toEqual([
      ['a/b', 's', 1, 1, true],
      ['alpha', null, 2, 2, false],
    ]);
    expect(serviceCounts(v)).toEqual({ wal: 0, kvstore: 2, broker: 0, workflow: 0 });
  });

  it('broker: events, producers’ last seqs, consumer groups with their committed offsets', () => {
    const m = oneNode();
    m.apply(
      change(2, 'a', 1, {
        'br/T/n': 2,
        'br/T/e/0': { p: 'p1', s: 1, d: 'a', v: 1 },
        'br/T/e/1': { p: 'p2', s: 1, d: 'b', v: 1 },
        'br/T/p/p1': 1,
        'br/T/p/p2': 1,
        'br/T/g/g1': 1,
      }),
    );
    m.apply(change(3, 'a', 2, { 'br/T/n': 3, 'br/T/e/2': { p: 'p1', s: 2, d: 'c', v: 2 }, 'br/T/p/p1': 2, 'br/T/g/g1': 3 }));
    m.apply(ev('cutAdvanced', 4, { worldLine: 1, cut: { a: 1 } }));
    const t = deriveServices(m).topics;
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({ topic: 'T', node: 'a', length: 3, committedLength: 2 });
    expect(t[0]!.events.map((e) => [e.offset, e.producer, e.seq, e.data, e.committed])).toEqual([
      [0, 'p1', 1, 'a', true],
      [1, 'p2', 1, 'b', true],
      [2, 'p1', 2, 'c', false],
    ]);
    expect(t[0]!.producers).toEqual([
      { producer: 'p1', lastSeq: 2, committedSeq: 1, committed: false },
      { producer: 'p2', lastSeq: 1, committedSeq: 1, committed: true },
    ]);
    expect(t[0]!.groups).toEqual([{ group: 'g1', offset: 3, committedOffset: 1, committed: false }]);
  });

  it('workflows: steps with their bookings, a failure and its compensations; travel stock', () => {
    const steps = (id: string): Json =>
      ['flight F1', 'hotel H1', 'payment card'].map((name, step) => ({
        name,
        node: 'b',
        do: { svc: 'travel', op: 'reserve', wf: id, step, item: name.split(' ')[1]!, capacity: 5, decline: step === 2 },
        undo: { svc: 'travel', op: 'cancel', wf: id, step },
      }));
    const nodes = [
      {
        id: 'a',
        removed: false,
        committedVersion: 5,
        committedState: {
          'wf/w1': {
            st: steps('w1'),
            k: -1,
            ph: 'done',
            f: 2,
            why: 'declined',
            cp: [1, 0],
            out: { id: 'w1', status: 'failed', failedAt: 2, reason: 'declined', compensated: [1, 0] },
            v: 5,
          },
          'wf/w2': { st: steps('w2'), k: 1, ph: 'run', f: null, why: null, cp: [], out: null, v: 4 },
        } as Record<string, Json>,
        pendingChanges: [],
      },
      {
        id: 'b',
        removed: false,
        committedVersion: 3,
        committedState: {
          'tr/b/w1/0': { item: 'F1', st: 'cancelled', n: 1, cn: 1, why: null, v: 2 },
          'tr/b/w1/1': { item: 'H1', st: 'cancelled', n: 1, cn: 1, why: null, v: 3 },
          'tr/b/w1/2': { item: 'card', st: 'refused', n: 1, cn: 0, why: 'declined', v: 3 },
          'tr/b/w2/0': { item: 'F1', st: 'booked', n: 1, cn: 0, why: null, v: 3 },
          'tr/s/F1': { c: 4, v: 3 },
        } as Record<string, Json>,
        pendingChanges: [{ worldLine: 1, version: 4, set: { 'tr/s/H1': { c: 4, v: 4 } }, deleted: [] }],
      },
    ];
    const v = deriveServicesFrom(nodes);
    expect(v.workflows.map((w) => [w.id, w.status, w.committed])).toEqual([
      ['w1', 'failed', true],
      ['w2', 'running', true],
    ]);
    const w1 = v.workflows[0]!;
    expect(w1.steps.map((s) => [s.kind, s.item, s.status, s.compensationOrder])).toEqual([
      ['flight', 'F1', 'compensated', 2],
      ['hotel', 'H1', 'compensated', 1],
      ['payment', 'card', 'declined', null],
    ]);
    expect(w1.failedAt).toBe(2);
    expect(w1.steps[0]!.booking).toEqual({ node: 'b', committed: true, reserved: 1, cancelled: 1 });
    expect(v.workflows[1]!.steps.map((s) => s.status)).toEqual(['booked', 'running', 'pending']);
    expect(v.stock.map((s) => [s.item, s.left, s.committed])).toEqual([
      ['F1', 4, true],
      ['H1', 4, false],
    ]);
  });

  it('removed nodes and other apps’ keys are left out', () => {
    const v = deriveServicesFrom([
      { id: 'a', removed: true, committedVersion: 1, committedState: { 'kv/x': { x: 1, n: 1, v: 1 } }, pendingChanges: [] },
      { id: 'b', removed: false, committedVersion: 1, committedState: { k3: 7, '~a/k3': 7, 'kv/y': { x: 2, n: 1, v: 1 } }, pendingChanges: [] },
    ]);
    expect(v.kv.map((k) => [k.key, k.node])).toEqual([['y', 'b']]);
    expect(v.wal.length + v.topics.length + v.workflows.length + v.stock.length).toBe(0);
  });
});

describe('snapshot base states', () => {
  const cluster = (cut: Record<string, number>): ClusterInfo => ({
    worldLine: 1,
    mode: 'speculative',
    cutKind: 'exact',
    cut,
    nodes: Object.keys(cut).map((id) => ({
      id,
      status: 'up',
      pid: 1,
      version: 5,
      persistedVersion: 4,
      committedVersion: cut[id]!,
      worldLine: 1,
      origin: 'local',
      starts: 1,
    })),
    storage: 'test',
    lastEvent: 10,
  });

  it('a late browser starts from the base states, then replays the history on top', () => {
    const m = new PlaygroundModel();
    m.loadSnapshot(
      cluster({ a: 3 }),
      null,
      null,
      null,
      [
        numbered(ev('versionOpened', 1, { node: 'a', worldLine: 1, version: 4, prevVersion: 3 }), 8),
        numbered(change(2, 'a', 4, { 'wal/L/n': 3, 'wal/L/e/2': { d: 'z', v: 4 } }), 9),
      ],
      {
        a: {
          committedVersion: 2,
          committed: { 'wal/L/n': 1, 'wal/L/e/0': { d: 'x', v: 1 } },
          pending: [{ version: 3, set: { 'wal/L/n': 2, 'wal/L/e/1': { d: 'y', v: 3 } }, deleted: [] }],
        },
      },
    );
    const log = deriveServices(m).wal[0]!;
    expect(log.entries.map((e) => [e.data, e.committed])).toEqual([
      ['x', true],
      ['y', true],
      ['z', false],
    ]);
    expect(log).toMatchObject({ length: 3, committedLength: 2 });
    // Version 3 was folded into the committed base once the cut covered it.
    expect(m.appState.stateOf('a').pending.map((c) => c.version)).toEqual([4]);
  });

  it('without base states (an older server) the history alone gives the state', () => {
    const m = new PlaygroundModel();
    m.loadSnapshot(cluster({ a: 0 }), null, null, null, [numbered(change(2, 'a', 1, { 'kv/k': { x: 1, n: 1, v: 1 } }), 1)]);
    expect(deriveServices(m).kv.map((k) => [k.key, k.committed])).toEqual([['k', false]]);
  });
});

describe('scenarios', () => {
  it('maps workload kinds to scenarios and back, keeping the rate or a default', () => {
    expect(scenarioOf('chain')).toBe('kv');
    expect(scenarioOf('mixed')).toBe('kv');
    expect(scenarioOf('broker')).toBe('broker');
    expect(scenarioOf(null)).toBe('kv');
    expect(workloadFor('wal', { kind: 'mixed', rate: 25 })).toEqual({ kind: 'wal', rate: 25 });
    expect(workloadFor('workflow', { kind: 'kv', rate: 0 })).toEqual({ kind: 'workflow', rate: 10 });
    expect(workloadFor('kv', { kind: 'chain', rate: 5 })).toEqual({ kind: 'chain', rate: 5 });
    expect(workloadFor('kv', { kind: 'broker', rate: 5 })).toEqual({ kind: 'mixed', rate: 5 });
    expect(workloadFor('kvstore', null)).toEqual({ kind: 'kvstore', rate: 10 });
  });
});
