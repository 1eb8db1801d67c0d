import type { Json, NodeId } from '@dse/shared';
import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { Session, SpeculativeResult } from '../../src/core/session';
import type { MembershipHost } from '../../src/live/membership';
import { MembershipControl } from '../../src/live/membership';

/**
 * The control plane never computes a change from a placement it could not read (a server just restarted
 * knows none until the nodes tell it): a chaos run once "removed" a down node as placement version 1
 * while the nodes were at 20, they took it for a change applied already, and its units were lost.
 */

interface Fake {
  host: MembershipHost;
  sent: { node: NodeId; payload: Json }[];
}

function fake(answer: (node: NodeId, payload: { pl?: string }) => Json | Error, down: readonly NodeId[] = ['n3']): Fake {
  const sent: Fake['sent'] = [];
  const result = (r: Json): SpeculativeResult => ({
    session: 's',
    seq: 1,
    result: r,
    deps: {},
    worldLine: 1,
    commit: () => Promise.resolve(r),
    whenCommitted: () => Promise.resolve(r),
  });
  const session = {
    rolledBackError: null,
    resume: () => undefined,
    request: (node: NodeId, payload: Json): Promise<SpeculativeResult> => {
      sent.push({ node, payload });
      const a = answer(node, payload as { pl?: string });
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(result(a));
    },
  } as unknown as Session;
  const host: MembershipHost = {
    session: () => session,
    nodeIds: () => ['n1', 'n2', 'n3'],
    status: (id) => (down.includes(id) ? 'down' : 'up'),
    retire: () => Promise.resolve({ state: {}, replies: [], sent: [], applied: {} }),
    readRetired: (id) => Promise.resolve({ state: { [`kv/left-by-${id}`]: { x: 1 } }, replies: [], sent: [], applied: {} }),
    log: () => undefined,
    emit: () => undefined,
    now: () => 0,
  };
  return { host, sent };
}

const status = (node: NodeId, version: number, more: Record<string, Json> = {}): Json => ({
  node,
  version,
  members: ['n1', 'n2', 'n3'],
  prev: null,
  waitingFor: [],
  gone: [],
  pinned: [],
  awaiting: [],
  held: 0,
  units: {},
  ...more,
});

describe('membership control after a server restart', () => {
  it('refuses a change while a node does not say which placement it holds, and sends nothing', async () => {
    const f = fake((node, p) => (p.pl === 'status' && node === 'n2' ? new DseError('Timeout', 'no answer') : status(node, 20)));
    const c = new MembershipControl(f.host, ['n1', 'n2', 'n3'], { timeoutMs: 2000, waitMs: 100 });
    await expect(c.leave('n3')).rejects.toMatchObject({ code: 'Timeout', message: expect.stringContaining('could not be read from n2') as string });
    expect(f.sent.filter((s) => (s.payload as { pl?: string }).pl === 'view')).toEqual([]);
  });

  it('a change the nodes are past already is refused, not taken for done', async () => {
    // The nodes say version 0 when asked (a stale answer), but hold 20 when the change comes.
    const f = fake((node, p) => (p.pl === 'status' ? status(node, 0) : { ok: true, version: 20, already: true }));
    const c = new MembershipControl(f.host, ['n1', 'n2', 'n3'], { timeoutMs: 2000, waitMs: 100 });
    await expect(c.leave('n3')).rejects.toMatchObject({ code: 'Conflict', message: expect.stringContaining('at version 20 already') as string });
    expect(c.view.version).toBe(0);
  });

  it('a change the server before did not finish is finished first: the node behind gets the same change, with what the removed node left', async () => {
    // Version 5 removed n4 (down; its state inherited). n1 and n2 applied it; n3 did not: the server stopped.
    const at5 = { members: ['n1', 'n2', 'n3'], prev: ['n1', 'n2', 'n3', 'n4'], gone: ['n4'] };
    const views: Record<string, number> = { n1: 5, n2: 5, n3: 4 };
    const f = fake((node, p) => {
      if (p.pl === 'status')
        return views[node] === 5 ? status(node, 5, at5) : status(node, views[node]!, { members: ['n1', 'n2', 'n3', 'n4'], prev: ['n1', 'n2', 'n3', 'n4'] });
      const v = (p as { v: number }).v;
      if (v !== views[node]! + 1) return { ok: true, version: views[node]!, already: true };
      views[node] = v;
      return { ok: true, version: v };
    }, []);
    const c = new MembershipControl(f.host, ['n1', 'n2', 'n3', 'n4'], { timeoutMs: 5000, waitMs: 100 });
    await c.exclusive('read', () => c.refresh(true));
    const views_ = f.sent.filter((s) => (s.payload as { pl?: string }).pl === 'view');
    expect(views_).toEqual([
      {
        node: 'n3',
        payload: {
          pl: 'view',
          v: 5,
          members: ['n1', 'n2', 'n3'],
          prev: ['n1', 'n2', 'n3', 'n4'],
          inherit: { from: 'n4', state: { 'kv/left-by-n4': { x: 1 } }, replies: [], sent: [], applied: {} },
        },
      },
    ]);
    expect(views).toEqual({ n1: 5, n2: 5, n3: 5 });
    expect(c.view).toMatchObject({ version: 5, members: ['n1', 'n2', 'n3'] });
    // Nothing behind any more: nothing sent again.
    await c.exclusive('read', () => c.refresh(true));
    expect(f.sent.filter((s) => (s.payload as { pl?: string }).pl === 'view')).toHaveLength(1);
  });

  it('a node added but never told is sent its join, without what older changes inherited (it had no part in them)', async () => {
    // Version 6 added n4; n4 never heard of it. Version 5 had removed n9 (down, inherited by n1-n3).
    const at6 = { members: ['n1', 'n2', 'n3', 'n4'], prev: ['n1', 'n2', 'n3'], gone: ['n9'] };
    const views: Record<string, number> = { n1: 6, n2: 6, n3: 6, n4: 0 };
    const f = fake((node, p) => {
      if (p.pl === 'status') return views[node] === 6 ? status(node, 6, at6) : status(node, 0, { members: ['n1', 'n2', 'n3', 'n9'] });
      views[node] = (p as { v: number }).v;
      return { ok: true, version: views[node] };
    }, []);
    f.host.nodeIds = () => ['n1', 'n2', 'n3', 'n4'];
    const c = new MembershipControl(f.host, ['n1', 'n2', 'n3', 'n9'], { timeoutMs: 5000, waitMs: 100 });
    await c.exclusive('read', () => c.refresh(true));
    expect(f.sent.filter((s) => (s.payload as { pl?: string }).pl === 'view')).toEqual([
      { node: 'n4', payload: { pl: 'view', v: 6, members: ['n1', 'n2', 'n3', 'n4'], prev: ['n1', 'n2', 'n3'] } },
    ]);
  });
});
