import type { Json, NodeId } from '@dse/shared';
import { MEMBERSHIP_PREFIX, unitOfStateKey } from '@dse/shared';
import type { PlaygroundModel } from './model';

/**
 * Placement as the page sees it: the units of service state each node holds (from its mirrored state,
 * by `unitOfStateKey`), the view each node holds (`pl/view`), and which units moved between nodes in a
 * membership change (a node's units just before it took the change, against its units now).
 */

/** The services a unit can belong to, by the prefix of its name (`kv:…`, `wal:…`, …). */
export const UNIT_SERVICES = ['kv', 'wal', 'broker', 'wf', 'travel', 'app'] as const;
export type UnitService = (typeof UNIT_SERVICES)[number];

/** The key of a node's placement view in its state: `{v, m, prev, wait}`. */
export const VIEW_KEY = `${MEMBERSHIP_PREFIX}view`;

export interface NodePlacementView {
  version: number;
  members: NodeId[];
  /** Old members this node still waits for a hand-off from. */
  wait: NodeId[];
}

const isObject = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);
const ids = (v: Json | undefined): NodeId[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The placement view a node's state holds (`pl/view`), or null when it has none (it never saw a change). */
export function nodePlacementView(state: Readonly<Record<string, Json>>): NodePlacementView | null {
  const v = state[VIEW_KEY];
  if (!isObject(v) || typeof v.v !== 'number') return null;
  return { version: v.v, members: ids(v.m), wait: ids(v.wait) };
}

/** The units a state holds (each unit once, whatever number of keys it has). */
export function unitsOfState(state: Readonly<Record<string, Json>>): Set<string> {
  const out = new Set<string>();
  for (const k in state) {
    const u = unitOfStateKey(k, state[k]);
    if (u !== null) out.add(u);
  }
  return out;
}

export function serviceOfUnit(unit: string): UnitService | null {
  const i = unit.indexOf(':');
  const s = i < 0 ? unit : unit.slice(0, i);
  return (UNIT_SERVICES as readonly string[]).includes(s) ? (s as UnitService) : null;
}

export interface UnitCounts {
  total: number;
  byService: Record<UnitService, number>;
}

export function countUnits(units: Iterable<string>): UnitCounts {
  const byService = Object.fromEntries(UNIT_SERVICES.map((s) => [s, 0])) as Record<UnitService, number>;
  let total = 0;
  for (const u of units) {
    const s = serviceOfUnit(u);
    if (s === null) continue;
    byService[s]++;
    total++;
  }
  return { total, byService };
}

/** "kv 3 · app 12": the services with units, in their fixed order. */
export function formatUnitCounts(c: UnitCounts): string {
  const parts = UNIT_SERVICES.filter((s) => c.byService[s] > 0).map((s) => `${s} ${c.byService[s]}`);
  return parts.length === 0 ? 'none' : parts.join(' · ');
}

export interface UnitMove {
  from: NodeId | null;
  to: NodeId;
  units: number;
}

export interface MigrationMoves {
  version: number;
  /** Units each node holds now that it did not hold just before it took version `version`. */
  gained: Record<NodeId, number>;
  /** Units each node held just before it took version `version` and holds no longer. */
  lost: Record<NodeId, number>;
  /** The gained units by where they were before (null: no node's known state held them before: new since, or unknown to this page). */
  moves: UnitMove[];
}

/**
 * Which units moved in placement version `version`, as the nodes' mirrored state tells it: a node's
 * units just before its state took `pl/view` version `version` (recorded by the model), against its
 * units now. A node removed while down never takes the change: its last known state stands for "before".
 * Null when no node's state is known to have taken that version.
 */
export function migrationMoves(model: PlaygroundModel, version: number): MigrationMoves | null {
  const before = new Map<NodeId, ReadonlySet<string>>();
  for (const [node, b] of model.unitsBeforeView) if (b.version === version) before.set(node, b.units);
  if (before.size === 0) return null;
  const now = new Map<NodeId, Set<string>>();
  for (const node of model.nodes.keys()) now.set(node, unitsOfState(model.nodeState(node)));
  const gained: Record<NodeId, number> = {};
  const lost: Record<NodeId, number> = {};
  const moves = new Map<string, UnitMove>();
  for (const [node, was] of before) {
    const has = now.get(node) ?? new Set<string>();
    let g = 0;
    for (const u of has) {
      if (was.has(u)) continue;
      g++;
      let from: NodeId | null = null;
      for (const [other, otherWas] of before) {
        if (other !== node && otherWas.has(u)) {
          from = other;
          break;
        }
      }
      if (from === null) {
        // A node that did not take the change (removed while down): what it last held.
        for (const [other, otherHas] of now) {
          if (other !== node && !before.has(other) && otherHas.has(u)) {
            from = other;
            break;
          }
        }
      }
      const key = `${from ?? ''}>${node}`;
      const m = moves.get(key);
      if (m === undefined) moves.set(key, { from, to: node, units: 1 });
      else m.units++;
    }
    gained[node] = g;
    let l = 0;
    for (const u of was) if (!has.has(u)) l++;
    lost[node] = l;
  }
  // By receiver, then by sender; units no node held before come last.
  const order = (x: UnitMove): string => `${x.to}\u0000${x.from === null ? '\uffff' : x.from}`;
  return { version, gained, lost, moves: [...moves.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)) };
}

/** "n5 ← 3 from n1, 4 from n2": the moves into each node. */
export function formatMoves(m: MigrationMoves): string {
  const into = new Map<NodeId, UnitMove[]>();
  for (const mv of m.moves) into.set(mv.to, [...(into.get(mv.to) ?? []), mv]);
  if (into.size === 0) return 'no unit seen moving';
  return [...into.entries()]
    .map(([to, ms]) => {
      const total = ms.reduce((a, x) => a + x.units, 0);
      return `${total} ${total === 1 ? 'unit' : 'units'} to ${to} (${ms.map((x) => (x.from === null ? `${x.units} not held by any node before` : `${x.units} from ${x.from}`)).join(', ')})`;
    })
    .join('; ');
}
