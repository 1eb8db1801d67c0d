import { scaleLinear } from 'd3-scale';
import { memo, useEffect, useRef, useState } from 'react';
import type { MessageKind, NodeId } from '@dse/shared';
import type { DepEdge } from '../model/analysis';
import type { MessageView, PlaygroundModel, VersionView, WorldLineView } from '../model/model';
import { worldLineCause } from '../model/model';
import { requestOfMessage } from '../model/paths';
import { OKABE_ITO, STATE_COLOUR, STATE_CUE, STATE_LABEL } from '../palette';
import { layoutLanes } from './laneLayout';

export type Highlight = 'selected' | 'dependency' | 'dependent' | 'lost' | 'must' | 'collateral' | 'cascade' | 'kept' | 'dim' | 'focus';

export interface SpaceTimeProps {
  model: PlaygroundModel;
  rev: number;
  width: number;
  /** The height the diagram may fill (lanes scale to it). */
  height: number;
  /** Milliseconds of event time shown, ending at the newest event; `all`: the whole retained history. */
  windowMs: number | 'all';
  /** Where the view ends in event time; null: at the newest event (follows live). */
  viewEndT: number | null;
  /** A fixed time range (a replay shows its whole run from the start), overriding the window. */
  domain: readonly [number, number] | null;
  messageKinds: ReadonlySet<MessageKind>;
  highlight: ReadonlyMap<string, Highlight>;
  /** Dependency edges to draw on the stage (the why of a rollback), from dependent to depended-on. */
  whyEdges: readonly DepEdge[];
  selectedNode: NodeId | null;
  selectedRequest: { session: string; seq: number } | null;
  /** Live cluster: kill and restart on each lane's head. */
  live: boolean;
  busy: boolean;
  /** The kill preview may show (not while a tour's question is open). */
  previewAllowed: boolean;
  onSelectVersion(key: string | null): void;
  onSelectNode(node: NodeId): void;
  onSelectRequest(r: { session: string; seq: number }): void;
  onKill(node: NodeId): void;
  onRestart(node: NodeId): void;
  onPreview(node: NodeId | null): void;
  /** A tooltip for each lane's name (the units the node holds, its placement view). */
  laneTitles?: ReadonlyMap<NodeId, string>;
}

export const LABEL_W = 150;
const RIGHT_PAD = 12;
/** One row of world-line labels. */
const WL_ROW_H = 18;
const AXIS_H = 20;
const CLIENT_H = 30;
/** Above this many arrows in view, only the newest are drawn (and the view says so). */
const ARROWS_MAX = 500;
/** A message not seen arriving after this long is drawn as a stub, not as an arrow to now. */
const UNDELIVERED_STUB_AFTER_MS = 3000;
/** World-line label rows at most; a label that fits none is shortened (its full text on hover). */
const WL_ROWS_MAX = 3;
/** Width of one character of a 14 px label, a little generous (labels are measured, not rendered, here). */
const CHAR_W = 7.8;
/** Request marks on the clients lane at most (the newest). */
const REQUEST_MARKS_MAX = 150;

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
  if (v.checkpointFailures > 0) parts.push(`${v.checkpointFailures} failed checkpoint write${v.checkpointFailures === 1 ? '' : 's'}`);
  if (v.rolledBackBy !== null) parts.push(`discarded by the recovery to world-line ${v.rolledBackBy}`);
  else if (v.keptBy !== null) parts.push(`kept by the recovery to world-line ${v.keptBy} (it depends on no lost state)`);
  return parts.join('\n');
}

/** "w3 (n2 failed · precise)" for a band; just "w1" for the first one. */
export function bandLabel(w: WorldLineView): string {
  const cause = worldLineCause(w);
  return `w${w.worldLine}${cause === 'start' ? '' : ` (${cause}${w.recovery !== null ? ` · ${w.recovery}` : ''})`}`;
}

export interface PlacedLabel {
  worldLine: number;
  x: number;
  row: number;
  text: string;
  full: string;
  width: number;
}

/**
 * World-line labels that never overlap: each goes in the first row where it clears the label before
 * it; when none of the rows has room, the label is shortened to what fits before the next band (at
 * least "w7"), with the full text on hover. Pure, for tests.
 */
export function placeWorldLineLabels(
  items: readonly { worldLine: number; x: number; full: string }[],
  right: number,
  rowsMax = WL_ROWS_MAX,
  charW = CHAR_W,
): PlacedLabel[] {
  const ends: number[] = Array.from({ length: rowsMax }, () => -Infinity);
  const out: PlacedLabel[] = [];
  const widthOf = (t: string): number => t.length * charW + 6;
  for (const it of items) {
    const x = it.x;
    let text = it.full;
    let w = widthOf(text);
    // Labels near the right edge grow leftwards from it.
    let lx = Math.min(x, right - w);
    let row = ends.findIndex((e) => e + 4 <= lx);
    if (row < 0) {
      // No row has room for the whole label: the row that frees up first gets a short one.
      row = ends.indexOf(Math.min(...ends));
      const room = right - Math.max(ends[row]! + 4, x);
      const short = `w${it.worldLine}`;
      const fit = Math.max(short.length, Math.floor((room - 6) / charW));
      text = fit >= it.full.length ? it.full : fit <= short.length + 1 ? short : `${it.full.slice(0, fit - 1)}…`;
      w = widthOf(text);
      lx = Math.max(ends[row]! + 4, Math.min(x, right - w));
    }
    ends[row] = lx + w;
    out.push({ worldLine: it.worldLine, x: lx, row, text, full: it.full, width: w });
  }
  return out;
}

export const SpaceTime = memo(function SpaceTime(p: SpaceTimeProps) {
  const { model } = p;
  const [tip, setTip] = useState<{ x: number; y: number; text: string } | null>(null);
  const lanes = model.laneIds();
  const laneSet = new Set(lanes);
  let clientLane = false;
  for (const m of model.messages.values()) {
    if (!laneSet.has(m.from) || !laneSet.has(m.to)) {
      clientLane = true;
      break;
    }
  }
  // `end` is the newest event's time (open versions and messages in flight reach it); the view may
  // end earlier when a person scrolls back through history.
  const end = model.lastT;
  const first = model.firstT ?? end;
  const viewEnd = p.domain !== null ? p.domain[1] : p.viewEndT === null ? end : Math.min(end, p.viewEndT);
  const start = p.domain !== null ? p.domain[0] : p.windowMs === 'all' ? Math.min(first, viewEnd - 1) : viewEnd - p.windowMs;
  const x = scaleLinear()
    .domain([start, Math.max(viewEnd, start + 1)])
    .range([LABEL_W, Math.max(LABEL_W + 50, p.width - RIGHT_PAD)]);
  const cx = (t: number): number => Math.max(LABEL_W, Math.min(x(t), p.width - RIGHT_PAD));

  // World-line bands and their labels (stacked so that no two overlap).
  const bands = model.worldLines
    .map((w, i) => ({ w, endAt: model.worldLines[i + 1]?.startAt ?? end }))
    .filter(({ w, endAt }) => endAt >= start && w.startAt <= viewEnd);
  const labels = placeWorldLineLabels(
    bands.map(({ w }) => ({ worldLine: w.worldLine, x: Math.max(cx(w.startAt), LABEL_W) + 3, full: bandLabel(w) })),
    p.width - RIGHT_PAD,
  );
  const wlRows = Math.max(1, ...labels.map((l) => l.row + 1));
  const TOP = wlRows * WL_ROW_H + 6;
  const top = TOP + (clientLane ? CLIENT_H : 0);
  // Messages in view (their arrows are drawn below).
  const inView: MessageView[] = [];
  for (const m of model.messages.values()) {
    if (m.from === m.to || !p.messageKinds.has(m.kind)) continue;
    const arrive = m.deliveredAt ?? m.rejectedAt ?? end;
    if (arrive < start || m.sentAt > viewEnd) continue;
    inView.push(m);
  }
  // Lanes share the height: thinner with many nodes, never thinner than a readable label; with too
  // many for that, the busiest (and the selected node's) stay full and the others become thin rows.
  const activity = new Map<NodeId, number>();
  const busier = (id: string): void => {
    if (laneSet.has(id)) activity.set(id, (activity.get(id) ?? 0) + 1);
  };
  for (const m of inView) {
    busier(m.from);
    busier(m.to);
  }
  const layout = layoutLanes(lanes, p.height - top - AXIS_H, activity, new Set(p.selectedNode === null ? [] : [p.selectedNode]));
  const laneBox = new Map(layout.lanes.map((l) => [l.id, l]));
  const laneHOf = (id: NodeId): number => laneBox.get(id)?.h ?? LANE_MIN_FALLBACK;
  const barOf = (id: NodeId): number => barHeight(laneHOf(id));
  const height = Math.max(p.height, top + layout.height + AXIS_H);
  const laneY = new Map(layout.lanes.map((l) => [l.id, top + l.y0 + l.h / 2]));
  const clientY = TOP + CLIENT_H / 2;
  const yOf = (endpoint: string): number => laneY.get(endpoint) ?? clientY;
  const anyHighlight = p.highlight.size > 0;

  // Versions in view. The many live ones go to the canvas; rolled-back ones (few, and what a person
  // looks for after a kill) are SVG elements with their own test id, tooltip and click.
  const drawn: DrawnVersion[] = [];
  const versionEls: React.ReactNode[] = [];
  const centre = new Map<string, { x: number; y: number; x0: number; x1: number; barH: number; laneH: number }>();
  for (const id of lanes) {
    const y = laneY.get(id)!;
    const barH = barOf(id);
    for (const v of model.lane(id)) {
      const closed = v.closedAt ?? end;
      if (closed < start || v.openedAt > viewEnd) continue;
      const x0 = cx(v.openedAt);
      const x1 = Math.max(cx(closed), x0 + 2);
      const w = x1 - x0;
      const h = p.highlight.get(v.key);
      drawn.push({ v, x0, x1, y, h, barH });
      centre.set(v.key, { x: (x0 + x1) / 2, y, x0, x1, barH, laneH: laneHOf(id) });
      if (v.state !== 'rolled-back') continue;
      const dim = anyHighlight && h === undefined;
      const yTop = y - barH / 2;
      versionEls.push(
        <g
          key={v.key}
          className={`version state-${v.state}${h !== undefined ? ` hl-${h}` : ''}`}
          data-testid="version-rolled-back"
          data-key={v.key}
          opacity={dim ? 0.28 : 1}
          onClick={(ev) => {
            ev.stopPropagation();
            p.onSelectVersion(v.key);
          }}
        >
          <title>{describe(v)}</title>
          {h !== undefined && h !== 'dim' && <rect x={x0 - 3} y={yTop - 3} width={w + 6} height={barH + 6} className={`halo halo-${h}`} />}
          <rect x={x0} y={yTop} width={w} height={barH} rx={2} fill="url(#fill-rolled-back)" stroke={STATE_COLOUR['rolled-back']} strokeWidth={1.5} />
          <path
            d={`M${x0 + 1},${yTop + 1}L${x1 - 1},${yTop + barH - 1}M${x0 + 1},${yTop + barH - 1}L${x1 - 1},${yTop + 1}`}
            stroke={OKABE_ITO.vermillion}
            strokeWidth={1.5}
          />
          {w >= 26 && barH >= 14 && (
            <text x={x0 + 4} y={y + 5} className="vlabel">
              {v.version}
            </text>
          )}
        </g>,
      );
    }
  }

  // Message arrows, newest last.
  const hidden = Math.max(0, inView.length - ARROWS_MAX);
  const arrowData: DrawnArrow[] = [];
  const rejectedEls: React.ReactNode[] = [];
  const requestMarks: React.ReactNode[] = [];
  const selReq = p.selectedRequest;
  // (Labelled ones, hand-offs, are few and always drawn.)
  const shown = [...inView.slice(0, hidden).filter((m) => m.label !== null), ...inView.slice(hidden)];
  let marks = 0;
  for (let i = shown.length - 1; i >= 0; i--) {
    const m = shown[i]!;
    const x0 = cx(m.sentAt);
    const y0 = yOf(m.from);
    const stale = m.deliveredAt === null && m.rejectedAt === null && (m.superseded || m.lostAt !== null || end - m.sentAt > UNDELIVERED_STUB_AFTER_MS);
    const state: DrawnArrow['state'] = m.rejectedAt !== null ? 'rejected' : m.deliveredAt !== null ? 'delivered' : stale ? 'unseen' : 'in-flight';
    let x1 = cx(m.deliveredAt ?? m.rejectedAt ?? end);
    let y1 = yOf(m.to);
    if (stale) {
      // No arrival seen (lost, or resent): draw only where it left from and which way it went.
      const len = Math.hypot(x1 - x0, y1 - y0) || 1;
      const k = Math.min(1, 14 / len);
      x1 = x0 + (x1 - x0) * k;
      y1 = y0 + (y1 - y0) * k;
    }
    const req = m.kind === 'request' && !laneSet.has(m.from) ? requestOfMessage(m.id) : null;
    const isSel =
      selReq !== null &&
      (m.kind === 'request' || m.kind === 'reply') &&
      requestOfMessage(m.id)?.session === selReq.session &&
      requestOfMessage(m.id)?.seq === selReq.seq;
    arrowData.push({ x0, y0, x1, y1, state, ack: m.kind === 'ack', selected: isSel });
    if (req !== null && marks < REQUEST_MARKS_MAX && !m.resend) {
      marks++;
      requestMarks.push(
        <circle
          key={`q${m.uid}`}
          cx={x0}
          cy={clientY}
          r={isSel ? 7 : 5}
          className={`request-mark${isSel ? ' selected' : ''}`}
          data-testid="request-mark"
          data-request={`${req.session}#${req.seq}`}
          onClick={(ev) => {
            ev.stopPropagation();
            p.onSelectRequest(req);
          }}
        >
          <title>{`request ${req.seq} of session ${req.session} → ${m.to} (click for its path)`}</title>
        </circle>,
      );
    }
    if (m.label !== null && state !== 'rejected') {
      // An empty hand-off only says "nothing more from me": drawn faint, without its name.
      const empty = /: 0 units\b/.test(m.label);
      // A labelled app message (a hand-off of units between nodes): few, and what a person watching a
      // membership change looks for, so an element of its own with its name.
      rejectedEls.push(
        <g key={m.uid} className={`msg msg-labelled msg-${state}${empty ? ' msg-labelled-empty' : ''}`} data-testid="message-labelled" data-label={m.label}>
          <title>{`${m.label}: ${m.from} → ${m.to}, sent in v${m.srcVersion} of world-line ${m.worldLine}${state === 'delivered' ? '' : state === 'in-flight' ? ' (in flight)' : ' (not seen arriving)'}`}</title>
          <line x1={x0} y1={y0} x2={x1} y2={y1} />
          {!empty && (
            <text x={(x0 + x1) / 2} y={(y0 + y1) / 2 - 4} className="msg-label" textAnchor="middle">
              {m.label.split(':')[0]}
            </text>
          )}
        </g>,
      );
    }
    if (state === 'rejected') {
      rejectedEls.push(
        <g key={m.uid} className="msg msg-rejected" data-testid="message-rejected">
          <title>{`${m.kind} ${m.from} → ${m.to}, sent in v${m.srcVersion} of world-line ${m.worldLine}; rejected: the receiver is on world-line ${m.receiverWorldLine ?? '?'}`}</title>
          <line x1={x0} y1={y0} x2={x1} y2={y1} />
          <text x={x1} y={y1 + 5} className="reject-mark" textAnchor="middle">
            ✕
          </text>
        </g>,
      );
    }
  }
  arrowData.reverse();

  // The why of a rollback on the stage: each dependency of the plan's paths, dependent → depended-on.
  const whyEls: React.ReactNode[] = [];
  for (const e of p.whyEdges) {
    const a = centre.get(e.from);
    const b = centre.get(e.to);
    if (a === undefined || b === undefined) continue;
    const sameLane = a.y === b.y;
    const ax = sameLane ? a.x0 + 2 : a.x;
    const bx = sameLane ? b.x1 - 2 : b.x;
    const ay = a.y + (sameLane ? -a.barH / 2 : b.y > a.y ? a.barH / 2 : -a.barH / 2);
    const by = b.y + (sameLane ? -b.barH / 2 : b.y > a.y ? -b.barH / 2 - 4 : b.barH / 2 + 4);
    const bend = sameLane ? Math.min(a.laneH / 2, 26) : 0;
    const d = sameLane
      ? `M${ax},${ay}C${ax},${ay - bend} ${bx},${by - bend} ${bx},${by - 3}`
      : `M${ax},${ay}C${ax},${(ay + by) / 2} ${bx},${(ay + by) / 2} ${bx},${by}`;
    const va = model.versions.get(e.from);
    const vb = model.versions.get(e.to);
    whyEls.push(
      <path key={`${e.from}>${e.to}`} d={d} className="why-edge" markerEnd="url(#why-arrow)" data-testid="why-edge">
        <title>{`${va?.node ?? '?'} v${va?.version ?? '?'} depends on ${vb?.node ?? '?'} v${vb?.version ?? '?'}: why it rolled back`}</title>
      </path>,
    );
  }

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
    const laneH = laneHOf(id);
    cutPoints.push([cxv, y - laneH / 2 + 2], [cxv, y + laneH / 2 - 2]);
  }
  const cutPath = cutPoints.map(([a, b], i) => `${i === 0 ? 'M' : 'L'}${a.toFixed(1)},${b.toFixed(1)}`).join('');

  const ticks = x.ticks(Math.max(3, Math.floor(p.width / 160)));
  const hit = (ev: React.MouseEvent): DrawnVersion | undefined => {
    const r = ev.currentTarget.getBoundingClientRect();
    const mx = ev.clientX - r.left;
    const my = ev.clientY - r.top;
    for (let i = drawn.length - 1; i >= 0; i--) {
      const d = drawn[i]!;
      if (mx >= d.x0 - 1 && mx <= d.x1 + 1 && Math.abs(my - d.y) <= d.barH / 2 + 1) return d;
    }
    return undefined;
  };
  const canvasDraw = {
    top: TOP,
    drawn,
    arrowData,
    bands: bands.map(({ w, endAt }) => [cx(w.startAt), cx(endAt)] as const),
    ticks: ticks.map((t) => x(t)),
    laneYs: lanes.map((id) => laneY.get(id)!),
    clientY: clientLane ? clientY : null,
    anyHighlight,
    axisY: height - AXIS_H,
  };
  return (
    <div className="spacetime" data-domain-start={start} data-domain-end={Math.max(viewEnd, start + 1)}>
      <div style={{ position: 'relative', width: p.width, height }}>
        <DiagramCanvas width={p.width} height={height} data={canvasDraw} />
        <svg
          width={p.width}
          height={height}
          style={{ position: 'absolute', left: 0, top: 0 }}
          onClick={(ev) => {
            ev.stopPropagation();
            p.onSelectVersion(hit(ev)?.v.key ?? null);
          }}
          onMouseMove={(ev) => {
            const d = hit(ev);
            setTip(d === undefined ? null : { x: d.x0, y: d.y + d.barH, text: describe(d.v) });
          }}
          onMouseLeave={() => setTip(null)}
          role="img"
          aria-label={`Space-time diagram: ${lanes.length} nodes, world-line ${model.worldLine}. The event table in the drawer is the text alternative.`}
        >
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
            <marker id="why-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0L10,5L0,10z" fill={OKABE_ITO.reddishPurple} />
            </marker>
          </defs>
          {bands.map(({ w }) =>
            w.startAt >= start ? (
              <line
                key={`wl${w.worldLine}`}
                x1={cx(w.startAt)}
                x2={cx(w.startAt)}
                y1={TOP - 4}
                y2={height - AXIS_H}
                className={w.failed.length > 0 ? 'wl-edge failed' : 'wl-edge'}
                data-testid="world-line-band"
              />
            ) : null,
          )}
          {labels.map((l) => (
            <text key={`wll${l.worldLine}`} x={l.x} y={l.row * WL_ROW_H + 15} className="wl-label" data-testid="world-line-label" data-full={l.full}>
              {l.text}
              <title>{`world-line ${l.full}`}</title>
            </text>
          ))}
          {ticks.map((t) => (
            <g key={t} className="tick">
              <text x={x(t)} y={height - 4} textAnchor="middle">
                {fmtT(t - end)}
              </text>
            </g>
          ))}
          {clientLane && (
            <g className="lane clients" data-testid="clients-lane">
              <text x={8} y={clientY + 5} className="lane-label muted">
                clients
              </text>
            </g>
          )}
          {lanes.map((id) => {
            const y = laneY.get(id)!;
            const laneH = laneHOf(id);
            const c = model.compressed.get(id);
            return (
              <g
                key={id}
                className={`lane${p.selectedNode === id ? ' selected' : ''}`}
                data-testid={`lane-${id}`}
                onClick={(ev) => {
                  ev.stopPropagation();
                  p.onSelectNode(id);
                }}
              >
                <rect x={0} y={y - laneH / 2 + 1} width={LABEL_W - 6} height={laneH - 2} className="lane-head" />
                {c !== undefined && c.versions > 0 && (
                  <title>{`${c.versions} older versions compressed (${c.committed} committed, ${c.rolledBack} rolled back)`}</title>
                )}
              </g>
            );
          })}
          <g className="arrows">{rejectedEls}</g>
          <g className="versions">{versionEls}</g>
          <path d={cutPath} className="cut-halo" />
          <path
            d={cutPath}
            className="cut-line"
            data-testid="cut-line"
            data-cut={JSON.stringify(model.cut)}
            data-cut-total={cutTotal}
            data-world-line={model.worldLine}
          >
            <title>{`committed cut (world-line ${model.worldLine}): ${lanes.map((id) => `${id} v${model.cut[id] ?? 0}`).join(', ')}`}</title>
          </path>
          <g className="why-edges">{whyEls}</g>
          <g className="request-marks">{requestMarks}</g>
        </svg>
        {lanes.map((id) => {
          const n = model.nodes.get(id)!;
          const y = laneY.get(id)!;
          const laneH = laneHOf(id);
          const thin = laneBox.get(id)?.thin === true;
          const compact = laneH < 44;
          return (
            <div
              key={id}
              className={`lane-controls status-${n.status}${compact ? ' compact' : ''}${thin ? ' thin' : ''}`}
              style={{ top: y - laneH / 2 + 1, height: laneH - 2, width: LABEL_W - 6 }}
              onClick={() => p.onSelectNode(id)}
            >
              <span className="lane-name" title={p.laneTitles?.get(id)} data-testid={`head-units-${id}`}>
                <strong className="lane-label">{id}</strong>{' '}
                <span className={`lane-status st-${n.status}`} data-testid={`status-${id}`} title={n.status}>
                  {n.status}
                </span>
              </span>
              {p.live && !thin && (
                <span className="lane-buttons">
                  <button
                    type="button"
                    className="danger"
                    data-testid={`kill-${id}`}
                    disabled={p.busy || n.status === 'down'}
                    aria-label={`kill ${id}`}
                    onMouseEnter={() => p.previewAllowed && p.onPreview(id)}
                    onMouseLeave={() => p.onPreview(null)}
                    onFocus={() => p.previewAllowed && p.onPreview(id)}
                    onBlur={() => p.onPreview(null)}
                    onClick={(e) => {
                      e.stopPropagation();
                      p.onKill(id);
                    }}
                  >
                    kill
                  </button>
                  <button
                    type="button"
                    data-testid={`restart-${id}`}
                    aria-label={`restart ${id}`}
                    disabled={p.busy}
                    onClick={(e) => {
                      e.stopPropagation();
                      p.onRestart(id);
                    }}
                  >
                    restart
                  </button>
                </span>
              )}
            </div>
          );
        })}
        {tip !== null && (
          <div className="tip" style={{ left: Math.min(tip.x, p.width - 320), top: tip.y + 4 }} role="tooltip">
            {tip.text}
          </div>
        )}
      </div>
      {hidden > 0 && (
        <div className="note">
          Showing the newest {ARROWS_MAX} of {inView.length} messages in view; narrow the time window or filter message kinds.
        </div>
      )}
    </div>
  );
});

interface DrawnVersion {
  v: VersionView;
  x0: number;
  x1: number;
  y: number;
  h: Highlight | undefined;
  /** The height of its bar (thin lanes have thin bars). */
  barH: number;
}

/** Used only for a lane the layout does not know (never, as the layout has every lane). */
const LANE_MIN_FALLBACK = 24;

/** A version's bar in a lane of height `laneH`: about two fifths of it, thinner in a thin lane. */
function barHeight(laneH: number): number {
  return laneH >= 24 ? Math.max(14, Math.min(30, Math.round(laneH * 0.42))) : Math.max(6, laneH - 5);
}

interface DrawnArrow {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  state: 'delivered' | 'in-flight' | 'unseen' | 'rejected';
  ack: boolean;
  /** A message of the selected request (drawn bold on top). */
  selected: boolean;
}

interface CanvasData {
  top: number;
  axisY: number;
  drawn: DrawnVersion[];
  arrowData: DrawnArrow[];
  bands: (readonly [number, number])[];
  ticks: number[];
  laneYs: number[];
  clientY: number | null;
  anyHighlight: boolean;
}

const HALO: Record<Highlight, string> = {
  selected: '#000000',
  dependency: OKABE_ITO.blue,
  dependent: OKABE_ITO.reddishPurple,
  lost: OKABE_ITO.vermillion,
  must: OKABE_ITO.reddishPurple,
  collateral: '#999999',
  cascade: OKABE_ITO.reddishPurple,
  kept: OKABE_ITO.bluishGreen,
  dim: '#999999',
  focus: '#000000',
};

const hatchCache = new WeakMap<CanvasRenderingContext2D, CanvasPattern | string>();

function hatch(ctx: CanvasRenderingContext2D): CanvasPattern | string {
  const cached = hatchCache.get(ctx);
  if (cached !== undefined) return cached;
  const made = makeHatch(ctx);
  hatchCache.set(ctx, made);
  return made;
}

function makeHatch(ctx: CanvasRenderingContext2D): CanvasPattern | string {
  const c = document.createElement('canvas');
  c.width = 6;
  c.height = 6;
  const g = c.getContext('2d');
  if (g === null) return '#FBE3B0';
  g.fillStyle = '#FBE3B0';
  g.fillRect(0, 0, 6, 6);
  g.strokeStyle = OKABE_ITO.orange;
  g.lineWidth = 2;
  g.beginPath();
  g.moveTo(-1, 7);
  g.lineTo(7, -1);
  g.moveTo(-1, 1);
  g.lineTo(1, -1);
  g.moveTo(5, 7);
  g.lineTo(7, 5);
  g.stroke();
  return ctx.createPattern(c, 'repeat') ?? '#FBE3B0';
}

/**
 * The bulk of the diagram (live versions, message arrows, bands) on a canvas: thousands of shapes
 * redrawn each frame cost a few milliseconds, where as SVG elements they would stall the page.
 */
function DiagramCanvas({ width, height, data }: { width: number; height: number; data: CanvasData }) {
  const ref = useRef<HTMLCanvasElement | null>(null);
  useEffect(() => {
    const canvas = ref.current;
    const ctx = canvas?.getContext('2d') ?? null;
    if (canvas === null || ctx === null) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    data.bands.forEach(([x0, x1], i) => {
      ctx.fillStyle = i % 2 === 0 ? '#F3F3F3' : '#FFFFFF';
      ctx.fillRect(x0, data.top - 4, Math.max(0, x1 - x0), data.axisY - data.top + 4);
    });
    ctx.strokeStyle = '#EEEEEE';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const tx of data.ticks) {
      ctx.moveTo(tx, data.top - 2);
      ctx.lineTo(tx, data.axisY);
    }
    ctx.stroke();
    ctx.strokeStyle = '#E0E0E0';
    ctx.beginPath();
    for (const y of data.laneYs) {
      ctx.moveTo(LABEL_W, y);
      ctx.lineTo(width - RIGHT_PAD, y);
    }
    ctx.stroke();
    if (data.clientY !== null) {
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      ctx.moveTo(LABEL_W, data.clientY);
      ctx.lineTo(width - RIGHT_PAD, data.clientY);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    // Arrows under the versions, grouped by style.
    const styles: [DrawnArrow['state'] | 'ack', string, number[], number][] = [
      ['ack', '#AAAAAA', [], 1],
      ['delivered', '#555555', [], 1],
      ['in-flight', '#888888', [2, 2], 1],
      ['unseen', '#999999', [], 1.5],
    ];
    ctx.globalAlpha = data.anyHighlight ? 0.35 : 1;
    for (const [st, colour, dash, lw] of styles) {
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = lw;
      ctx.setLineDash(dash);
      ctx.beginPath();
      const heads: DrawnArrow[] = [];
      for (const a of data.arrowData) {
        if (a.state === 'rejected') continue;
        if (st === 'ack' ? !a.ack : a.ack || a.state !== st) continue;
        ctx.moveTo(a.x0, a.y0);
        ctx.lineTo(a.x1, a.y1);
        if (a.state === 'delivered') heads.push(a);
      }
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.beginPath();
      for (const a of heads) {
        const ang = Math.atan2(a.y1 - a.y0, a.x1 - a.x0);
        ctx.moveTo(a.x1, a.y1);
        ctx.lineTo(a.x1 - 6 * Math.cos(ang - 0.4), a.y1 - 6 * Math.sin(ang - 0.4));
        ctx.lineTo(a.x1 - 6 * Math.cos(ang + 0.4), a.y1 - 6 * Math.sin(ang + 0.4));
        ctx.closePath();
      }
      ctx.fill();
    }
    // The selected request's messages, bold and on top.
    ctx.globalAlpha = 1;
    ctx.strokeStyle = '#000000';
    ctx.fillStyle = '#000000';
    ctx.lineWidth = 2.5;
    for (const a of data.arrowData) {
      if (!a.selected) continue;
      ctx.beginPath();
      ctx.moveTo(a.x0, a.y0);
      ctx.lineTo(a.x1, a.y1);
      ctx.stroke();
      const ang = Math.atan2(a.y1 - a.y0, a.x1 - a.x0);
      ctx.beginPath();
      ctx.moveTo(a.x1, a.y1);
      ctx.lineTo(a.x1 - 9 * Math.cos(ang - 0.4), a.y1 - 9 * Math.sin(ang - 0.4));
      ctx.lineTo(a.x1 - 9 * Math.cos(ang + 0.4), a.y1 - 9 * Math.sin(ang + 0.4));
      ctx.closePath();
      ctx.fill();
    }
    const hatchFill = hatch(ctx);
    // Halos of the highlighted versions (few), each its own stroke.
    for (const d of data.drawn) {
      const h = d.h;
      if (h === undefined || h === 'dim') continue;
      ctx.globalAlpha = 1;
      ctx.strokeStyle = HALO[h];
      ctx.lineWidth = h === 'lost' ? 4 : 3;
      ctx.setLineDash(h === 'dependency' ? [3, 2] : h === 'collateral' ? [2, 2] : h === 'kept' ? [6, 2] : []);
      ctx.strokeRect(d.x0 - 3, d.y - d.barH / 2 - 3, d.x1 - d.x0 + 6, d.barH + 6);
    }
    ctx.setLineDash([]);
    // The versions (rolled-back ones are SVG above), one path per state and dimming: a few fills and
    // strokes for the thousand boxes of a busy cluster instead of several calls for each box.
    const groups = new Map<string, DrawnVersion[]>();
    for (const d of data.drawn) {
      if (d.v.state === 'rolled-back') continue;
      const key = `${d.v.state}|${data.anyHighlight && d.h === undefined ? 'dim' : ''}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = []));
      g.push(d);
    }
    ctx.font = '14px system-ui, sans-serif';
    const labelW = new Map<number, number>();
    for (const [key, ds] of groups) {
      const state = ds[0]!.v.state;
      ctx.globalAlpha = key.endsWith('|dim') ? 0.28 : 1;
      ctx.fillStyle = state === 'speculative' ? hatchFill : state === 'persisting' ? '#CBE8F8' : STATE_COLOUR.committed;
      ctx.beginPath();
      for (const d of ds) ctx.rect(d.x0, d.y - d.barH / 2, d.x1 - d.x0, d.barH);
      ctx.fill();
      ctx.strokeStyle = STATE_COLOUR[state];
      ctx.lineWidth = state === 'persisting' ? 2 : 1.5;
      ctx.setLineDash(state === 'speculative' ? [4, 2] : state === 'persisting' ? [1.5, 2] : []);
      ctx.beginPath();
      for (const d of ds) ctx.rect(d.x0 + 0.5, d.y - d.barH / 2 + 0.5, Math.max(1, d.x1 - d.x0 - 1), d.barH - 1);
      ctx.stroke();
      ctx.setLineDash([]);
      if (state === 'persisting') {
        // Persisted, waiting for its dependencies to commit: a dot at its end.
        ctx.fillStyle = OKABE_ITO.blue;
        ctx.beginPath();
        for (const d of ds) {
          if (d.v.persistedAt === null) continue;
          ctx.moveTo(d.x1 - 2.5, d.y);
          ctx.arc(d.x1 - 5, d.y, 2.5, 0, Math.PI * 2);
        }
        ctx.fill();
      }
      ctx.fillStyle = state === 'committed' ? '#FFFFFF' : '#111111';
      for (const d of ds) {
        const w = d.x1 - d.x0;
        if (w < 18 || d.barH < 14) continue;
        const label = String(d.v.version);
        // Digits have one width in the font's figures: measure each length once.
        let lw = labelW.get(label.length);
        if (lw === undefined) labelW.set(label.length, (lw = ctx.measureText('0'.repeat(label.length)).width));
        if (lw + 7 <= w) ctx.fillText(label, d.x0 + 4, d.y + 5);
      }
    }
    ctx.globalAlpha = 1;
  });
  return <canvas ref={ref} style={{ width, height, position: 'absolute', left: 0, top: 0 }} aria-hidden="true" />;
}
