import { memo } from 'react';
import type { NodeId } from '@dse/shared';
import { useThrottled } from '../live/throttle';
import type { DepEdge, DepIndex } from '../model/analysis';
import type { PlaygroundModel, VersionView } from '../model/model';
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
  onSelectVersion(key: string | null): void;
}

/** Recent versions per node shown in the graph. */
const PER_NODE = 8;
const COL_W_MIN = 90;
const ROW_H = 30;

/** The graph follows a busy cluster at most this often (its boxes would flicker faster than read). */
const REDRAW_MS = 200;

/**
 * The dependency graph of recent versions: one column per node, oldest at the top; an arrow from a
 * version to each version of another node it depends on. Selection is shared with the diagram.
 */
export const DepGraph = memo(function DepGraph(p: DepGraphProps) {
  // The model changes in place and `rev` says so: redraw on it a few times a second only (a new
  // selection, highlight or index still redraws at once).
  const rev = useThrottled(p.rev, REDRAW_MS);
  return <DepGraphBody {...p} rev={rev} />;
});

const DepGraphBody = memo(function DepGraphBody(p: DepGraphProps) {
  const { model } = p;
  const lanes = model.laneIds();
  const colW = Math.max(COL_W_MIN, Math.floor((p.width - 20) / Math.max(1, lanes.length)));
  const pos = new Map<string, { x: number; y: number; v: VersionView }>();
  let rows = 0;
  // Keep the selected and highlighted versions in view even when older than the newest few.
  const forced = new Set(p.highlight.keys());
  for (const e of p.whyEdges) {
    forced.add(e.from);
    forced.add(e.to);
  }
  lanes.forEach((id: NodeId, col) => {
    const lane = model.lane(id);
    const shown = lane.filter((v, i) => i >= lane.length - PER_NODE || forced.has(v.key)).slice(-PER_NODE * 2);
    shown.forEach((v, row) => pos.set(v.key, { x: 10 + col * colW + colW / 2, y: 34 + row * ROW_H, v }));
    rows = Math.max(rows, shown.length);
  });
  const height = 44 + rows * ROW_H;
  const why = new Set(p.whyEdges.map((e) => `${e.from}>${e.to}`));
  const edges: React.ReactNode[] = [];
  for (const [key, a] of pos) {
    for (const e of p.index.out.get(key) ?? []) {
      const b = pos.get(e.to);
      if (b === undefined) continue;
      if (e.kind === 'prefix' && !why.has(`${e.from}>${e.to}`)) continue;
      const isWhy = why.has(`${e.from}>${e.to}`);
      const hl = p.highlight.has(e.from) && p.highlight.has(e.to);
      const mx = (a.x + b.x) / 2;
      edges.push(
        <path
          key={`${e.from}>${e.to}`}
          d={e.kind === 'prefix' ? `M${a.x - 14},${a.y}C${a.x - 34},${a.y} ${b.x - 34},${b.y} ${b.x - 14},${b.y}` : `M${a.x},${a.y}C${mx},${a.y} ${mx},${b.y} ${b.x},${b.y}`}
          className={`dep-edge${isWhy ? ' why' : ''}${hl ? ' hl' : ''}`}
          markerEnd="url(#dep-arrow)"
        />,
      );
    }
  }
  const anyHighlight = p.highlight.size > 0;
  return (
    <svg width={p.width} height={height} className="depgraph" role="img" aria-label="Dependency graph of recent versions" onClick={() => p.onSelectVersion(null)}>
      <defs>
        <marker id="dep-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M0,0L10,5L0,10z" fill="#333" />
        </marker>
      </defs>
      {lanes.map((id, col) => (
        <text key={id} x={10 + col * colW + colW / 2} y={16} textAnchor="middle" className="lane-label">
          {id}
        </text>
      ))}
      {edges}
      {[...pos.values()].map(({ x, y, v }) => {
        const h = p.highlight.get(v.key);
        const bw = Math.max(28, (String(v.version).length + (v.state === 'rolled-back' ? 1 : 0)) * 6.5 + 8);
        return (
          <g
            key={v.key}
            className={`dep-node state-${v.state}${h !== undefined ? ` hl-${h}` : ''}`}
            opacity={anyHighlight && h === undefined ? 0.3 : 1}
            onClick={(ev) => {
              ev.stopPropagation();
              p.onSelectVersion(v.key);
            }}
          >
            <title>{`${v.node} v${v.version} (world-line ${v.worldLine}): ${STATE_LABEL[v.state]}`}</title>
            {h !== undefined && <rect className={`halo halo-${h}`} x={x - bw / 2 - 3} y={y - 12} width={bw + 6} height={24} rx={6} />}
            <rect
              x={x - bw / 2}
              y={y - 9}
              width={bw}
              height={18}
              rx={4}
              fill={v.state === 'speculative' ? 'url(#hatch-speculative)' : v.state === 'persisting' ? 'url(#fill-persisting)' : v.state === 'committed' ? STATE_COLOUR.committed : 'url(#fill-rolled-back)'}
              stroke={STATE_COLOUR[v.state]}
              strokeWidth={1.5}
              strokeDasharray={v.state === 'speculative' ? '4 2' : v.state === 'persisting' ? '1.5 2' : undefined}
            />
            <text x={x} y={y + 4} textAnchor="middle" className={`vlabel${v.state === 'committed' ? ' on-dark' : ''}`}>
              {v.state === 'rolled-back' ? `✕${v.version}` : v.version}
            </text>
            {v.worldLine !== model.worldLine && (
              <text x={x + bw / 2 + 3} y={y + 4} className="wl-small">
                w{v.worldLine}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
});
