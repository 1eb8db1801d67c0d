import type { Cut, InspectionEvent } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/core/coordinator';
import type { WireMessage } from '../../src/core/messages';
import type { CheckpointRecord } from '../../src/core/ports';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';

function setup(storage: MemoryStorage, cutKind: 'exact' | 'cheap' = 'exact') {
  const sched = new Scheduler();
  const sent: [string, WireMessage][] = [];
  const events: InspectionEvent[] = [];
  const c = new Coordinator(
    { clock: new ProcessClock(sched), network: { send: (to, m) => sent.push([to, m]) }, storage, observer: { emit: (e) => events.push(e) } },
    { cutKind, pruneIntervalMs: 1_000_000 },
  );
  const flush = async () => {
    for (let i = 0; i < 50; i++) await null;
    while (sched.step(sched.now + 10)) for (let i = 0; i < 20; i++) await null;
  };
  return { sched, c, sent, events, flush };
}

/** Writes a checkpoint row and tells the coordinator, as a node would. */
async function persist(storage: MemoryStorage, c: Coordinator, node: string, worldLine: number, version: number, prevVersion: number, deps: Cut) {
  const r: CheckpointRecord = { node, worldLine, version, prevVersion, deps, full: true, changes: { set: [['a:v', version]], del: [] } };
  await storage.writeCheckpoints([r]);
  c.receive({ kind: 'persisted', node, worldLine, version, prevVersion, deps });
}

describe('coordinator', () => {
  it('recovery: a new world-line saved before it is announced, every live node told to restore to the cut', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage);
    await t.c.start(['n1', 'n2']);
    t.c.receive({ kind: 'hello', node: 'n1' });
    t.c.receive({ kind: 'hello', node: 'n2' });
    t.c.addClient('client');
    await persist(storage, t.c, 'n1', 1, 1, 0, {});
    await persist(storage, t.c, 'n2', 1, 1, 0, { n1: 1 });
    await persist(storage, t.c, 'n2', 1, 2, 1, { n1: 2 }); // n1@2 is not persisted: n2@2 waits
    expect(t.c.cut).toEqual({ n1: 1, n2: 1 });
    t.sent.length = 0;
    t.c.nodeFailed('n1', 'exit');
    await t.flush();
    expect(t.c.worldLine).toBe(2);
    expect((await storage.loadCoordinator())?.worldLine).toBe(2);
    const recovers = t.sent.filter(([, m]) => m.kind === 'recover');
    expect(recovers.map(([to]) => to)).toEqual(['n2']);
    expect(recovers[0]![1]).toMatchObject({ worldLine: 2, cut: { n1: 1, n2: 1 } });
    expect(t.sent.some(([to, m]) => to === 'client' && m.kind === 'worldLine')).toBe(true);
    // Writes of world-line 1 are fenced off now.
    await expect(storage.writeCheckpoints([{ node: 'n2', worldLine: 1, version: 3, prevVersion: 2, deps: {}, full: true, changes: { set: [], del: [] } }])).rejects.toMatchObject({
      code: 'StaleWorldLine',
    });
    // Reports from the old world-line are ignored.
    t.c.receive({ kind: 'persisted', node: 'n2', worldLine: 1, version: 2, prevVersion: 1, deps: {} });
    expect(t.c.cut).toEqual({ n1: 1, n2: 1 });
  });

  it('a restarted coordinator recovers a cut at least as high as the one it announced, from storage alone', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage);
    await t.c.start(['n1', 'n2']);
    t.c.receive({ kind: 'hello', node: 'n1' });
    t.c.receive({ kind: 'hello', node: 'n2' });
    for (let v = 1; v <= 5; v++) {
      await persist(storage, t.c, 'n1', 1, v, v - 1, { n2: v - 1 });
      await persist(storage, t.c, 'n2', 1, v, v - 1, { n1: v });
    }
    const announced = { ...t.c.cut };
    expect(announced).toEqual({ n1: 5, n2: 5 });
    // The saved record still says cut 0 (it is saved periodically): the process dies now.
    t.c.stop();
    expect((await storage.loadCoordinator())?.cut).toEqual({ n1: 0, n2: 0 });
    const again = setup(storage);
    await again.c.start(['n1', 'n2']);
    expect(again.c.worldLine).toBe(2);
    expect(again.c.cut).toEqual(announced);
    const changed = again.events.find((e) => e.type === 'worldLineChanged');
    expect(changed).toMatchObject({ worldLine: 2, cut: announced });
  });

  it('a node failed for silence that turns out alive is recovered like a restarted one', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage);
    await t.c.start(['n1', 'n2']);
    t.c.receive({ kind: 'hello', node: 'n1' });
    t.c.receive({ kind: 'hello', node: 'n2' });
    t.c.nodeFailed('n2', 'heartbeat');
    await t.flush();
    expect(t.c.members.get('n2')).toBe('down');
    t.sent.length = 0;
    t.c.receive({ kind: 'heartbeat', node: 'n2', worldLine: 1, version: 3 });
    await t.flush();
    expect(t.c.members.get('n2')).toBe('up');
    expect(t.sent.filter(([to, m]) => to === 'n2' && m.kind === 'recover')).toHaveLength(1);
    expect(t.events.some((e) => e.type === 'nodeRestarted' && e.node === 'n2')).toBe(true);
  });

  it('a session host added to a coordinator that replaced another hears the new world-line at once', async () => {
    const storage = new MemoryStorage();
    const first = setup(storage);
    await first.c.start(['n1']);
    first.c.stop();
    const t = setup(storage);
    await t.c.start(['n1']);
    t.c.addClient('server', { announce: true });
    const wl = t.sent.find(([to, m]) => to === 'server' && m.kind === 'worldLine');
    expect(wl?.[1]).toMatchObject({ worldLine: 2, recoveryCuts: [{ worldLine: 1 }, { worldLine: 2 }] });
  });

  it('removing a node keeps its committed versions in the cut, and rolls back what depended on the rest', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage);
    await t.c.start(['n1', 'n2']);
    t.c.receive({ kind: 'hello', node: 'n1' });
    t.c.receive({ kind: 'hello', node: 'n2' });
    await persist(storage, t.c, 'n2', 1, 1, 0, {});
    await persist(storage, t.c, 'n1', 1, 1, 0, { n2: 1 });
    await persist(storage, t.c, 'n1', 1, 2, 1, { n2: 2 }); // n2@2 never persists
    expect(t.c.cut).toEqual({ n1: 1, n2: 1 });
    t.c.removeNode('n2');
    await t.flush();
    // A new world-line: n1@2 depended on n2's lost version and is rolled back.
    expect(t.c.worldLine).toBe(2);
    expect(t.sent.filter(([to, m]) => to === 'n1' && m.kind === 'recover').at(-1)![1]).toMatchObject({ worldLine: 2, cut: { n1: 1, n2: 1 } });
    expect([...t.c.members.keys()]).toEqual(['n1']);
    // n2's committed version stays: a version of n1 that depends on it commits.
    await persist(storage, t.c, 'n1', 2, 2, 1, { n2: 1 });
    expect(t.c.cut).toEqual({ n1: 2, n2: 1 });
    // Added again under the same id, it resumes from its committed version.
    t.c.addNode('n2');
    t.sent.length = 0;
    t.c.receive({ kind: 'hello', node: 'n2' });
    await t.flush();
    expect(t.sent.find(([to, m]) => to === 'n2' && m.kind === 'recover')?.[1]).toMatchObject({ resumeVersion: 2, cut: { n2: 1 } });
  });
});
