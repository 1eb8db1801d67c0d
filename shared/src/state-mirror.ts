import type { InspectionEvent } from './events';
import type { Json, NodeId, Version } from './protocol';

/** One version's changes to a node's app state, as a `stateChanged` event tells them. */
export interface StateDelta {
  version: Version;
  set: Record<string, Json>;
  deleted: string[];
}

/**
 * A node's app state as the inspection stream tells it: the committed base (every change at or below
 * `committedVersion`) and the changes above it, oldest first, that a rollback may still discard.
 */
export interface NodeStateBase {
  committedVersion: Version;
  committed: Record<string, Json>;
  pending: StateDelta[];
}

/**
 * Follows every node's app state from the inspection events alone: `stateChanged` adds a change,
 * `rollback` discards the changes above the restored version, `cutAdvanced` and `worldLineChanged`
 * fold the changes the cut now covers into the committed base. The server keeps one over the events
 * that fell out of its history, so that a browser joining late gets the state its history starts from.
 */
export class StateMirror {
  private readonly nodes = new Map<NodeId, NodeStateBase>();

  /** At most this many uncommitted changes per node; older ones are folded into the base (a node whose cut never moves). */
  constructor(private readonly pendingMax = 1000) {}

  apply(e: InspectionEvent): void {
    switch (e.type) {
      case 'stateChanged': {
        const n = this.node(e.node);
        n.pending.push({ version: e.version, set: e.set, deleted: e.deleted });
        if (n.pending.length > this.pendingMax) applyDelta(n.committed, n.pending.shift()!);
        this.fold(n);
        return;
      }
      case 'rollback': {
        const n = this.node(e.node);
        n.pending = n.pending.filter((c) => c.version <= e.toVersion);
        return;
      }
      case 'cutAdvanced':
      case 'worldLineChanged':
        for (const [id, v] of Object.entries(e.cut)) {
          const n = this.node(id);
          n.committedVersion = Math.max(n.committedVersion, v);
          this.fold(n);
        }
        return;
      default:
        return;
    }
  }

  /** A deep copy of every node's state (safe to send or to keep applying events to the mirror). */
  states(): Record<NodeId, NodeStateBase> {
    const out: Record<NodeId, NodeStateBase> = {};
    for (const [id, n] of this.nodes) {
      out[id] = {
        committedVersion: n.committedVersion,
        committed: { ...n.committed },
        pending: n.pending.map((c) => ({ version: c.version, set: c.set, deleted: c.deleted })),
      };
    }
    return out;
  }

  /** A mirror that starts where this one is and then goes its own way. */
  clone(): StateMirror {
    const m = new StateMirror(this.pendingMax);
    for (const [id, s] of Object.entries(this.states())) m.nodes.set(id, s);
    return m;
  }

  /** The node's current state: the committed base with every pending change applied. */
  current(node: NodeId): Record<string, Json> {
    const n = this.nodes.get(node);
    if (n === undefined) return {};
    const s = { ...n.committed };
    for (const c of n.pending) applyDelta(s, c);
    return s;
  }

  private node(id: NodeId): NodeStateBase {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = { committedVersion: 0, committed: {}, pending: [] };
      this.nodes.set(id, n);
    }
    return n;
  }

  private fold(n: NodeStateBase): void {
    while (n.pending.length > 0 && n.pending[0]!.version <= n.committedVersion) applyDelta(n.committed, n.pending.shift()!);
  }
}

export function applyDelta(state: Record<string, Json>, c: StateDelta): void {
  for (const [k, v] of Object.entries(c.set)) state[k] = v;
  for (const k of c.deleted) delete state[k];
}
