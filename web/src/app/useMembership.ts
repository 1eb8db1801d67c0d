import { useCallback, useState } from 'react';
import type { NodeId } from '@dse/shared';
import type { ModelStore } from '../live/store';
import type { LiveFeed } from './useLiveFeed';
import { commandErrorText } from './useLiveFeed';
import type { Notify } from './useNotices';

export interface MembershipOp {
  /** The node being removed (null while adding one). */
  node: NodeId | null;
  text: string;
}

/**
 * Adding and removing nodes. Membership changes take seconds (a drain hands every unit over first):
 * the running one is told while it runs, then how it went.
 */
export function useMembership(
  store: ModelStore,
  feed: Pick<LiveFeed, 'connRef' | 'setBusy'>,
  notify: Notify,
): { op: MembershipOp | null; addNode(): void; removeNode(n: NodeId): void } {
  const [op, setOp] = useState<MembershipOp | null>(null);
  const { connRef, setBusy } = feed;
  const membership = useCallback(
    async (c: { type: 'addNode' } | { type: 'removeNode'; node: NodeId }, running: string, what: string): Promise<void> => {
      const lc = connRef.current;
      if (lc === null) return;
      setBusy(true);
      setOp({ node: c.type === 'removeNode' ? c.node : null, text: running });
      try {
        const r = c.type === 'addNode' ? await lc.command<'addNode'>(c, 120_000) : await lc.command<'removeNode'>(c, 120_000);
        const how =
          r.how === 'joined'
            ? `${r.node} joined`
            : r.how === 'drained'
              ? `${r.node} drained (its units handed over), then stopped`
              : `${r.node} restored (its committed state taken over from storage)`;
        notify('info', `${how}: placement v${r.version}, members ${r.members.join(', ')}`);
      } catch (e) {
        notify('error', `${what} failed — ${commandErrorText(e)}`);
      } finally {
        setOp(null);
        setBusy(false);
      }
    },
    [notify, connRef, setBusy],
  );
  const removeNode = useCallback(
    (n: NodeId) =>
      void membership(
        { type: 'removeNode', node: n },
        store.model.nodes.get(n)?.status === 'down' ? `restoring ${n}’s committed state on the others…` : `draining ${n}…`,
        `remove ${n}`,
      ),
    [membership, store],
  );
  const addNode = useCallback(() => void membership({ type: 'addNode' }, 'adding a node…', 'add node'), [membership]);
  return { op, addNode, removeNode };
}
