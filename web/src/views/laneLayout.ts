import type { NodeId } from '@dse/shared';

/**
 * How the stage's lanes share its height. Up to about twenty nodes every lane gets the same height,
 * at least a readable 24 px. With more, the stage goes compact: the busiest lanes (and the selected
 * node's) keep a full lane with their kill and restart buttons, every other lane shrinks to a thin
 * row with its name, so that all the lanes stay on screen and none is cut off. Pure, for tests.
 */

/** A lane of the uniform layout at least (a 15 px label and its status). */
export const LANE_MIN_H = 24;
export const LANE_MAX_H = 160;
/** A full lane in the compact layout: the name, the status and the buttons in one row. */
export const FULL_LANE_H = 36;
/** A thin lane in the compact layout at least (an 11 px name). */
export const THIN_LANE_MIN_H = 13;
/** A thin lane at most (taller would fit the uniform layout). */
const THIN_LANE_MAX_H = LANE_MIN_H - 1;
/** Full lanes at most in the compact layout. */
export const FULL_LANES_MAX = 6;

export interface LaneBox {
  id: NodeId;
  /** Top edge, from the first lane's top. */
  y0: number;
  h: number;
  /** A thin row of the compact layout (no buttons). */
  thin: boolean;
}

export interface LaneLayout {
  lanes: LaneBox[];
  /** The height the lanes take (more than `available` only when even thin lanes do not fit). */
  height: number;
  compact: boolean;
}

/**
 * @param ids the lanes, in their order on the stage
 * @param available the height the lanes may take
 * @param activity each lane's activity in view (the messages it sent or received): the busiest keep a full lane
 * @param keepFull lanes that stay full whatever their activity (the selected node)
 */
export function layoutLanes(ids: readonly NodeId[], available: number, activity: ReadonlyMap<NodeId, number>, keepFull: ReadonlySet<NodeId>): LaneLayout {
  const n = ids.length;
  if (n * LANE_MIN_H <= available || n <= 1) {
    const h = Math.max(LANE_MIN_H, Math.min(LANE_MAX_H, Math.floor(available / Math.max(1, n))));
    return { lanes: ids.map((id, i) => ({ id, y0: i * h, h, thin: false })), height: n * h, compact: false };
  }
  // As many full lanes as leave the others at least the thinnest height.
  const fits = Math.floor((available - n * THIN_LANE_MIN_H) / (FULL_LANE_H - THIN_LANE_MIN_H));
  const fullCount = Math.max(0, Math.min(FULL_LANES_MAX, n - 1, fits));
  const order = ids.map((id, i) => ({ id, i, kept: keepFull.has(id), a: activity.get(id) ?? 0 }));
  order.sort((x, y) => Number(y.kept) - Number(x.kept) || y.a - x.a || x.i - y.i);
  const full = new Set(order.slice(0, fullCount).map((x) => x.id));
  const thinH = Math.max(THIN_LANE_MIN_H, Math.min(THIN_LANE_MAX_H, Math.floor((available - full.size * FULL_LANE_H) / (n - full.size))));
  const lanes: LaneBox[] = [];
  let y = 0;
  for (const id of ids) {
    const thin = !full.has(id);
    const h = thin ? thinH : FULL_LANE_H;
    lanes.push({ id, y0: y, h, thin });
    y += h;
  }
  return { lanes, height: y, compact: true };
}
