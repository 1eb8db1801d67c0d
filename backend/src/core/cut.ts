import type { Cut, Deps, NodeId, Version } from '@dse/shared';

/** A persisted, not yet committed version, as the coordinator's precedence graph holds it. */
export interface PendingVersion {
  prevVersion: Version;
  deps: Deps;
}

export type PendingGraph = Map<NodeId, Map<Version, PendingVersion>>;

/**
 * Per node, the persisted versions that follow the cut without a gap: each one's `prevVersion` is the
 * one before it. A node commits strictly in order, so nothing past a gap can join the cut.
 */
function chains(nodes: readonly NodeId[], cut: Readonly<Cut>, graph: PendingGraph): Map<NodeId, Version[]> {
  const out = new Map<NodeId, Version[]>();
  for (const n of nodes) {
    const pending = graph.get(n);
    const chain: Version[] = [];
    if (pending !== undefined && pending.size > 0) {
      const byPrev = new Map<Version, Version>();
      for (const [v, p] of pending) byPrev.set(p.prevVersion, v);
      let tail = cut[n] ?? 0;
      for (let next = byPrev.get(tail); next !== undefined; next = byPrev.get(tail)) {
        chain.push(next);
        tail = next;
      }
    }
    out.set(n, chain);
  }
  return out;
}

/**
 * The exact cut: the largest set of persisted versions, a prefix per node, closed under dependencies
 * (every dependency of a member is in the cut or joins with it). A greatest fixpoint: start from
 * every persisted chain and cut back whatever depends on something outside.
 */
export function exactCut(nodes: readonly NodeId[], cut: Readonly<Cut>, graph: PendingGraph): Cut {
  const ch = chains(nodes, cut, graph);
  // Nodes of the cut that are not members (removed ones) keep their committed versions, frozen.
  const tentative: Cut = { ...cut };
  for (const n of nodes) {
    const c = ch.get(n)!;
    tentative[n] = c.length > 0 ? c[c.length - 1]! : (cut[n] ?? 0);
  }
  for (let changed = true; changed;) {
    changed = false;
    for (const n of nodes) {
      const c = ch.get(n)!;
      const pending = graph.get(n);
      for (let i = 0; i < c.length; i++) {
        const deps = pending!.get(c[i]!)!.deps;
        let ok = true;
        for (const d in deps) {
          if (d === n) continue;
          if ((tentative[d] ?? 0) < deps[d]!) {
            ok = false;
            break;
          }
        }
        if (!ok) {
          c.length = i;
          tentative[n] = i > 0 ? c[i - 1]! : (cut[n] ?? 0);
          changed = true;
          break;
        }
      }
    }
  }
  return tentative;
}

/**
 * The cheap cut: every version no higher than the minimum, over all nodes, of their highest persisted
 * version. Valid only because the commit-ordering rule keeps every dependency pointing at an equal or
 * lower version, and every node persists in order.
 */
export function cheapCut(nodes: readonly NodeId[], cut: Readonly<Cut>, graph: PendingGraph): Cut {
  const ch = chains(nodes, cut, graph);
  let m = Infinity;
  for (const n of nodes) {
    const c = ch.get(n)!;
    const top = c.length > 0 ? c[c.length - 1]! : (cut[n] ?? 0);
    if (top < m) m = top;
  }
  const out: Cut = { ...cut };
  for (const n of nodes) {
    let v = cut[n] ?? 0;
    for (const x of ch.get(n)!) if (x <= m) v = x;
    out[n] = v;
  }
  return out;
}
