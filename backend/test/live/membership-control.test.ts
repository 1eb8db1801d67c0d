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

function fake(answer: (node: NodeId, payload: { pl?: string }) => Json | Error): Fake {
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
    status: (id) => (id === 'n3' ? 'down' : 'up'),
    retire: () => Promise.resolve({ state: {}, replies: [], sent: [] }),
    log: () => undefined,
    emit: () => undefined,
    now: () => 0,
  };
  return { host, sent };
}

const status = (node: NodeId, version: number): Json => ({
  node,
  version,
  members: ['n1', 'n2', 'n3'],
  waitingFor: [],
  pinned: [],
  awaiting: [],
  held: 0,
  units: {},
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
});
