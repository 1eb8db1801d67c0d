import type { InspectionEvent, Json, NodeId } from '@dse/shared';
import { VIEW_KEY, type MigrationMoves } from './placement';
import type { MigrationView, PlacementInfo } from './views';

type Event<T extends InspectionEvent['type']> = Extract<InspectionEvent, { type: T }>;

/** Event time after `handedOver` until a change's moves are fixed (a node reports its state when it closes a version). */
const MOVES_SETTLE_MS = 2000;
/** Membership changes kept. */
const MIGRATIONS_MAX = 10;

/**
 * Membership as the events tell it: the placement the server routes by, the changes seen (newest
 * last, a few kept), and per node its units just before its state took a newer placement view (what
 * moved in a change is measured from these against the units it holds later).
 */
export class MigrationLog {
  /** The placement the server routes by, when the snapshot or a `placementChanged` told it. */
  placement: PlacementInfo | null = null;
  /** Membership changes seen (newest last, a few kept); the last one runs while its phase is not `handedOver`. */
  readonly migrations: MigrationView[] = [];
  /** Per node: its units just before its state took placement version `version` (what moved is measured from these). */
  readonly unitsBeforeView = new Map<NodeId, { version: number; units: ReadonlySet<string> }>();

  /** The server's snapshot tells its placement (kept unless the events told a newer one). */
  loadPlacement(p: PlacementInfo | undefined): void {
    if (p !== undefined && (this.placement === null || p.version >= this.placement.version)) {
      this.placement = { version: p.version, members: [...p.members] };
    }
  }

  /**
   * The membership change running now (sent, not yet handed over), if any. One not heard of for two
   * minutes of event time (`now`) has given up (the server's membership gives up sooner) and no longer counts.
   */
  running(now: number): MigrationView | null {
    const m = this.migrations.at(-1);
    if (m === undefined || m.phase === 'handedOver') return null;
    const at = m.committedAt ?? m.sentAt;
    return at === null || now - at < 120_000 ? m : null;
  }

  /**
   * An event at time `t` came: the first one past the settle time fixes what moved in the last change
   * (`measure` tells it from the nodes' state now).
   */
  settle(t: number, measure: (version: number) => MigrationMoves | null): void {
    const last = this.migrations.at(-1);
    if (last !== undefined && last.moves === null && last.handedOverAt !== null && t - last.handedOverAt >= MOVES_SETTLE_MS) {
      last.moves = measure(last.version) ?? { version: last.version, gained: {}, lost: {}, moves: [] };
    }
  }

  /**
   * A node's state is about to take these changes: if they carry a newer placement view (`pl/view`),
   * keep its units just before (`unitsNow` tells them), to tell what moved in that change.
   */
  noteViewChange(node: NodeId, set: Readonly<Record<string, Json>>, unitsNow: () => ReadonlySet<string>): void {
    if (!(VIEW_KEY in set)) return;
    const v = set[VIEW_KEY];
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof v.v !== 'number') return;
    const known = this.unitsBeforeView.get(node);
    if (known !== undefined && known.version >= v.v) return;
    this.unitsBeforeView.set(node, { version: v.v, units: unitsNow() });
  }

  placementChanged(e: Event<'placementChanged'>): void {
    // Traces are checked only for type and time: a malformed one is skipped, not drawn.
    if (typeof e.version !== 'number' || !Array.isArray(e.members)) return;
    const members = e.members.filter((x): x is NodeId => typeof x === 'string');
    let m = this.migrations.findLast((x) => x.version === e.version);
    if (m === undefined) {
      const prev = this.placement;
      m = {
        version: e.version,
        change: typeof e.change === 'string' ? e.change : '',
        members,
        prevMembers: prev !== null && prev.version < e.version ? [...prev.members] : null,
        phase: e.phase,
        sentAt: null,
        committedAt: null,
        handedOverAt: null,
        moves: null,
      };
      this.migrations.push(m);
      if (this.migrations.length > MIGRATIONS_MAX) this.migrations.shift();
    }
    m.members = members;
    if (e.phase === 'sent') m.sentAt ??= e.t;
    else if (e.phase === 'committed') m.committedAt ??= e.t;
    else m.handedOverAt ??= e.t;
    // Phases only go forward (an event of an earlier phase never comes later, but a trace may be odd).
    const order = { sent: 0, committed: 1, handedOver: 2 } as const;
    if ((order[e.phase] ?? 0) >= (order[m.phase] ?? 0)) m.phase = e.phase;
    // The server routes by a version once it is committed (a change never committed never took effect).
    if (e.phase !== 'sent' && (this.placement === null || e.version >= this.placement.version)) this.placement = { version: e.version, members: [...members] };
  }
}
