import { memo } from 'react';
import type { NodeId } from '@dse/shared';
import { useThrottled } from '../live/throttle';
import type { DepEdge, DepIndex } from '../model/analysis';
import type { PlaygroundModel, VersionView } from '../model/model';
import { describeEdge } from '../model/paths';
import { STATE_COLOUR, STATE_LABEL } from '../palette';
import type { Highlight } from './SpaceTime';

export interface DepGraphProps {
  model: PlaygroundModel;
  rev: number;
  index: DepIndex;
  width: number;
  highlight: ReadonlyMap<string, Highlight>;
  /** Edges to emphasise (the "why" of a rollback). */
  whyEdges: readonly DepEdge[];
  /** Show only these versions (zoomed to one rollback), or null for the newest of each node. */
  zoom: ReadonlySet<string> | null;
  onSelectVersion(key: string | null): void;
}

/** Recent versions per node shown in the graph. */
const PER_NODE = 10;
/**
 * Above this many nodes the graph shows fewer versions per node, and only the nodes whose versions
 * depend on another node's or are depended on (or are highlighted): 32 rows of ten boxes each would
 * bury the few dependencies a person looks for.
 */
const ROWS_ALL_MAX = 12;
const PER_NODE_MANY = 6;
/** The graph follows a busy cluster at most this often (its boxes would flicker faster than read). */
const REDRAW_MS = 250;

export const LAYOUT = {
  left: 64,
  right: 16,
  top: 14,
  rowH: 64,
  boxH: 24,
  gap: 14,
  charW: 8.5,
} as const;

export interface Box {
  key: string;
  v: VersionView;
  row: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface RoutedEdge {
  edge: DepEdge;
  /** Orthogonal polyline from the dependent box's border to the depended-on box's border. */
  points: [number, number][];
  why: boolean;
}

export interface DepLayout {
  rows: NodeId[];
  /** Nodes left out (many nodes, none of their shown versions in a dependency between nodes). */
  hiddenRows: NodeId[];
  boxes: Box[];
  edges: RoutedEdge[];
  width: number;
  height: number;
}

/**
 * Versions placed by time (left to right in the order they opened, one row per node, never on top
 * of each other) and each dependency routed orthogonally: out of the dependent box toward the other
 * row, along the channel between rows, down or up through a gap between the boxes of the rows in
 * between, and into the depended-on box, the arrowhead on its border. Pure, for tests.
 */
export function layoutDepGraph(
  model: PlaygroundModel,
  index: DepIndex,
  width: number,
  forced: ReadonlySet<string>,
  whyEdges: readonly DepEdge[],
  zoom: ReadonlySet<string> | null,
): DepLayout {
  const allRows = model.laneIds();
  const many = zoom === null && allRows.length > ROWS_ALL_MAX;
  const perNode = many ? PER_NODE_MANY : PER_NODE;
  let shown: VersionView[] = [];
  for (const id of allRows) {
    const lane = model.lane(id);
    if (zoom !== null) {
      for (const v of lane) if (zoom.has(v.key)) shown.push(v);
    } else {
      lane.forEach((v, i) => {
        if (i >= lane.length - perNode || forced.has(v.key)) shown.push(v);
      });
    }
  }
  let rows = allRows;
  let hiddenRows: NodeId[] = [];
  if (many) {
    const shownKeys = new Set(shown.map((v) => v.key));
    const involved = new Set<NodeId>();
    for (const v of shown) {
      if (forced.has(v.key)) involved.add(v.node);
      for (const e of index.out.get(v.key) ?? []) {
        const to = model.versions.get(e.to);
        if (e.kind === 'prefix' || to === undefined || !shownKeys.has(e.to)) continue;
        involved.add(v.node);
        involved.add(to.node);
      }
    }
    rows = allRows.filter((id) => involved.has(id));
    hiddenRows = allRows.filter((id) => !involved.has(id));
    shown = shown.filter((v) => involved.has(v.node));
  }
  const rowOf = new Map(rows.map((id, i) => [id, i]));
  shown.sort((a, b) => a.openedAt - b.openedAt || (rowOf.get(a.node) ?? 0) - (rowOf.get(b.node) ?? 0));
  const t0 = shown[0]?.openedAt ?? 0;
  const t1 = shown.at(-1)?.openedAt ?? t0 + 1;
  const span = Math.max(1, t1 - t0);
  const usable = Math.max(200, width - LAYOUT.left - LAYOUT.right - 60);
  const rowEnd: number[] = rows.map(() => LAYOUT.left);
  const boxes: Box[] = [];
  for (const v of shown) {
    const row = rowOf.get(v.node)!;
    const label = v.state === 'rolled-back' ? `✕${v.version}` : String(v.version);
    const w = Math.max(34, label.length * LAYOUT.charW + 12);
    const byTime = LAYOUT.left + ((v.openedAt - t0) / span) * usable;
    const x = Math.max(byTime, rowEnd[row]! + (rowEnd[row] === LAYOUT.left ? 0 : LAYOUT.gap));
    rowEnd[row] = x + w;
    boxes.push({ key: v.key, v, row, x, y: LAYOUT.top + row * LAYOUT.rowH + (LAYOUT.rowH - LAYOUT.boxH) / 2, w, h: LAYOUT.boxH });
  }
  const byKey = new Map(boxes.map((b) => [b.key, b]));
  const perRow = rows.map((_, r) => boxes.filter((b) => b.row === r).sort((a, b) => a.x - b.x));
  const why = new Set(whyEdges.map((e) => `${e.from}>${e.to}`));
  const chanY = (row: number, below: boolean): number => LAYOUT.top + (below ? row + 1 : row) * LAYOUT.rowH;
  /** An x near `want` free of boxes in rows strictly between `r0` and `r1`. */
  const freeX = (want: number, r0: number, r1: number): number => {
    const lo = Math.min(r0, r1) + 1;
    const hi = Math.max(r0, r1) - 1;
    if (lo > hi) return want;
    const blocked: [number, number][] = [];
    for (let r = lo; r <= hi; r++) for (const b of perRow[r]!) blocked.push([b.x - 5, b.x + b.w + 5]);
    const inside = (x: number): boolean => blocked.some(([a, c]) => x >= a && x <= c);
    if (!inside(want)) return want;
    const candidates = blocked.flatMap(([a, c]) => [a - 1, c + 1]).filter((x) => !inside(x));
    candidates.sort((a, b) => Math.abs(a - want) - Math.abs(b - want));
    return candidates[0] ?? want;
  };
  const edges: RoutedEdge[] = [];
  let lanesUsed = 0;
  for (const a of boxes) {
    for (const e of index.out.get(a.key) ?? []) {
      const b = byKey.get(e.to);
      const isWhy = why.has(`${e.from}>${e.to}`);
      if (b === undefined || (e.kind === 'prefix' && !isWhy)) continue;
      // Edges in one channel are spread apart a little so that they do not run on top of each other.
      const off = ((lanesUsed++ % 5) - 2) * 4;
      let points: [number, number][];
      if (a.row === b.row) {
        // Along a node (the why of a later version): over the top of the boxes in between.
        const cy = chanY(a.row, false) + 10 + off / 2;
        const ax = a.x + Math.min(10, a.w / 3);
        const bx = b.x + b.w - Math.min(10, b.w / 3);
        points = [
          [ax, a.y],
          [ax, cy],
          [bx, cy],
          [bx, b.y],
        ];
      } else {
        const down = b.row > a.row;
        const ax = a.x + a.w / 2;
        const bx = b.x + b.w / 2;
        const ay = down ? a.y + a.h : a.y;
        const by = down ? b.y : b.y + b.h;
        const ca = chanY(a.row, down) + off;
        const cb = chanY(b.row, !down) + off;
        if (Math.abs(a.row - b.row) === 1) {
          points = [
            [ax, ay],
            [ax, ca],
            [bx, ca],
            [bx, by],
          ];
        } else {
          const xf = freeX((ax + bx) / 2, a.row, b.row);
          points = [
            [ax, ay],
            [ax, ca],
            [xf, ca],
            [xf, cb],
            [bx, cb],
            [bx, by],
          ];
        }
      }
      edges.push({ edge: e, points, why: isWhy });
    }
  }
  const w = Math.max(width, ...rowEnd.map((x) => x + LAYOUT.right));
  return { rows, hiddenRows, boxes, edges, width: w, height: LAYOUT.top + rows.length * LAYOUT.rowH + 8 };
}

/**
 * The dependency graph of recent versions: one row per node, in time order; an arrow from a version
 * to each version of another node it depends on, naming on hover the message that created it.
 * Selection is shared with the diagram.
 */
export const DepGraph = memo(function DepGraph(p: DepGraphProps) {
  // The model changes in place and `rev` says so: redraw on it a few times a second only.
  const rev = useThrottled(p.rev, REDRAW_MS);
  return <DepGraphBody {...p} rev={rev} />;
});

const DepGraphBody = memo(function DepGraphBody(p: DepGraphProps) {
  const { model } = p;
  const forced = new Set(p.highlight.keys());
  for (const e of p.whyEdges) {
    forced.add(e.from);
    forced.add(e.to);
  }
  const L = layoutDepGraph(model, p.index, p.width, forced, p.whyEdges, p.zoom);
  const anyHighlight = p.highlight.size > 0;
  const path = (pts: [number, number][]): string => pts.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
  return (
    <div className="depgraph-wrap" tabIndex={0} aria-label="dependency graph (scrolls sideways)">
      {L.hiddenRows.length > 0 && (
        <p className="muted" data-testid="dep-hidden-rows">
          {L.hiddenRows.length} of {L.rows.length + L.hiddenRows.length} nodes are left out: none of their newest {PER_NODE_MANY} versions depends on another
          node or is depended on ({L.hiddenRows.join(', ')}).
        </p>
      )}
      <svg
        width={L.width}
        height={L.height}
        className="depgraph"
        role="img"
        aria-label={`Dependency graph of ${L.boxes.length} versions: rows are nodes, time runs right; an arrow goes from a version to one it depends on`}
        onClick={() => p.onSelectVersion(null)}
      >
        <defs>
          <marker id="dep-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">
            <path d="M0,0L10,5L0,10z" fill="#333" />
          </marker>
          <marker id="dep-arrow-why" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="11" markerHeight="11" markerUnits="userSpaceOnUse" orient="auto">
            <path d="M0,0L10,5L0,10z" fill="#CC79A7" />
          </marker>
        </defs>
        {L.rows.map((id, r) => (
          <g key={id}>
            <line
              x1={LAYOUT.left - 6}
              x2={L.width - LAYOUT.right}
              y1={LAYOUT.top + r * LAYOUT.rowH + LAYOUT.rowH / 2}
              y2={LAYOUT.top + r * LAYOUT.rowH + LAYOUT.rowH / 2}
              className="dep-row"
            />
            <text x={8} y={LAYOUT.top + r * LAYOUT.rowH + LAYOUT.rowH / 2 + 5} className="lane-label">
              {id}
            </text>
          </g>
        ))}
        {L.edges.map(({ edge, points, why }) => {
          const hl = p.highlight.has(edge.from) && p.highlight.has(edge.to);
          const d = path(points);
          return (
            <g
              key={`${edge.from}>${edge.to}`}
              className={`dep-edge-g${why ? ' why' : ''}${hl ? ' hl' : ''}`}
              data-testid="dep-edge"
              data-from={edge.from}
              data-to={edge.to}
            >
              <title>{describeEdge(model, edge)}</title>
              <path d={d} className="dep-edge-hit" />
              <path
                d={d}
                className={`dep-edge${why ? ' why' : ''}${hl ? ' hl' : ''}`}
                markerEnd={why ? 'url(#dep-arrow-why)' : 'url(#dep-arrow)'}
                opacity={anyHighlight && !hl && !why ? 0.35 : 1}
              />
            </g>
          );
        })}
        {L.boxes.map(({ key, v, x, y, w, h }) => {
          const hv = p.highlight.get(key);
          return (
            <g
              key={key}
              className={`dep-node state-${v.state}${hv !== undefined ? ` hl-${hv}` : ''}`}
              opacity={anyHighlight && hv === undefined ? 0.35 : 1}
              data-testid="dep-version"
              data-key={key}
              onClick={(ev) => {
                ev.stopPropagation();
                p.onSelectVersion(key);
              }}
            >
              <title>{`${v.node} v${v.version} (world-line ${v.worldLine}): ${STATE_LABEL[v.state]}`}</title>
              {hv !== undefined && <rect className={`halo halo-${hv}`} x={x - 3} y={y - 3} width={w + 6} height={h + 6} rx={6} />}
              <rect
                x={x}
                y={y}
                width={w}
                height={h}
                rx={4}
                fill={
                  v.state === 'speculative'
                    ? 'url(#hatch-speculative)'
                    : v.state === 'persisting'
                      ? 'url(#fill-persisting)'
                      : v.state === 'committed'
                        ? STATE_COLOUR.committed
                        : 'url(#fill-rolled-back)'
                }
                stroke={STATE_COLOUR[v.state]}
                strokeWidth={1.5}
                strokeDasharray={v.state === 'speculative' ? '4 2' : v.state === 'persisting' ? '1.5 2' : undefined}
              />
              <text x={x + w / 2} y={y + h / 2 + 5} textAnchor="middle" className={`vlabel${v.state === 'committed' ? ' on-dark' : ''}`}>
                {v.state === 'rolled-back' ? `✕${v.version}` : v.version}
              </text>
              {v.worldLine !== model.worldLine && (
                <text x={x + w / 2} y={y + h + 13} textAnchor="middle" className="wl-small">
                  w{v.worldLine}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
});
