import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from '@dse/shared';
import { DEFAULT_MODEL_LIMITS, PlaygroundModel } from '../src/model/model';

type E = InspectionEvent;
const ev = <T extends E['type']>(type: T, t: number, rest: Omit<Extract<E, { type: T }>, 'type' | 't'>): E => ({ type, t, ...rest }) as unknown as E;

/**
 * A long busy run on 8 nodes, as the live page gets it: versions, checkpoints, messages, session
 * answers, state changes, cut advances and now and then a kill and its recovery.
 */
function* longRun(rounds: number): Generator<E> {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8'];
  const version: Record<string, number> = Object.fromEntries(nodes.map((n) => [n, 0]));
  let wl = 1;
  let t = 0;
  let seq = 0;
  const start = Object.fromEntries(nodes.map((n) => [n, 0]));
  yield ev('worldLineChanged', t, { worldLine: 1, cut: start, failed: [], kept: start, reason: 'start', recovery: 'cut' });
  for (let r = 0; r < rounds; r++) {
    for (const n of nodes) {
      t += 1;
      const v = ++version[n]!;
      yield ev('versionOpened', t, { node: n, worldLine: wl, version: v, prevVersion: v - 1 });
      yield ev('stateChanged', t, { node: n, version: v, set: { [`k${r % 50}`]: r }, deleted: [] });
      const to = nodes[(nodes.indexOf(n) + 1) % nodes.length]!;
      seq++;
      yield ev('messageSent', t, {
        id: `q/s${seq % 300}/${seq}/${wl}`,
        kind: 'request',
        from: `c${seq % 300}`,
        to: n,
        worldLine: wl,
        srcVersion: 0,
        seq,
        resend: false,
      });
      yield ev('messageSent', t, { id: `m${seq}`, kind: 'app', from: n, to, worldLine: wl, srcVersion: v, seq, resend: false });
      yield ev('messageDelivered', t + 1, { id: `m${seq}`, kind: 'app', from: n, to, version: version[to]!, duplicate: false });
      yield ev('sessionResult', t + 1, { session: `s${seq % 300}`, seq, status: 'speculative', result: null, deps: {}, worldLine: wl });
      yield ev('checkpointStarted', t + 1, {
        node: n,
        worldLine: wl,
        version: v,
        prevVersion: v - 1,
        changedKeys: 1,
        full: false,
        deps: { [to]: version[to]! },
      });
      yield ev('checkpointPersisted', t + 2, { node: n, worldLine: wl, version: v, deps: {} });
    }
    yield ev('cutAdvanced', t + 3, { worldLine: wl, cut: Object.fromEntries(nodes.map((n) => [n, version[n]! - 1])) });
    if (r % 97 === 96) {
      // A kill of one node and the recovery to the cut.
      const dead = nodes[r % nodes.length]!;
      wl++;
      const cut = Object.fromEntries(nodes.map((n) => [n, version[n]! - 1]));
      yield ev('nodeFailed', t + 4, { node: dead, reason: 'killed' });
      yield ev('worldLineChanged', t + 5, { worldLine: wl, cut, failed: [dead], kept: cut, reason: 'failure', recovery: 'cut' });
      for (const n of nodes) {
        yield ev('rollback', t + 6, { node: n, worldLine: wl, toVersion: cut[n]!, discarded: { from: cut[n]! + 1, to: version[n]! } });
        version[n] = cut[n]!;
      }
    }
  }
}

describe('the model over a long busy run', () => {
  it('keeps every collection within its limits: memory does not grow with history', () => {
    const limits = { ...DEFAULT_MODEL_LIMITS, worldLinesMax: 20, cutHistoryMax: 500 };
    const m = new PlaygroundModel(limits);
    const sizes = (): number[] => [
      m.events.length,
      m.messages.size,
      m.versions.size,
      ...[...m.lanes.values()].map((l) => l.length),
      m.sessions.size,
      m.rollbacks.length,
      m.worldLines.length,
      m.cutHistory.length,
      ...[...m.nodes.values()].map((n) => m.appState.stateOf(n.id).pending.length + Object.keys(m.appState.stateOf(n.id).committed).length),
    ];
    let i = 0;
    let atHalf: number[] = [];
    const rounds = 3000;
    for (const e of longRun(rounds)) {
      m.apply(e);
      i++;
      if (i === 95_000) atHalf = sizes();
    }
    expect(m.totals.events).toBe(i);
    expect(i).toBeGreaterThan(190_000);
    expect(m.worldLine).toBeGreaterThan(limits.worldLinesMax);
    expect(m.events.length).toBeLessThanOrEqual(limits.eventsMax * 1.25);
    expect(m.messages.size).toBeLessThanOrEqual(limits.messagesMax);
    for (const l of m.lanes.values()) expect(l.length).toBeLessThanOrEqual(limits.versionsPerNodeMax);
    expect(m.sessions.size).toBeLessThanOrEqual(limits.sessionRequestsMax);
    expect(m.rollbacks.length).toBeLessThanOrEqual(limits.rollbackRecordsMax);
    expect(m.worldLines.length).toBe(limits.worldLinesMax);
    expect(m.worldLines.at(-1)!.worldLine).toBe(m.worldLine);
    expect(m.cutHistory.length).toBeLessThanOrEqual(limits.cutHistoryMax * 1.25);
    // Twice the history, no more kept: every collection is as large at the end as half-way, give or take its trimming slack.
    const end = sizes();
    expect(end.length).toBe(atHalf.length);
    end.forEach((n, k) => expect(n).toBeLessThanOrEqual(Math.ceil(atHalf[k]! * 1.25) + 1));
  });
});
