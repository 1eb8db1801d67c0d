import type { Cut, CutKind, NodeId, Version } from '@dse/shared';
import type { PendingGraph } from './cut';

/**
 * The coordinator's cut, kept up to date one persisted report at a time (issue 20, item 2).
 *
 * `exactCut` and `cheapCut` (cut.ts) compute the cut from the whole graph: every report cost a walk of
 * every node's chain of uncommitted versions (and the exact cut's fixpoint, pass after pass), so the
 * cost of one report grew with N and with the length of the graph. This index gives the same cut (the
 * coordinator cross-checks it under `DSE_CHECK_CUT=1`), at a cost that grows with what the report can
 * change:
 *
 * - each node's chain (the persisted versions that follow its cut without a gap) is extended, not
 *   rebuilt, and each version's dependencies are filed once, under the node they wait for (`Waiters`);
 * - exact cut: after a fixpoint every chain version above the cut is blocked (it reaches, through its
 *   dependencies or the versions before it, a version not persisted). A report can unblock only the
 *   versions that reach the versions it adds to a chain: those candidates are found through the waiters,
 *   and the greatest fixpoint is computed over them alone (the others stay blocked: what they reach is
 *   still missing);
 * - cheap cut: the minimum of the chain tops is kept in a heap, and the nodes whose next version is at
 *   or below it in another: a report touches the nodes whose cut it advances.
 *
 * The coordinator calls `reset` whenever the graph, the cut or the members change other than by a
 * report (start, recovery, a node added or removed): those rebuild the index from the graph.
 */
export class CutIndex {
  private members = new Set<NodeId>();
  private cut = new Map<NodeId, Version>();
  private chains = new Map<NodeId, Chain>();
  private graph: PendingGraph = new Map();
  /** Cheap cut: the chain tops (lazily updated: a stale entry is dropped when it reaches the root). */
  private tops = new MinHeap<NodeId>();
  /** Cheap cut: each node's next version to commit (the first of its chain), likewise lazy. */
  private nexts = new MinHeap<NodeId>();

  constructor(private readonly kind: CutKind) {}

  /** Rebuilds from the graph (persisted versions above `cut`), for these members. */
  reset(members: Iterable<NodeId>, cut: Readonly<Cut>, graph: PendingGraph): void {
    this.members = new Set(members);
    this.graph = graph;
    this.cut = new Map(Object.entries(cut));
    this.chains = new Map();
    this.tops = new MinHeap();
    this.nexts = new MinHeap();
    for (const n of this.members) {
      const ch = this.chainOf(n);
      const pending = graph.get(n);
      if (pending !== undefined) for (const [v, p] of pending) if (v > this.cutOf(n)) ch.byPrev.set(p.prevVersion, v);
      this.extend(n);
      this.touched(n);
    }
    // Waiters last, once every chain is known: each version's dependencies above the cut.
    for (const n of this.members) {
      const pending = graph.get(n);
      if (pending === undefined) continue;
      for (const [v, p] of pending) if (v > this.cutOf(n)) this.fileDeps(n, v, p.deps);
    }
  }

  /**
   * Version `version` of `node` was just added to the graph (the coordinator set it there). Returns the
   * nodes whose cut advanced, with their new cut; the versions they committed are gone from the graph.
   */
  added(node: NodeId, version: Version): Map<NodeId, Version> {
    const none = new Map<NodeId, Version>();
    if (!this.members.has(node) || version <= this.cutOf(node)) return none;
    const p = this.graph.get(node)?.get(version);
    if (p === undefined) return none;
    const ch = this.chainOf(node);
    if (version > ch.top()) ch.byPrev.set(p.prevVersion, version);
    this.fileDeps(node, version, p.deps);
    const grown = this.extend(node);
    if (grown === undefined) return none;
    const advances = this.kind === 'exact' ? this.exactAdvances(node, grown) : this.cheapAdvances(node);
    for (const [n, v] of advances) this.commit(n, v);
    return advances;
  }

  // ------------------------------------------------------------------ exact cut

  /**
   * The exact cut's change after `node`'s chain grew from `grown` on. Phase 1 gathers the candidates: per
   * node, the lowest chain version that reaches one of the new versions (every later one reaches it too).
   * Phase 2 is the greatest fixpoint over them: start with every candidate node's whole chain, cut back
   * whatever depends on something outside, and follow each cut-back to the versions waiting on it.
   */
  private exactAdvances(node: NodeId, grown: Version): Map<NodeId, Version> {
    const candFrom = new Map<NodeId, Version>([[node, grown]]);
    const scannedAbove = new Map<NodeId, Version>();
    const work: NodeId[] = [node];
    while (work.length > 0) {
      const d = work.pop()!;
      const ch = this.chains.get(d)!;
      const lo = ch.prevOf(candFrom.get(d)!, this.cutOf(d));
      const hi = scannedAbove.get(d) ?? ch.top();
      if (lo >= hi) continue;
      scannedAbove.set(d, lo);
      // Versions needing d at a version in (lo, hi] now need only candidates (or what was there).
      ch.waiters.range(lo, hi, (m, v) => {
        if (!this.members.has(m) || v <= this.cutOf(m) || v > this.chainOf(m).top()) return;
        if (v < (candFrom.get(m) ?? Infinity)) {
          candFrom.set(m, v);
          work.push(m);
        }
      });
    }

    const tent = new Map<NodeId, Version>();
    const lowered: [NodeId, Version][] = [];
    const T = (d: NodeId): Version => tent.get(d) ?? this.cutOf(d);
    const cutBack = (m: NodeId, to: Version): void => {
      const old = tent.get(m)!;
      if (to >= old) return;
      tent.set(m, to);
      lowered.push([m, old]);
    };
    // A candidate region that does not start at the cut follows a version still blocked: it stays blocked
    // (the checks below see that before anything is taken as satisfied by it).
    for (const [m, from] of candFrom) tent.set(m, from === this.chains.get(m)!.first() ? this.chains.get(m)!.top() : this.cutOf(m));
    for (const m of candFrom.keys()) {
      if (T(m) === this.cutOf(m)) continue;
      const ch = this.chains.get(m)!;
      const pending = this.graph.get(m)!;
      for (const v of ch.versions()) {
        if (v > T(m)) break;
        const deps = pending.get(v)!.deps;
        let ok = true;
        for (const d in deps) if (d !== m && T(d) < deps[d]!) ok = false;
        if (!ok) {
          cutBack(m, ch.prevOf(v, this.cutOf(m)));
          break;
        }
      }
    }
    while (lowered.length > 0) {
      const [d, old] = lowered.pop()!;
      this.chainOf(d).waiters.range(T(d), old, (m, v) => {
        if (!candFrom.has(m) || v <= this.cutOf(m) || v > T(m)) return;
        cutBack(m, this.chains.get(m)!.prevOf(v, this.cutOf(m)));
      });
    }
    const out = new Map<NodeId, Version>();
    for (const [m, v] of tent) if (v > this.cutOf(m)) out.set(m, v);
    return out;
  }

  // ------------------------------------------------------------------ cheap cut

  /** The cheap cut's change: every chain version at or below the minimum of the chain tops. */
  private cheapAdvances(node: NodeId): Map<NodeId, Version> {
    this.touched(node);
    const out = new Map<NodeId, Version>();
    const min = this.tops.minWhere((n, top) => this.members.has(n) && this.chainOf(n).top() === top);
    if (min === undefined) return out;
    for (;;) {
      const next = this.nexts.popIf((n, v) => this.members.has(n) && this.chainOf(n).first() === v && !out.has(n), min);
      if (next === undefined) break;
      const ch = this.chains.get(next)!;
      let to = this.cutOf(next);
      for (const v of ch.versions()) {
        if (v > min) break;
        to = v;
      }
      out.set(next, to);
    }
    return out;
  }

  /** Files `node`'s chain top and next version in the cheap cut's heaps. */
  private touched(node: NodeId): void {
    if (this.kind !== 'cheap') return;
    const ch = this.chainOf(node);
    // One entry per value: a node that reports while it waits does not fill the heaps.
    if (ch.filedTop !== ch.top()) this.tops.push(node, (ch.filedTop = ch.top()));
    const first = ch.first();
    if (first !== undefined && ch.filedFirst !== first) this.nexts.push(node, (ch.filedFirst = first));
  }

  // ------------------------------------------------------------------ common

  private cutOf(n: NodeId): Version {
    return this.cut.get(n) ?? 0;
  }

  private chainOf(n: NodeId): Chain {
    let ch = this.chains.get(n);
    if (ch === undefined) this.chains.set(n, (ch = new Chain(() => this.cutOf(n))));
    return ch;
  }

  /** Files each dependency of `node`@`version` that is above the cut under the node it waits for. */
  private fileDeps(node: NodeId, version: Version, deps: Readonly<Record<NodeId, Version>>): void {
    for (const d in deps) if (d !== node && deps[d]! > this.cutOf(d)) this.chainOf(d).waiters.add(deps[d]!, node, version);
  }

  /** Extends `node`'s chain with the versions that now follow its top; returns the first added. */
  private extend(node: NodeId): Version | undefined {
    const ch = this.chainOf(node);
    let first: Version | undefined;
    for (let next = ch.byPrev.get(ch.top()); next !== undefined; next = ch.byPrev.get(ch.top())) {
      ch.byPrev.delete(ch.top());
      ch.push(next);
      first ??= next;
    }
    return first;
  }

  /** `node`'s cut advanced to `to`: its chain, graph and satisfied waiters drop what committed. */
  private commit(node: NodeId, to: Version): void {
    const ch = this.chains.get(node)!;
    const pending = this.graph.get(node);
    for (const v of ch.dropUpTo(to)) pending?.delete(v);
    this.cut.set(node, to);
    ch.waiters.dropUpTo(to);
    this.touched(node);
  }
}

/** One node's chain above its cut, the versions waiting to join it, and the versions waiting on it. */
class Chain {
  /** Persisted versions not yet on the chain, by the version before each. */
  readonly byPrev = new Map<Version, Version>();
  readonly waiters = new Waiters();
  /** Cheap cut: the top and first version last filed in the heaps. */
  filedTop: Version | undefined;
  filedFirst: Version | undefined;
  private items: Version[] = [];
  private start = 0;

  constructor(private readonly cut: () => Version) {}

  top(): Version {
    return this.items.length > this.start ? this.items[this.items.length - 1]! : this.cut();
  }

  first(): Version | undefined {
    return this.items.length > this.start ? this.items[this.start] : undefined;
  }

  push(v: Version): void {
    this.items.push(v);
  }

  *versions(): Generator<Version> {
    for (let i = this.start; i < this.items.length; i++) yield this.items[i]!;
  }

  /** The chain version before `v` (`cut` if `v` is the first); versions ascend along a chain. */
  prevOf(v: Version, cut: Version): Version {
    const i = lowerBound(this.items, v, this.start);
    return i > this.start ? this.items[i - 1]! : cut;
  }

  /** Removes the versions at or below `to`; returns them. */
  dropUpTo(to: Version): Version[] {
    const end = upperBound(this.items, to, this.start);
    const out = this.items.slice(this.start, end);
    this.start = end;
    // Compact now and then: the array does not grow with everything ever committed.
    if (this.start > 64 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return out;
  }
}

/** Versions of other nodes that need this node to reach a version `x`, by `x` ascending. */
class Waiters {
  private keys: Version[] = [];
  private start = 0;
  private byX = new Map<Version, [NodeId, Version][]>();

  add(x: Version, node: NodeId, version: Version): void {
    let l = this.byX.get(x);
    if (l === undefined) {
      this.byX.set(x, (l = []));
      // Dependencies mostly name recent versions: appending is the common case.
      if (this.keys.length === this.start || this.keys[this.keys.length - 1]! < x) this.keys.push(x);
      else this.keys.splice(lowerBound(this.keys, x, this.start), 0, x);
    }
    l.push([node, version]);
  }

  /** Calls `fn` for each waiter that needs a version in (lo, hi]. */
  range(lo: Version, hi: Version, fn: (node: NodeId, version: Version) => void): void {
    for (let i = upperBound(this.keys, lo, this.start); i < this.keys.length && this.keys[i]! <= hi; i++) {
      for (const [n, v] of this.byX.get(this.keys[i]!)!) fn(n, v);
    }
  }

  /** Forgets the waiters on versions at or below `to` (satisfied: committed). */
  dropUpTo(to: Version): void {
    const end = upperBound(this.keys, to, this.start);
    for (let i = this.start; i < end; i++) this.byX.delete(this.keys[i]!);
    this.start = end;
    if (this.start > 64 && this.start * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.start);
      this.start = 0;
    }
  }
}

/** A binary min-heap of (item, key) with lazy deletion: the caller says which entries are still current. */
class MinHeap<T> {
  private items: T[] = [];
  private keys: number[] = [];

  push(item: T, key: number): void {
    this.items.push(item);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.keys[p]! <= this.keys[i]!) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** The smallest current key (stale entries at the root are dropped). */
  minWhere(current: (item: T, key: number) => boolean): number | undefined {
    while (this.keys.length > 0 && !current(this.items[0]!, this.keys[0]!)) this.pop();
    return this.keys[0];
  }

  /** Pops and returns the item of the smallest current entry if its key is at most `max`. */
  popIf(current: (item: T, key: number) => boolean, max: number): T | undefined {
    while (this.keys.length > 0 && !current(this.items[0]!, this.keys[0]!)) this.pop();
    if (this.keys.length === 0 || this.keys[0]! > max) return undefined;
    const item = this.items[0]!;
    this.pop();
    return item;
  }

  private pop(): void {
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.items.pop();
    this.keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.keys.length && this.keys[l]! < this.keys[m]!) m = l;
      if (r < this.keys.length && this.keys[r]! < this.keys[m]!) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
    [this.keys[a], this.keys[b]] = [this.keys[b]!, this.keys[a]!];
  }
}

/** The first index at or after `from` whose value is >= `x` (the array ascends). */
function lowerBound(a: readonly number[], x: number, from: number): number {
  let lo = from;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index at or after `from` whose value is > `x`. */
function upperBound(a: readonly number[], x: number, from: number): number {
  let lo = from;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
