import type { Cut, InspectionEvent, RecoveryKind } from '@dse/shared';
import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { CoordinatorConfig } from '../../src/core/coordinator';
import { Coordinator } from '../../src/core/coordinator';
import type { ReportedVersion, WireMessage } from '../../src/core/messages';
import type { CheckpointRecord, CoordinatorRecord, Storage } from '../../src/core/ports';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';
import { overrideStorage } from '../../src/storage/override';

function setup(storage: Storage, recovery: RecoveryKind = 'cut', cfg: Partial<CoordinatorConfig> = {}, sched = new Scheduler()) {
  const sent: [string, WireMessage][] = [];
  const events: InspectionEvent[] = [];
  const fatal: unknown[] = [];
  const c = new Coordinator(
    {
      clock: new ProcessClock(sched),
      network: { send: (to, m) => sent.push([to, m]) },
      storage,
      observer: { emit: (e) => events.push(e) },
      onFatal: (e) => fatal.push(e),
    },
    { cutKind: 'exact', recovery, pruneIntervalMs: 1_000_000, ...cfg },
  );
  const flush = async () => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
    while (sched.step(sched.now + 10)) for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  return { sched, c, sent, events, fatal, flush };
}

/** A node's answer to `prepare`: its uncommitted versions (closed ones, then the open one). */
function prepared(node: string, worldLine: number, versions: [number, number, Cut, boolean][], base = 0, from = worldLine - 1): WireMessage {
  const vs: ReportedVersion[] = versions.map(([version, prevVersion, deps, persisted]) => ({ version, prevVersion, deps, persisted }));
  return { kind: 'prepared', node, incarnation: 1, worldLine, from, base, versions: vs };
}

/** Writes a checkpoint row and tells the coordinator, as a node would. */
async function persist(storage: MemoryStorage, c: Coordinator, node: string, worldLine: number, version: number, prevVersion: number, deps: Cut) {
  const r: CheckpointRecord = { node, worldLine, version, prevVersion, deps, full: true, changes: { set: [['a:v', version]], del: [] } };
  await storage.writeCheckpoints([r]);
  c.receive({ kind: 'persisted', node, worldLine, version, prevVersion, deps });
}

describe('coordinator', () => {
  it('recovery cut: a new world-line saved before it is announced, every live node told to restore to the cut', async () => {
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
    await expect(
      storage.writeCheckpoints([{ node: 'n2', worldLine: 1, version: 3, prevVersion: 2, deps: {}, full: true, changes: { set: [], del: [] } }]),
    ).rejects.toMatchObject({
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

  it('removing a node keeps its committed versions in the cut, and rolls back what depended on the rest (recovery cut)', async () => {
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

  it('a node that left is forgotten without a world-line once its last version has committed, and only then', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage, 'precise');
    await t.c.start(['n1', 'n2']);
    for (const n of ['n1', 'n2']) t.c.receive({ kind: 'hello', node: n, incarnation: 1 });
    await t.flush();
    await persist(storage, t.c, 'n1', 1, 1, 0, {});
    await persist(storage, t.c, 'n2', 1, 1, 0, {});
    await persist(storage, t.c, 'n2', 1, 2, 1, { n1: 2 }); // waits for n1@2
    expect(t.c.cut).toEqual({ n1: 1, n2: 1 });
    // n2 left at version 2 (`DseNode.leave`): not committed yet.
    expect(t.c.retireLeft('n2', 2, 1)).toBe('wait');
    // Another world-line than the one it left in: perhaps another process of it, that did not leave.
    expect(t.c.retireLeft('n2', 2, 2)).toBe('refused');
    await persist(storage, t.c, 'n1', 1, 2, 1, {});
    expect(t.c.cut).toEqual({ n1: 2, n2: 2 });
    t.events.length = 0;
    expect(t.c.retireLeft('n2', 2, 1)).toBe('done');
    await t.flush();
    // Forgotten once a record without it is saved; no failure, no world-line, and its cut entry stays.
    expect([...t.c.members.keys()]).toEqual(['n1']);
    expect(t.c.worldLine).toBe(1);
    expect(t.events.filter((e) => e.type === 'nodeFailed' || e.type === 'worldLineChanged' || e.type === 'recoveryPlan')).toEqual([]);
    expect(await storage.loadCoordinator()).toMatchObject({ worldLine: 1, nodes: ['n1'], gone: ['n2'] });
    expect(t.c.cut).toMatchObject({ n2: 2 });
    // Its process exits afterwards: no failure either.
    t.c.nodeFailed('n2', 'exit');
    await t.flush();
    expect(t.c.worldLine).toBe(1);
    expect(t.c.retireLeft('n3', 0, 1)).toBe('refused');
  });

  it('removing a down node that a precise recovery kept versions of rolls those back first, with what depends on them', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage, 'precise');
    await t.c.start(['n1', 'n2', 'n3']);
    for (const n of ['n1', 'n2', 'n3']) t.c.receive({ kind: 'hello', node: n, incarnation: 1 });
    t.c.addClient('client');
    for (const n of ['n1', 'n2', 'n3']) await persist(storage, t.c, n, 1, 1, 0, {});
    // n1@2 is persisted but waits for n2@2; n1 fails, and the recovery keeps n1@2 (it may still commit).
    await persist(storage, t.c, 'n1', 1, 2, 1, { n2: 2 });
    t.c.nodeFailed('n1', 'exit');
    await t.flush();
    t.c.receive(
      prepared(
        'n2',
        2,
        [
          [2, 1, {}, false],
          [3, 2, { n1: 2 }, false],
        ],
        1,
      ),
    );
    t.c.receive(prepared('n3', 2, [[2, 1, { n1: 2 }, true]], 1));
    await t.flush();
    expect(t.c.worldLine).toBe(2);
    expect((await storage.loadCoordinator())?.kept).toMatchObject({ n1: 2, n2: 3, n3: 2 });
    // Removed for good, n1@2 can never commit: a new world-line rolls it back, and n2@3 and n3@2 with it.
    t.sent.length = 0;
    t.c.removeNode('n1');
    expect(t.c.members.has('n1')).toBe(true); // not complete before that world-line is saved
    await t.flush();
    expect(t.sent.filter(([, m]) => m.kind === 'prepare').map(([to]) => to)).toEqual(['n2', 'n3']);
    t.c.receive(
      prepared(
        'n2',
        3,
        [
          [2, 1, {}, false],
          [3, 2, { n1: 2 }, false],
        ],
        1,
      ),
    );
    t.c.receive(prepared('n3', 3, [[2, 1, { n1: 2 }, true]], 1));
    // A late report of the removed node changes nothing.
    t.c.receive({ kind: 'persisted', node: 'n1', worldLine: 2, version: 2, prevVersion: 1, deps: { n2: 2 } });
    await t.flush();
    expect(t.c.worldLine).toBe(3);
    expect((await storage.loadCoordinator())?.kept).toMatchObject({ n1: 1, n2: 2, n3: 1 });
    expect(t.events.find((e) => e.type === 'worldLineChanged' && e.worldLine === 3)).toMatchObject({ reason: 'nodeRemoved', failed: ['n1'] });
    expect([...t.c.members.keys()]).toEqual(['n2', 'n3']);
    // Its committed version stays in the cut, final; a hello under its id is not served.
    expect(t.c.cut.n1).toBe(1);
    t.c.receive({ kind: 'hello', node: 'n1', incarnation: 2 });
    await t.flush();
    expect(t.sent.some(([to, m]) => to === 'n1' && m.kind === 'recover')).toBe(false);
    // What n2 does next commits without n1.
    await persist(storage, t.c, 'n2', 3, 2, 1, {});
    expect(t.c.cut).toMatchObject({ n1: 1, n2: 2 });
  });

  it('precise recovery: asks the live nodes, keeps what depends on nothing lost, rolls back the rest, and says why', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage, 'precise');
    await t.c.start(['n1', 'n2', 'n3']);
    for (const n of ['n1', 'n2', 'n3']) t.c.receive({ kind: 'hello', node: n, incarnation: 1 });
    t.c.addClient('client');
    await persist(storage, t.c, 'n1', 1, 1, 0, {});
    await persist(storage, t.c, 'n2', 1, 1, 0, {});
    await persist(storage, t.c, 'n3', 1, 1, 0, {});
    expect(t.c.cut).toEqual({ n1: 1, n2: 1, n3: 1 });
    // Uncommitted: n1@2 persisted, n1@3 not (lost when n1 fails); n2@2 depends on n1@2 (kept), n2@3 on n1@3
    // (rolled back, and n2@4 after it); n3@2 and the open n3@3 depend on nothing lost.
    await persist(storage, t.c, 'n1', 1, 2, 1, { n2: 2 });
    t.sent.length = 0;
    t.c.nodeFailed('n1', 'exit');
    await t.flush();
    expect(t.sent.filter(([, m]) => m.kind === 'prepare').map(([to]) => to)).toEqual(['n2', 'n3']);
    expect(t.c.worldLine).toBe(1); // nothing decided before every live node answered
    t.c.receive(
      prepared(
        'n2',
        2,
        [
          [2, 1, { n1: 2 }, false],
          [3, 2, { n1: 3 }, false],
          [4, 3, {}, false],
        ],
        1,
      ),
    );
    t.c.receive(
      prepared(
        'n3',
        2,
        [
          [2, 1, { n2: 1 }, true],
          [3, 2, { n1: 1 }, false],
        ],
        1,
      ),
    );
    await t.flush();
    expect(t.c.worldLine).toBe(2);
    const saved = await storage.loadCoordinator();
    expect(saved).toMatchObject({ worldLine: 2, cut: { n1: 1, n2: 1, n3: 1 }, kept: { n1: 2, n2: 2, n3: 3 } });
    const recover = t.sent.find(([to, m]) => to === 'n2' && m.kind === 'recover')![1];
    expect(recover).toMatchObject({ worldLine: 2, restore: { n1: 2, n2: 2, n3: 3 }, resumeVersion: 3 });
    expect(t.events.find((e) => e.type === 'worldLineChanged' && e.worldLine === 2)).toMatchObject({
      kept: { n1: 2, n2: 2, n3: 3 },
      failed: ['n1'],
      recovery: 'precise',
    });
    const plan = t.events.find((e) => e.type === 'recoveryPlan');
    expect(plan).toMatchObject({
      worldLine: 2,
      lost: [{ node: 'n1', version: 2 }],
      rolledBack: [
        { node: 'n1', above: 2, reason: 'lost' },
        {
          node: 'n2',
          above: 2,
          versions: [3, 4],
          reason: 'dependency',
          path: [
            { node: 'n2', version: 3 },
            { node: 'n1', version: 3 },
          ],
        },
      ],
      kept: [
        { node: 'n1', version: 2 },
        { node: 'n2', version: 2 },
        { node: 'n3', version: 2 },
        { node: 'n3', version: 3 },
      ],
    });
    // The clients hear where each node restarts from, for their answers.
    const wl = t.sent.find(([to, m]) => to === 'client' && m.kind === 'worldLine')![1];
    expect(wl).toMatchObject({ worldLine: 2, recoveryCuts: [{ worldLine: 2, kept: { n1: 2, n2: 2, n3: 3 } }] });
    // Kept versions commit later, in the new world-line, once persisted (a node reports its kept
    // persisted versions again under the new world-line).
    t.c.receive({ kind: 'persisted', node: 'n3', worldLine: 2, version: 2, prevVersion: 1, deps: { n2: 1 } });
    await persist(storage, t.c, 'n3', 2, 3, 2, { n1: 1 });
    expect(t.c.cut).toEqual({ n1: 1, n2: 1, n3: 3 });
  });

  it('precise recovery: a node that does not answer in time is taken as failed, and its unpersisted state as lost', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage, 'precise', { prepareTimeoutMs: 50 });
    await t.c.start(['n1', 'n2']);
    t.c.receive({ kind: 'hello', node: 'n1', incarnation: 1 });
    t.c.receive({ kind: 'hello', node: 'n2', incarnation: 1 });
    t.c.nodeFailed('n1', 'exit');
    await t.flush();
    expect(t.c.worldLine).toBe(1);
    for (let i = 0; i < 10; i++) await t.flush();
    t.sched.runUntil(t.sched.now + 60);
    await t.flush();
    expect(t.c.worldLine).toBe(2);
    expect(t.c.members.get('n2')).toBe('down');
    expect(t.events.filter((e) => e.type === 'nodeFailed').map((e) => (e as { node: string }).node)).toEqual(['n1', 'n2']);
  });

  it('prune-time saves never overlap: an older save cannot land after a newer one', async () => {
    const sched = new Scheduler();
    const inner = new MemoryStorage();
    let inFlight = 0;
    let most = 0;
    const saves: Cut[] = [];
    const slow = overrideStorage(inner, {
      saveCoordinator: (r: CoordinatorRecord) =>
        new Promise<void>((resolve, reject) => {
          inFlight++;
          most = Math.max(most, inFlight);
          saves.push(r.cut);
          // Each save takes longer than the prune interval.
          sched.after(35, () => {
            inFlight--;
            inner.saveCoordinator(r).then(resolve, reject);
          });
        }),
    });
    const t = setup(slow, 'cut', { pruneIntervalMs: 10 }, sched);
    // A prune timer every 10 ms: run the clock in bounded steps (t.flush would never end).
    const run = async (ms: number): Promise<void> => {
      for (const end = sched.now + ms; sched.now < end;) {
        sched.runUntil(Math.min(end, sched.now + 1));
        for (let i = 0; i < 20; i++) await Promise.resolve();
      }
    };
    const started = t.c.start(['n1']);
    await run(40);
    await started;
    t.c.receive({ kind: 'hello', node: 'n1', incarnation: 1 });
    for (let v = 1; v <= 6; v++) {
      await persist(inner, t.c, 'n1', 1, v, v - 1, {});
      await run(10);
    }
    await run(200);
    expect(most).toBe(1);
    expect(saves.length).toBeGreaterThan(2);
    for (let i = 1; i < saves.length; i++) expect(saves[i]!.n1!).toBeGreaterThanOrEqual(saves[i - 1]!.n1!);
    expect(t.fatal).toEqual([]);
  });

  it('a recovery whose save storage refuses for good stops the coordinator (onFatal) instead of hanging; a new one recovers', async () => {
    const inner = new MemoryStorage();
    let refuse = true;
    const storage = overrideStorage(inner, {
      saveCoordinator: (r: CoordinatorRecord) => {
        if (refuse && r.worldLine === 2) {
          refuse = false;
          return Promise.reject(new DseError('StorageCorrupt', 'a page checksum failed'));
        }
        return inner.saveCoordinator(r);
      },
    });
    const t = setup(storage, 'cut');
    await t.c.start(['n1', 'n2']);
    t.c.receive({ kind: 'hello', node: 'n1', incarnation: 1 });
    t.c.receive({ kind: 'hello', node: 'n2', incarnation: 1 });
    t.c.nodeFailed('n1', 'exit');
    await t.flush();
    // It did not hang with every report dropped: it stopped, and said why.
    expect(t.fatal).toHaveLength(1);
    expect(t.fatal[0]).toMatchObject({ code: 'StorageCorrupt' });
    expect(t.c.stoppedOnError).toBe(true);
    // Its host starts a new one from storage, with the nodes still running: it asks them, and goes on.
    const again = setup(storage, 'cut', {}, t.sched);
    const started = again.c.start(['n1', 'n2'], { resume: true });
    await again.flush();
    expect(again.sent.filter(([, m]) => m.kind === 'prepare').map(([to]) => to)).toEqual(['n1', 'n2']);
    again.c.receive({ kind: 'hello', node: 'n1', incarnation: 2 });
    again.c.receive(prepared('n2', 2, [[1, 0, {}, false]], 0, 1));
    await again.flush();
    await started;
    expect(again.c.worldLine).toBe(2);
    await persist(inner, again.c, 'n2', 2, 1, 0, {});
    expect(again.c.cut.n2).toBe(1);
  });

  it('cheap cut: a node removed for good is forgotten only once a record without it is saved, and a restart never counts it again', async () => {
    const storage = new MemoryStorage();
    const t = setup(storage, 'cut', { cutKind: 'cheap' });
    await t.c.start(['n1', 'n2', 'n3']);
    for (const n of ['n1', 'n2', 'n3']) t.c.receive({ kind: 'hello', node: n, incarnation: 1 });
    t.c.addClient('client');
    for (const n of ['n1', 'n2', 'n3']) await persist(storage, t.c, n, 1, 1, 0, {});
    t.c.nodeFailed('n3', 'exit');
    await t.flush();
    expect(t.c.worldLine).toBe(2);
    for (const n of ['n1', 'n2']) for (const v of [2, 3]) await persist(storage, t.c, n, 2, v, v - 1, {});
    // The cheap cut is a minimum over the members: n3, down at 1, holds it there.
    expect(t.c.cut).toEqual({ n1: 1, n2: 1, n3: 1 });
    t.c.removeNode('n3');
    await t.flush();
    // Forgotten, and only then the cut rises; the record saved first says n3 is gone.
    expect(t.c.members.has('n3')).toBe(false);
    expect(t.c.cut).toMatchObject({ n1: 3, n2: 3 });
    const rec = await storage.loadCoordinator();
    expect(rec?.nodes).toEqual(['n1', 'n2']);
    expect(rec?.gone).toEqual(['n3']);
    // A coordinator restarted from that record, told of all three (as a host that lost track would),
    // leaves n3 out: its first world-line starts at or above the cut announced.
    t.c.stop();
    const u = setup(storage, 'cut', { cutKind: 'cheap' });
    await u.c.start(['n1', 'n2', 'n3']);
    expect(u.c.members.has('n3')).toBe(false);
    expect(u.c.cut.n1).toBeGreaterThanOrEqual(3);
    expect(u.c.cut.n2).toBeGreaterThanOrEqual(3);
  });
});
