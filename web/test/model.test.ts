import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from '@dse/shared';
import { PlaygroundModel, versionKey } from '../src/model/model';
import { dependencyIndex, explainRollback, killPreview, selectionOf } from '../src/model/analysis';
import { exportTrace, parseTrace, TraceError } from '../src/model/trace';

type E = InspectionEvent;
const ev = <T extends E['type']>(type: T, t: number, rest: Omit<Extract<E, { type: T }>, 'type' | 't'>): E => ({ type, t, ...rest }) as unknown as E;

/** Two nodes; b's version 1 depends on a's version 1; a dies before anything commits. */
function twoNodeFailure(): E[] {
  return [
    ev('worldLineChanged', 0, { worldLine: 1, cut: { a: 0, b: 0 }, failed: [], kept: { a: 0, b: 0 }, reason: 'start', recovery: 'cut' }),
    ev('nodeRestarted', 1, { node: 'a' }),
    ev('nodeRestarted', 1, { node: 'b' }),
    ev('rollback', 2, { node: 'a', worldLine: 1, toVersion: 0, discarded: null }),
    ev('versionOpened', 2, { node: 'a', worldLine: 1, version: 1, prevVersion: 0 }),
    ev('rollback', 2, { node: 'b', worldLine: 1, toVersion: 0, discarded: null }),
    ev('versionOpened', 2, { node: 'b', worldLine: 1, version: 1, prevVersion: 0 }),
    ev('messageSent', 3, { id: 'm1', kind: 'app', from: 'a', to: 'b', worldLine: 1, srcVersion: 1, seq: 1, resend: false }),
    ev('messageDelivered', 4, { id: 'm1', kind: 'app', from: 'a', to: 'b', version: 1, duplicate: false }),
    ev('dependencyRecorded', 4, { node: 'b', version: 1, on: { a: 1 } }),
    ev('checkpointStarted', 10, { node: 'a', worldLine: 1, version: 1, prevVersion: 0, deps: {}, changedKeys: 1, full: true }),
    ev('versionOpened', 10, { node: 'a', worldLine: 1, version: 2, prevVersion: 1 }),
    ev('checkpointStarted', 10, { node: 'b', worldLine: 1, version: 1, prevVersion: 0, deps: { a: 1 }, changedKeys: 1, full: true }),
    ev('versionOpened', 10, { node: 'b', worldLine: 1, version: 2, prevVersion: 1 }),
    ev('checkpointPersisted', 12, { node: 'b', worldLine: 1, version: 1, deps: { a: 1 } }),
    ev('nodeFailed', 13, { node: 'a', reason: 'killed' }),
    ev('worldLineChanged', 14, { worldLine: 2, cut: { a: 0, b: 0 }, failed: ['a'], kept: { a: 0, b: 0 }, reason: 'failure', recovery: 'cut' }),
    ev('messageSent', 14.5, { id: 'm2', kind: 'app', from: 'b', to: 'a', worldLine: 1, srcVersion: 2, seq: 1, resend: false }),
    ev('rollback', 15, { node: 'b', worldLine: 2, toVersion: 0, discarded: { from: 1, to: 2 } }),
    ev('versionOpened', 15, { node: 'b', worldLine: 2, version: 1, prevVersion: 0 }),
    ev('nodeRestarted', 16, { node: 'a' }),
    ev('rollback', 17, { node: 'a', worldLine: 2, toVersion: 0, discarded: null }),
    ev('versionOpened', 17, { node: 'a', worldLine: 2, version: 1, prevVersion: 0 }),
    ev('messageRejected', 18, { id: 'm2', kind: 'app', from: 'b', to: 'a', worldLine: 1, receiverWorldLine: 2 }),
  ];
}

describe('PlaygroundModel', () => {
  it('keeps what the app named a message (a hand-off), and the trace round trip keeps it too', () => {
    const m = new PlaygroundModel();
    const events = [
      ...twoNodeFailure().slice(0, 7),
      ev('messageSent', 3, { id: 'm9', kind: 'app', from: 'a', to: 'b', worldLine: 1, srcVersion: 1, seq: 9, resend: false, label: 'hand-off v2: 3 units' }),
    ];
    m.applyAll(events);
    const byId = (id: string) => [...m.messages.values()].find((x) => x.id === id);
    expect(byId('m9')?.label).toBe('hand-off v2: 3 units');
    const again = new PlaygroundModel();
    again.applyAll(parseTrace(JSON.stringify(exportTrace(m, 'live', null, new Date(0)))).events);
    expect([...again.messages.values()].find((x) => x.id === 'm9')?.label).toBe('hand-off v2: 3 units');
  });

  it('marks a message the relay lost (receiver down), the latest copy of its id, and counts it', () => {
    const m = new PlaygroundModel();
    m.applyAll([
      ev('messageSent', 1, { id: 'q/s1/1/1', kind: 'request', from: 'server', to: 'b', worldLine: 1, srcVersion: 0, seq: 1, resend: false }),
      ev('messageLost', 1, { id: 'q/s1/1/1', kind: 'request', from: 'server', to: 'b', reason: 'down' }),
      ev('messageSent', 2, { id: 'q/s1/1/1', kind: 'request', from: 'server', to: 'b', worldLine: 1, srcVersion: 0, seq: 1, resend: true }),
      ev('messageDelivered', 3, { id: 'q/s1/1/1', kind: 'request', from: 'server', to: 'b', version: 1, duplicate: false }),
    ]);
    const copies = [...m.messages.values()];
    expect(copies.map((c) => [c.lostReason, c.deliveredAt])).toEqual([
      ['down', null],
      [null, 3],
    ]);
    expect(m.totals.lost).toBe(1);
    // A trace with the event round-trips through export and import.
    expect(parseTrace(JSON.stringify(exportTrace(m, 'live', null, new Date(0)))).events.some((e) => e.type === 'messageLost')).toBe(true);
  });

  it('tracks versions through speculative, persisting and committed', () => {
    const m = new PlaygroundModel();
    const evs = twoNodeFailure().slice(0, 15);
    m.applyAll(evs);
    expect(m.versions.get(versionKey('a', 1, 1))?.state).toBe('persisting');
    expect(m.versions.get(versionKey('a', 1, 2))?.state).toBe('speculative');
    expect(m.versions.get(versionKey('b', 1, 1))?.persistedAt).toBe(12);
    m.apply(ev('checkpointPersisted', 13, { node: 'a', worldLine: 1, version: 1, deps: {} }));
    m.apply(ev('cutAdvanced', 13, { worldLine: 1, cut: { a: 1, b: 1 } }));
    expect(m.versions.get(versionKey('a', 1, 1))?.state).toBe('committed');
    expect(m.versions.get(versionKey('b', 1, 1))?.state).toBe('committed');
    expect(m.versions.get(versionKey('b', 1, 2))?.state).toBe('speculative');
    expect(m.nodes.get('b')?.committedVersion).toBe(1);
    expect(m.nodes.get('a')?.persistedVersion).toBe(1);
  });

  it('rolls back the failed node and its dependents, with a new world-line', () => {
    const m = new PlaygroundModel();
    m.applyAll(twoNodeFailure());
    expect(m.worldLine).toBe(2);
    expect(m.worldLines.map((w) => w.worldLine)).toEqual([1, 2]);
    const rolled = [...m.versions.values()]
      .filter((v) => v.state === 'rolled-back')
      .map((v) => v.key)
      .sort();
    expect(rolled).toEqual([versionKey('a', 1, 1), versionKey('a', 1, 2), versionKey('b', 1, 1), versionKey('b', 1, 2)].sort());
    expect(m.versions.get(versionKey('b', 2, 1))?.state).toBe('speculative');
    expect(m.nodes.get('a')?.status).toBe('up');
    expect(m.nodes.get('b')?.status).toBe('up');
    expect(m.totals.rejected).toBe(1);
    const msg = [...m.messages.values()].find((x) => x.id === 'm2');
    expect(msg?.rejectedAt).toBe(18);
    expect([...m.messages.values()].find((x) => x.id === 'm1')?.deliveredAt).toBe(4);
  });

  it('shows a failed node down until it restarts and restores', () => {
    const m = new PlaygroundModel();
    const evs = twoNodeFailure();
    m.applyAll(evs.slice(0, 16));
    expect(m.nodes.get('a')?.status).toBe('down');
    m.applyAll(evs.slice(16, 17));
    expect(m.nodes.get('b')?.status).toBe('recovering');
    m.applyAll(evs.slice(17, 21));
    expect(m.nodes.get('a')?.status).toBe('recovering');
    expect(m.nodes.get('b')?.status).toBe('up');
  });

  it('explains the cascade in causal order with the shortest dependency path', () => {
    const m = new PlaygroundModel();
    m.applyAll(twoNodeFailure());
    const idx = dependencyIndex(m);
    const rec = m.rollbacks.find((r) => r.worldLine === 2)!;
    expect(rec.roots.sort()).toEqual([versionKey('a', 1, 1), versionKey('a', 1, 2)].sort());
    const x = explainRollback(m, idx, rec);
    expect(x.steps.map((s) => s.key)).toEqual([versionKey('a', 1, 1), versionKey('a', 1, 2), versionKey('b', 1, 1), versionKey('b', 1, 2)]);
    expect(x.steps.map((s) => s.depth)).toEqual([0, 0, 1, 2]);
    const b1 = x.steps.find((s) => s.key === versionKey('b', 1, 1))!;
    expect(b1.because).toBe(versionKey('a', 1, 1));
    expect(b1.reason).toContain('depends on a v1');
    expect(x.why).toContainEqual({ from: versionKey('b', 1, 1), to: versionKey('a', 1, 1), kind: 'node' });
    expect(x.why).toContainEqual({ from: versionKey('b', 1, 2), to: versionKey('b', 1, 1), kind: 'prefix' });
    expect(x.why).toHaveLength(2);
  });

  it('previews what a kill would roll back', () => {
    const m = new PlaygroundModel();
    m.applyAll(twoNodeFailure().slice(0, 15));
    const idx = dependencyIndex(m);
    const p = killPreview(m, idx, 'a');
    expect(p.lost.sort()).toEqual([versionKey('a', 1, 1), versionKey('a', 1, 2)].sort());
    expect(p.dependent.sort()).toEqual([versionKey('b', 1, 1), versionKey('b', 1, 2)].sort());
    expect(p.collateral).toEqual([]);
    const pb = killPreview(m, idx, 'b');
    expect(pb.dependent).toEqual([]);
    expect(pb.collateral.sort()).toEqual([versionKey('a', 1, 1), versionKey('a', 1, 2)].sort());
  });

  it('links a selection to its dependencies and dependents', () => {
    const m = new PlaygroundModel();
    m.applyAll(twoNodeFailure().slice(0, 15));
    const idx = dependencyIndex(m);
    const s = selectionOf(m, idx, versionKey('b', 1, 1));
    expect([...s.dependencies]).toEqual([versionKey('a', 1, 1)]);
    expect([...s.dependents]).toEqual([versionKey('b', 1, 2)]);
  });

  it('keeps state: committed base plus uncommitted changes, undone by a rollback', () => {
    const m = new PlaygroundModel();
    m.applyAll(twoNodeFailure().slice(0, 7));
    m.apply(ev('stateChanged', 9, { node: 'a', version: 1, set: { x: 1 }, deleted: [] }));
    m.apply(ev('cutAdvanced', 11, { worldLine: 1, cut: { a: 1, b: 0 } }));
    m.apply(ev('stateChanged', 12, { node: 'a', version: 2, set: { y: 2 }, deleted: ['x'] }));
    expect(m.nodeState('a')).toEqual({ y: 2 });
    m.apply(ev('worldLineChanged', 14, { worldLine: 2, cut: { a: 1, b: 0 }, failed: [], kept: { a: 1, b: 0 }, reason: 'modeChange', recovery: 'cut' }));
    m.apply(ev('rollback', 15, { node: 'a', worldLine: 2, toVersion: 1, discarded: { from: 2, to: 2 } }));
    expect(m.nodeState('a')).toEqual({ x: 1 });
  });

  it('bounds its history: old settled versions become counts', () => {
    const m = new PlaygroundModel({ versionsPerNodeMax: 20, messagesMax: 10, eventsMax: 50 });
    m.apply(ev('worldLineChanged', 0, { worldLine: 1, cut: { a: 0 }, failed: [], kept: { a: 0 }, reason: 'start', recovery: 'cut' }));
    for (let v = 1; v <= 200; v++) {
      m.apply(ev('versionOpened', v * 10, { node: 'a', worldLine: 1, version: v, prevVersion: v - 1 }));
      m.apply(ev('messageSent', v * 10 + 1, { id: `m${v}`, kind: 'app', from: 'a', to: 'b', worldLine: 1, srcVersion: v, seq: v, resend: false }));
      if (v > 1) m.apply(ev('cutAdvanced', v * 10 + 2, { worldLine: 1, cut: { a: v - 1 } }));
    }
    expect(m.lane('a').length).toBeLessThanOrEqual(20);
    expect(m.versions.size).toBe(m.lane('a').length);
    expect(m.compressed.get('a')!.versions + m.lane('a').length).toBe(200);
    expect(m.messages.size).toBe(10);
    expect(m.events.length).toBeLessThanOrEqual(63);
    expect(m.eventsDropped + m.events.length).toBe(m.totals.events);
  });
});

describe('the model on simulator traces', () => {
  for (const name of ['sim-seed2', 'sim-seed3']) {
    it(`${name}: every version settles consistently`, () => {
      const events = JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as E[];
      const m = new PlaygroundModel();
      m.applyAll(events);
      const lastWl = events.filter((e) => e.type === 'worldLineChanged').length;
      expect(m.worldLine).toBe(lastWl);
      for (const v of m.versions.values()) {
        // A committed version is covered by the cut of its node; a rolled-back one never is in its world-line.
        if (v.state === 'committed') expect(v.version).toBeLessThanOrEqual(m.cut[v.node] ?? 0);
        if (v.state === 'rolled-back') expect(v.rolledBackBy).toBeGreaterThan(v.worldLine === m.worldLine ? v.worldLine - 1 : 0);
        // Nothing speculative survives from an ended world-line.
        if (v.worldLine < m.worldLine) expect(['committed', 'rolled-back']).toContain(v.state);
      }
      const rolledEvents = events.filter((e) => e.type === 'rollback' && e.discarded !== null).length;
      if (rolledEvents > 0) expect(m.totals.rolledBack).toBeGreaterThan(0);
      const idx = dependencyIndex(m);
      for (const rec of m.rollbacks) {
        const x = explainRollback(m, idx, rec);
        expect(x.steps).toHaveLength(rec.discarded.length);
        // Causal order: each explained step comes after the step it was discarded because of.
        const pos = new Map(x.steps.map((s, i) => [s.key, i]));
        for (const s of x.steps) if (s.because !== null && pos.has(s.because)) expect(pos.get(s.because)!).toBeLessThan(pos.get(s.key)!);
      }
    });
  }

  it('export then import gives the same view state', () => {
    const events = JSON.parse(readFileSync(new URL('./fixtures/sim-seed3.json', import.meta.url), 'utf8')) as E[];
    const a = new PlaygroundModel();
    a.applyAll(events);
    const text = JSON.stringify(exportTrace(a, 'simulation', { seed: '3' }, new Date(0)));
    const t = parseTrace(text);
    const b = new PlaygroundModel();
    b.applyAll(t.events);
    expect(b.worldLine).toBe(a.worldLine);
    expect(b.cut).toEqual(a.cut);
    expect(b.totals).toEqual(a.totals);
    expect([...b.versions.values()].map((v) => [v.key, v.state])).toEqual([...a.versions.values()].map((v) => [v.key, v.state]));
    expect(t.simulation).toEqual({ seed: '3' });
  });

  it('refuses a malformed trace with a reason', () => {
    expect(() => parseTrace('nope')).toThrow(TraceError);
    expect(() => parseTrace('{"format":"other"}')).toThrow(/not a DSE trace/);
    expect(() => parseTrace('[{"type":"bogus","t":1}]')).toThrow(/event 0 \(bogus\): type must be one of versionOpened, .* \(not "bogus"\)/);
    expect(() => parseTrace('[{"type":"nodeFailed"}]')).toThrow('event 0 (nodeFailed): t is required');
    expect(() => parseTrace('[{"type":"nodeFailed","t":1,"node":"a","reason":"exit"},{"type":"nodeFailed","t":"x","node":"a","reason":"exit"}]')).toThrow(
      'event 1 (nodeFailed): t must be a number',
    );
    expect(() => parseTrace('[{"type":"nodeFailed","t":1,"node":"a","reason":"tired"}]')).toThrow(
      'event 0 (nodeFailed): reason must be one of exit, heartbeat, restart, killed',
    );
    expect(() => parseTrace('[{"type":"stateChanged","t":1,"node":"a","version":1,"set":{"k":1},"deleted":"k"}]')).toThrow(
      'event 0 (stateChanged): deleted must be',
    );
    expect(() => parseTrace('{"format":"dse-trace","formatVersion":2,"events":[]}')).toThrow(/unsupported trace format version 2/);
    expect(() => parseTrace('{"format":"dse-trace","formatVersion":1}')).toThrow(/no events array/);
    expect(parseTrace('[{"type":"nodeFailed","t":1,"node":"a","reason":"exit"}]').events).toHaveLength(1);
  });
});

describe('request latency', () => {
  it('measures request → answer and → commit per mode from the session events', async () => {
    const { liveStats } = await import('../src/model/stats');
    const m = new PlaygroundModel();
    m.apply(ev('modeChanged', 0, { mode: 'durable' }));
    m.apply(ev('nodeRestarted', 0, { node: 'n1' }));
    m.apply(ev('messageSent', 10, { id: 'q/s1/1/1', kind: 'request', from: 'server', to: 'n1', worldLine: 1, srcVersion: 0, seq: 1, resend: false }));
    m.apply(ev('messageSent', 15, { id: 'q/s1/1/1', kind: 'request', from: 'server', to: 'n1', worldLine: 1, srcVersion: 0, seq: 1, resend: true }));
    m.apply(ev('sessionResult', 30, { session: 's1', seq: 1, status: 'speculative', result: null, deps: {}, worldLine: 1 }));
    m.apply(ev('sessionResult', 70, { session: 's1', seq: 1, status: 'committed', result: null, deps: {}, worldLine: 1 }));
    const s = liveStats(m, 1000);
    expect(s.latency).toHaveLength(1);
    expect(s.latency[0]!.mode).toBe('durable');
    expect(s.latency[0]!.answer?.p50).toBe(20);
    expect(s.latency[0]!.commit?.p50).toBe(60);
    expect(s.commitLag?.p50).toBe(40);
  });
});

describe('latency race', () => {
  it('collects answer latencies per mode since a time, and bins both modes on shared bins', async () => {
    const { answerLatencies, histogram } = await import('../src/model/stats');
    const m = new PlaygroundModel();
    m.apply(ev('nodeRestarted', 0, { node: 'n1' }));
    const request = (seq: number, sent: number, answered: number): void => {
      m.apply(ev('messageSent', sent, { id: `q/s1/${seq}/1`, kind: 'request', from: 'server', to: 'n1', worldLine: 1, srcVersion: 0, seq, resend: false }));
      m.apply(ev('sessionResult', answered, { session: 's1', seq, status: 'speculative', result: null, deps: {}, worldLine: 1 }));
    };
    m.apply(ev('modeChanged', 0, { mode: 'speculative' }));
    request(1, 5, 7); // before the race: not counted
    request(2, 10, 12);
    m.apply(ev('modeChanged', 20, { mode: 'durable' }));
    request(3, 30, 50);
    const lat = answerLatencies(m, 10);
    expect(lat.get('speculative')).toEqual([2]);
    expect(lat.get('durable')).toEqual([20]);
    const h = histogram([lat.get('speculative')!, lat.get('durable')!], 4);
    expect(h.max).toBe(20);
    expect(h.counts).toEqual([
      [1, 0, 0, 0],
      [0, 0, 0, 1],
    ]);
  });
});
