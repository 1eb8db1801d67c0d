import type { NodeId } from '@dse/shared';
import { DseError } from '@dse/shared';

/** FNV-1a, for rendezvous hashing of keys to nodes. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The key's node: rendezvous hashing over `nodes` (adding a node moves few keys). */
export function rendezvousOwner(key: string, nodes: readonly NodeId[]): NodeId {
  let best: NodeId | null = null;
  let bestH = -1;
  for (const id of nodes) {
    const h = hash32(`${key}\u0000${id}`);
    if (h > bestH) {
      best = id;
      bestH = h;
    }
  }
  if (best === null) throw new DseError('Conflict', 'the cluster has no nodes');
  return best;
}
