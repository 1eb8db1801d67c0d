import type { Json, NodeId } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/core/session';
import { servicesApp } from '../../src/services';
import type { PlacementView } from '../../src/services/common';
import { KvClient } from '../../src/services/kv';
import type { MembershipStatus } from '../../src/services/membership';
import { withMembership } from '../../src/services/membership';
import { ownerOf, unitOfStateKey } from '../../src/services/placement';
import { WalClient } from '../../src/services/wal';
import { travelReservation, WorkflowClient } from '../../src/services/workflow';
import { TestCluster } from './cluster';

const FOUNDERS = ['n1', 'n2', 'n3'];

async function setup(nodes = 4) {
  const c = await TestCluster.start({ nodes, app: withMembership(servicesApp, { founders: FOUNDERS }) });
  const view: PlacementView = { version: 0, members: [...FOUNDERS] };
  return { c, view, kv: new KvClient(c.session(), { nodes: FOUNDERS, placement: view }) };
}

/** The control plane's part of a change: the view to every node named, then every answer committed. */
async function change(
  c: TestCluster,
  s: Session,
  v: number,
  members: NodeId[],
  to: NodeId[],
  inherit?: { from: NodeId; state: Record<string, Json> },
): Promise<void> {
  const answers = [];
  for (const n of to) answers.push(await c.run(s.request(n, { pl: 'view', v, members, ...(inherit !== undefined ? { inherit } : {}) })));
  for (const a of answers) expect(a.result).toMatchObject({ ok: true });
  for (const a of answers) await c.run(a.commit());
}

async function status(c: TestCluster, s: Session, n: NodeId): Promise<MembershipStatus> {
  return (await c.run(s.request(n, { pl: 'status' }))).result as unknown as MembershipStatus;
}

/** Where each unit's state is, over all nodes: a unit on two nodes, or on a node that does not own it, is a failure. */
function placementOfState(c: TestCluster, nodes: NodeId[]): Map<string, NodeId[]> {
  const where = new Map<string, NodeId[]>();
  for (const n of nodes) {
    for (const [k, v] of c.state(n)) {
      const unit = unitOfStateKey(k, v);
      if (unit === null) continue;
      const list = where.get(unit) ?? [];
      if (!list.includes(n)) list.push(n);
      where.set(unit, list);
    }
  }
  return where;
}

async function writeKeys(c: TestCluster, kv: KvClient, keys: string[]): Promise<void> {
  let last = null;
  for (const k of keys) last = await c.run(kv.put(k, `v-${k}`));
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- the rule misreads this evolving `let` (tsc needs the assertion)
  await c.run(last!.commit());
}

async function readAll(c: TestCluster, kv: KvClient, keys: string[]): Promise<void> {
  for (const k of keys) expect((await c.run(kv.get(k))).value, k).toEqual({ value: `v-${k}`, n: 1 });
}

const KEYS = Array.from({ length: 40 }, (_, i) => `key${i}`);

describe('membership and migration through the runtime', () => {
  it('adding a node moves the keys it wins, with their values, and nothing else', async () => {
    const { c, view, kv } = await setup();
    await writeKeys(c, kv, KEYS);
    const control = c.session();
    await change(c, control, 1, ['n1', 'n2', 'n3', 'n4'], ['n1', 'n2', 'n3', 'n4']);
    await c.advance(50);
    // A client still routing by version 0 is sent to the owners (WrongOwner) and learns the new members.
    await readAll(c, kv, KEYS);
    expect(view).toEqual({ version: 1, members: ['n1', 'n2', 'n3', 'n4'] });
    const moved = KEYS.filter((k) => ownerOf(`kv:${k}`, ['n1', 'n2', 'n3', 'n4']) === 'n4');
    expect(moved.length).toBeGreaterThan(3);
    for (const k of KEYS) {
      const owner = ownerOf(`kv:${k}`, ['n1', 'n2', 'n3', 'n4']);
      expect(owner === 'n4').toBe(moved.includes(k));
      expect(c.state(owner).has(`kv/${k}`)).toBe(true);
    }
    for (const [unit, nodes] of placementOfState(c, c.nodeIds)) expect(nodes, unit).toEqual([ownerOf(unit, ['n1', 'n2', 'n3', 'n4'])]);
    for (const n of c.nodeIds) expect((await status(c, control, n)).waitingFor).toEqual([]);
    expect(c.sthreadErrors()).toEqual([]);
    // Each hand-off is named in the inspection stream (the playground labels its arrow), with what it carried.
    // Every old member sends one to every other member (an empty one says "nothing more from me").
    const handoffs = c.events.flatMap((e) => (e.type === 'messageSent' && e.label?.startsWith('hand-off v1') === true && !e.resend ? [e] : []));
    expect(handoffs).toHaveLength(9);
    const units = (label: string | undefined): number => Number(/: (\d+) units?/.exec(label ?? '')?.[1]);
    expect(new Set(handoffs.filter((e) => units(e.label) > 0).map((e) => e.to))).toEqual(new Set(['n4']));
    expect(handoffs.reduce((sum, e) => sum + units(e.label), 0)).toBe(moved.length);
  });

  it('a node that is not the owner answers WrongOwner, naming the owner, and changes nothing', async () => {
    const { c } = await setup();
    const s = c.session();
    const owner = ownerOf('kv:x', FOUNDERS);
    const other = FOUNDERS.find((n) => n !== owner)!;
    const r = await c.run(s.request(other, { svc: 'kv', op: 'put', key: 'x', value: 1 }));
    expect(r.result).toMatchObject({ error: { code: 'WrongOwner', owner, version: 0 } });
    expect(c.state(other).has('kv/x')).toBe(false);
    // n4 is not a member yet: it owns nothing.
    const r4 = await c.run(s.request('n4', { svc: 'kv', op: 'get', key: 'x' }));
    expect(r4.result).toMatchObject({ error: { code: 'WrongOwner', owner } });
  });

  it('refuses a change that does not follow its version, or is malformed, and keeps its view', async () => {
    const { c } = await setup();
    const s = c.session();
    const skip = await c.run(s.request('n1', { pl: 'view', v: 2, members: ['n1'] }));
    expect(skip.result).toMatchObject({ error: { code: 'Conflict' } });
    const bad = await c.run(s.request('n1', { pl: 'view', v: 1, members: [] }));
    expect(bad.result).toMatchObject({ error: { code: 'BadRequest' } });
    expect((await status(c, s, 'n1')).version).toBe(0);
  });

  it('a request for a key the node gains waits for the hand-off, then sees the value', async () => {
    const { c, kv } = await setup();
    await writeKeys(c, kv, KEYS);
    const four = ['n1', 'n2', 'n3', 'n4'];
    const k = KEYS.find((key) => ownerOf(`kv:${key}`, four) === 'n4')!;
    const oldOwner = ownerOf(`kv:${k}`, FOUNDERS);
    const control = c.session();
    // n4 hears of the change first: it owns k now, but its value is still at the old owner.
    await c.run(control.request('n4', { pl: 'view', v: 1, members: four }));
    const reader = c.session();
    const pending = reader.request('n4', { svc: 'kv', op: 'get', key: k });
    let answered = false;
    void pending.then(() => (answered = true));
    await c.advance(100);
    expect(answered).toBe(false);
    expect((await status(c, control, 'n4')).held).toBe(1);
    for (const n of FOUNDERS) await c.run(control.request(n, { pl: 'view', v: 1, members: four }));
    const r = await c.run(pending);
    expect(r.result).toEqual({ value: `v-${k}`, n: 1 });
    await c.run(r.commit());
    expect(c.state(oldOwner).has(`kv/${k}`)).toBe(false);
  });

  it('removing a live node drains it: its keys go to the others, and it owns nothing', async () => {
    const { c, kv } = await setup(3);
    await writeKeys(c, kv, KEYS);
    const control = c.session();
    await change(c, control, 1, ['n1', 'n3'], ['n1', 'n2', 'n3']);
    await c.advance(50);
    for (const [k] of c.state('n2')) expect(unitOfStateKey(k, null), k).toBeNull();
    await readAll(c, kv, KEYS);
    expect((await status(c, control, 'n2')).units).toEqual({});
  });

  it('removing a node that is down: its committed state, read from storage, is taken over', async () => {
    const { c, kv } = await setup(3);
    await writeKeys(c, kv, KEYS);
    await c.advance(50);
    void kv;
    const cutV = c.coordinator.cut.n2!;
    c.crash('n2');
    await c.advance(100);
    const cp = await c.storage.loadCheckpoint('n2', cutV);
    const state: Record<string, Json> = {};
    for (const [k, v] of cp!.state) if (k.startsWith('a:')) state[k.slice(2)] = v;
    const n2Keys = KEYS.filter((k) => ownerOf(`kv:${k}`, FOUNDERS) === 'n2');
    expect(n2Keys.length).toBeGreaterThan(3);
    for (const k of n2Keys) expect(state[`kv/${k}`]).toBeDefined();
    const control = c.session();
    await change(c, control, 1, ['n1', 'n3'], ['n1', 'n3'], { from: 'n2', state });
    // A client that routes by the new members (one that asked n2 would wait for it: it is down).
    await readAll(c, new KvClient(c.session(), { nodes: ['n1', 'n3'] }), KEYS);
    for (const k of n2Keys) expect(c.state(ownerOf(`kv:${k}`, ['n1', 'n3'])).get(`kv/${k}`)).toMatchObject({ x: `v-${k}` });
  });

  it('a failure in the middle of a hand-off rolls both sides back together; sent again, nothing is lost or doubled', async () => {
    const { c, kv } = await setup();
    await writeKeys(c, kv, KEYS);
    await c.advance(50);
    const four = ['n1', 'n2', 'n3', 'n4'];
    const victim = FOUNDERS.find((n) => KEYS.some((k) => ownerOf(`kv:${k}`, FOUNDERS) === n && ownerOf(`kv:${k}`, four) === 'n4'))!;
    const control = c.session();
    const first = four.map((n) => control.request(n, { pl: 'view', v: 1, members: four }));
    for (const p of first) p.catch(() => undefined);
    await c.advance(3);
    // The victim dies before its version with the hand-off is persisted: that version is lost, and so is
    // everything that depended on it (the install on n4).
    c.crash(victim);
    const outcomes = await Promise.all(
      first.map((p) =>
        c
          .run(p)
          .then((a) => c.run(a.commit()))
          .then(
            () => 'committed',
            (e: unknown) => (isDseError(e) ? e.code : String(e)),
          ),
      ),
    );
    expect(outcomes).toContain('RolledBack');
    c.restart(victim);
    await c.advance(200);
    // The control plane resumes its session and sends the change again: a node that kept it says so.
    control.resume();
    await change(c, control, 1, four, four);
    await c.advance(100);
    const fresh = new KvClient(c.session(), { nodes: four });
    await readAll(c, fresh, KEYS);
    for (const [unit, nodes] of placementOfState(c, four)) expect(nodes, unit).toEqual([ownerOf(unit, four)]);
  });

  it('a log moves whole, with its entries and length; a running workflow stays until it is done, then moves', async () => {
    const { c, view } = await setup();
    const s = c.session();
    const wal = new WalClient(s, { nodes: FOUNDERS, placement: view });
    const four = ['n1', 'n2', 'n3', 'n4'];
    const log = Array.from({ length: 50 }, (_, i) => `log${i}`).find((l) => ownerOf(`wal:${l}`, FOUNDERS) !== ownerOf(`wal:${l}`, four))!;
    for (let i = 0; i < 5; i++) await c.run(wal.append(log, `e${i}`));
    // A workflow whose orchestrator unit moves; its step waits on a slow target while the change runs.
    const wf = new WorkflowClient(s, { nodes: FOUNDERS, placement: view });
    const id = Array.from({ length: 50 }, (_, i) => `w${i}`).find((w) => ownerOf(`wf:${w}`, FOUNDERS) !== ownerOf(`wf:${w}`, four))!;
    const running = wf.run(id, travelReservation(id, [{ kind: 'flight', item: 'LH1', capacity: 5 }], FOUNDERS));
    const control = c.session();
    await change(c, control, 1, four, four);
    const out = await c.run(running);
    expect(out.value.status).toBe('completed');
    await c.run(out.commit());
    await c.advance(100);
    const wal2 = new WalClient(c.session(), { nodes: four });
    expect((await c.run(wal2.read(log))).value.entries.map((e) => e.data)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect((await c.run(wal2.append(log, 'e5'))).value.pos).toBe(5);
    const st = await c.run(new WorkflowClient(c.session(), { nodes: four }).status(id));
    expect(st.value.phase).toBe('done');
    for (const [unit, nodes] of placementOfState(c, four)) expect(nodes, unit).toEqual([ownerOf(unit, four)]);
    for (const n of four) expect((await status(c, control, n)).pinned).toEqual([]);
    expect(c.sthreadErrors()).toEqual([]);
  });
});
