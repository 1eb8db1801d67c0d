import { scaleLinear } from 'd3';
import { memo } from 'react';
import type { MessageKind, NodeId } from '@dse/shared';
import type { MessageView, PlaygroundModel, VersionView } from '../model/model';
import { OKABE_ITO, STATE_COLOUR, STATE_CUE, STATE_LABEL } from '../palette';

export type Highlight = 'selected' | 'dependency' | 'dependent' | 'lost' | 'must' | 'collateral' | 'cascade' | 'dim';

export interface SpaceTimeProps {
  model: PlaygroundModel;
  rev: number;
  width: number;
  /** Milliseconds of event time shown, ending at the newest event; `all`: the whole retained history. */
  windowMs: number | 'all';
  messageKinds: ReadonlySet<MessageKind>;
  highlight: ReadonlyMap<string, Highlight>;
  selectedNode: NodeId | null;
  onSelectVersion(key: string | null): void;
  onSelectNode(node: NodeId): void;
}

const LABEL_W = 76;
const RIGHT_PAD = 12;
const TOP = 22;
const LANE_H = 40;
const CLIENT_H = 26;
const BAR_H = 18;
/** Above this many arrows in view, only the newest are drawn (and the view says so). */
const ARROWS_MAX = 500;
/** A message not seen arriving after this long is drawn as a stub, not as an arrow to now. */
const UNDELIVERED_STUB_AFTER_MS = 3000;

function fmtT(ms: number): string {
  return Math.abs(ms) >= 10_000 ? `${(ms / 1000).toFixed(0)}s` : Math.abs(ms) >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms.toFixed(0)}ms`;
}

function describe(v: VersionView): string {
  const deps = Object.entries(v.deps)
    .map(([n, x]) => `${n} v${x}`)
    .join(', ');
  const parts = [`${v.node} v${v.version} (world-line ${v.worldLine}): ${STATE_LABEL[v.state]} — ${STATE_CUE[v.state]}`];
  if (v.state === 'persisting') parts.push(v.persistedAt !== null ? 'persisted, waiting for its dependencies to commit' : 'checkpoint being written');
  if (v.closedAt === null) parts.push('open version');
  if (deps !== '') parts.push(`depends on ${deps}`);
  if (v.checkpointFailures > 0) parts.push(`${v.checkpointFailures} failed checkpoint write(s)`);
  if (v.rolledBackBy !== null) parts.push(`discarded by the recovery to world-line ${v.rolledBackBy}`);
  return parts.join('\n');
}

export const SpaceTime = memo(function SpaceTime(p: SpaceTimeProps) {
  const { model } = p;
  const lanes = model.laneIds();
  const laneSet = new Set(lanes);
  let clientLane = false;
  for (const m of model.messages.values()) {
    if (!laneSet.has(m.from) || !laneSet.has(m.to)) {
      clientLane = true;
      break;
    }
  }
  const top = TOP + (clientLane ? CLIENT_H : 0);
  const height = top + lanes.length * LANE_H + 8;
  const end = model.lastT;
  const first = model.firstT ?? end;
  const start = p.windowMs === 'all' ? Math.min(first, end - 1) : end - p.windowMs;
  const x = scaleLinear()
    .domain([start, Math.max(end, start + 1)])
    .range([LABEL_W, Math.max(LABEL_W + 50, p.width - RIGHT_PAD)]);
  const cx = (t: number): number => Math.max(LABEL_W, Math.min(x(t), p.width - RIGHT_PAD));
  const laneY = new Map(lanes.map((id, i) => [id, top + i * LANE_H + LANE_H / 2]));
  const yOf = (endpoint: string): number => laneY.get(endpoint) ?? TOP + CLIENT_H / 2;
  const anyHighlight = p.highlight.size > 0;

  // World-line bands.
  const bands = model.worldLines
    .map((w, i) => ({ w, endAt: model.worldLines[i + 1]?.startAt ?? end }))
    .filter(({ w, endAt }) => endAt >= start && w.startAt <= end);

  // Versions in view.
  const versionEls: React.ReactNode[] = [];
  for (const id of lanes) {
    const y = laneY.get(id)!;
    for (const v of model.lane(id)) {
      const closed = v.closedAt ?? end;
      if (closed < start) continue;
      const x0 = cx(v.openedAt);
      const x1 = Math.max(cx(closed), x0 + 2);
      const w = x1 - x0;
      const h = p.highlight.get(v.key);
      const dim = anyHighlight && h === undefined;
      const rolled = v.state === 'rolled-back';
      const yTop = y - BAR_H / 2;
      const strokeDash = v.state === 'speculative' ? '4 2' : v.state === 'persisting' ? '1.5 2' : undefined;
      const fill = v.state === 'speculative' ? 'url(#hatch-speculative)' : v.state === 'persisting' ? 'url(#fill-persisting)' : v.state === 'committed' ? STATE_COLOUR.committed : 'url(#fill-rolled-back)';
      versionEls.push(
        <g
          key={v.key}
          className={`version state-${v.state}${h !== undefined ? ` hl-${h}` : ''}`}
          data-testid={rolled ? 'version-rolled-back' : `version-${v.state}`}
          data-key={v.key}
          opacity={dim ? 0.28 : 1}
          onClick={(ev) => {
            ev.stopPropagation();
            p.onSelectVersion(v.key);
          }}
        >
          <title>{describe(v)}</title>
          {h !== undefined && h !== 'dim' && <rect className={`halo halo-${h}`} x={x0 - 3} y={yTop - 3} width={w + 6} height={BAR_H + 6} rx={4} />}
          <rect x={x0} y={yTop} width={w} height={BAR_H} rx={2} fill={fill} stroke={STATE_COLOUR[v.state]} strokeWidth={v.state === 'persisting' ? 2 : 1.5} strokeDasharray={strokeDash} />
          {rolled && (
            <path d={`M${x0 + 1},${yTop + 1}L${x1 - 1},${yTop + BAR_H - 1}M${x0 + 1},${yTop + BAR_H - 1}L${x1 - 1},${yTop + 1}`} stroke={OKABE_ITO.vermillion} strokeWidth={1.5} />
          )}
          {v.state === 'persisting' && v.persistedAt !== null && <circle cx={x1 - 5} cy={y} r={2.5} fill={OKABE_ITO.blue} />}
          {w >= 22 && (
            <text x={x0 + 4} y={y + 4} className={`vlabel${v.state === 'committed' ? ' on-dark' : ''}`}>
              {v.version}
            </text>
          )}
        </g>,
      );
    }
  }

  // Message arrows, newest last.
  const inView: MessageView[] = [];
  for (const m of model.messages.values()) {
    if (m.from === m.to || !p.messageKinds.has(m.kind)) continue;
    const arrive = m.deliveredAt ?? m.rejectedAt ?? end;
    if (arrive < start) continue;
    inView.push(m);
  }
  const hidden = Math.max(0, inView.length - ARROWS_MAX);
  const arrows = inView.slice(hidden).map((m) => {
    const x0 = cx(m.sentAt);
    const y0 = yOf(m.from);
    const stale = m.deliveredAt === null && m.rejectedAt === null && (m.superseded || end - m.sentAt > UNDELIVERED_STUB_AFTER_MS);
    const state = m.rejectedAt !== null ? 'rejected' : m.deliveredAt !== null ? 'delivered' : stale ? 'unseen' : 'in-flight';
    let x1 = cx(m.deliveredAt ?? m.rejectedAt ?? end);
    let y1 = yOf(m.to);
    if (stale) {
      // No arrival seen (lost, or resent): draw only where it left from and which way it went.
      const len = Math.hypot(x1 - x0, y1 - y0) || 1;
      const k = Math.min(1, 14 / len);
      x1 = x0 + (x1 - x0) * k;
      y1 = y0 + (y1 - y0) * k;
    }
    const title =
      `${m.kind} ${m.from} → ${m.to}, sent in v${m.srcVersion} of world-line ${m.worldLine}` +
      (m.resend ? ' (resent)' : '') +
      (state === 'rejected' ? `; rejected: the receiver is on world-line ${m.receiverWorldLine ?? '?'}` : state === 'delivered' ? `; delivered in v${m.deliveredVersion ?? '?'}${m.duplicate ? ' (duplicate, dropped)' : ''}` : state === 'unseen' ? (m.superseded ? '; sent again later, no arrival seen for this copy' : '; no arrival seen') : '; in flight');
    return (
      <g key={m.uid} className={`msg msg-${state} kind-${m.kind}`} data-testid={state === 'rejected' ? 'message-rejected' : undefined}>
        <title>{title}</title>
        <line x1={x0} y1={y0} x2={x1} y2={y1} markerEnd={state === 'delivered' ? 'url(#arrow)' : undefined} />
        {state === 'rejected' && (
          <text x={x1} y={y1 + 4} className="reject-mark" textAnchor="middle">
            ✕
          </text>
        )}
      </g>
    );
  });

  // The committed cut: through every lane, at the end of each node's committed version.
  const cutPoints: [number, number][] = [];
  let cutTotal = 0;
  for (const id of lanes) {
    const c = model.cut[id] ?? 0;
    cutTotal += c;
    let at: number | null = null;
    const lane = model.lane(id);
    for (let i = lane.length - 1; i >= 0; i--) {
      const v = lane[i]!;
      if (v.version === c && v.state === 'committed') {
        at = v.closedAt ?? v.checkpointAt ?? end;
        break;
      }
    }
    const cxv = at === null ? LABEL_W : cx(at);
    const y = laneY.get(id)!;
    cutPoints.push([cxv, y - LANE_H / 2 + 2], [cxv, y + LANE_H / 2 - 2]);
  }
  const cutPath = cutPoints.map(([a, b], i) => `${i === 0 ? 'M' : 'L'}${a.toFixed(1)},${b.toFixed(1)}`).join('');

  const ticks = x.ticks(6);
  return (
    <div className="spacetime" onClick={() => p.onSelectVersion(null)}>
      <svg width={p.width} height={height} role="img" aria-label={`Space-time diagram: ${lanes.length} nodes, world-line ${model.worldLine}. The event table below is the text alternative.`}>
        <defs>
          <pattern id="hatch-speculative" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
            <rect width="6" height="6" fill="#FBE3B0" />
            <line x1="0" y1="0" x2="0" y2="6" stroke={OKABE_ITO.orange} strokeWidth="2.5" />
          </pattern>
          <pattern id="fill-persisting" width="4" height="4" patternUnits="userSpaceOnUse">
            <rect width="4" height="4" fill="#CBE8F8" />
            <circle cx="2" cy="2" r="0.8" fill={OKABE_ITO.skyBlue} />
          </pattern>
          <pattern id="fill-rolled-back" width="4" height="4" patternUnits="userSpaceOnUse">
            <rect width="4" height="4" fill="#F6CDB3" />
          </pattern>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
            <path d="M0,0L10,5L0,10z" fill="#444" />
          </marker>
        </defs>
        {bands.map(({ w, endAt }, i) => {
          const x0 = cx(w.startAt);
          const x1 = cx(endAt);
          return (
            <g key={`wl${w.worldLine}`} className="wl-band" data-testid="world-line-band">
              <rect x={x0} y={TOP - 4} width={Math.max(0, x1 - x0)} height={height - TOP} fill={i % 2 === 0 ? '#F3F3F3' : '#FFFFFF'} />
              {w.startAt >= start && <line x1={x0} x2={x0} y1={TOP - 4} y2={height} className={w.failed.length > 0 ? 'wl-edge failed' : 'wl-edge'} />}
              <text x={Math.max(x0, LABEL_W) + 3} y={TOP - 8} className="wl-label">
                w{w.worldLine}
                {w.failed.length > 0 ? ` (${w.failed.join(', ')} failed)` : ''}
              </text>
            </g>
          );
        })}
        {ticks.map((t) => (
          <g key={t} className="tick">
            <line x1={x(t)} x2={x(t)} y1={TOP - 2} y2={height} />
            <text x={x(t)} y={height - 1} textAnchor="middle">
              {fmtT(t - end)}
            </text>
          </g>
        ))}
        {clientLane && (
          <g className="lane clients" data-testid="clients-lane">
            <text x={4} y={TOP + CLIENT_H / 2 + 4} className="lane-label muted">
              clients
            </text>
            <line x1={LABEL_W} x2={p.width - RIGHT_PAD} y1={TOP + CLIENT_H / 2} y2={TOP + CLIENT_H / 2} className="lane-axis muted" />
          </g>
        )}
        {lanes.map((id) => {
          const y = laneY.get(id)!;
          const n = model.nodes.get(id)!;
          const c = model.compressed.get(id);
          return (
            <g
              key={id}
              className={`lane status-${n.status}${p.selectedNode === id ? ' selected' : ''}`}
              data-testid={`lane-${id}`}
              onClick={(ev) => {
                ev.stopPropagation();
                p.onSelectNode(id);
              }}
            >
              <rect x={0} y={y - LANE_H / 2} width={LABEL_W - 4} height={LANE_H} className="lane-head" />
              <text x={6} y={y - 2} className="lane-label">
                {id}
              </text>
              <text x={6} y={y + 12} className={`lane-status st-${n.status}`}>
                {n.status === 'up' ? '● up' : n.status === 'down' ? '■ down' : '◐ recovering'}
              </text>
              <line x1={LABEL_W} x2={p.width - RIGHT_PAD} y1={y} y2={y} className="lane-axis" />
              {c !== undefined && c.versions > 0 && (
                <title>{`${c.versions} older versions compressed (${c.committed} committed, ${c.rolledBack} rolled back)`}</title>
              )}
            </g>
          );
        })}
        <g className="arrows">{arrows}</g>
        <g className="versions">{versionEls}</g>
        <path d={cutPath} className="cut-halo" />
        <path d={cutPath} className="cut-line" data-testid="cut-line" data-cut={JSON.stringify(model.cut)} data-cut-total={cutTotal} data-world-line={model.worldLine}>
          <title>{`committed cut (world-line ${model.worldLine}): ${lanes.map((id) => `${id} v${model.cut[id] ?? 0}`).join(', ')}`}</title>
        </path>
      </svg>
      {hidden > 0 && <div className="note">Showing the newest {ARROWS_MAX} of {inView.length} messages in view; narrow the time window or filter message kinds.</div>}
    </div>
  );
});
