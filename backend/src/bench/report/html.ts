import type { Mode } from '@dse/shared';
import type { BenchResult } from './types';

/** Okabe-Ito colours, as in the playground; each mode also has its own dash and marker shape. */
export const MODE_STYLE: Record<Mode, { color: string; dash: string; label: string }> = {
  speculative: { color: '#E69F00', dash: '6 3', label: 'speculative (DSE)' },
  durable: { color: '#0072B2', dash: '', label: 'durable (persist every step)' },
  none: { color: '#009E73', dash: '2 3', label: 'none (no persistence)' },
};

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (x: number): string => (Number.isInteger(x) || x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));

export interface Series {
  name: string;
  color: string;
  dash: string;
  marker: 'circle' | 'square' | 'triangle' | 'diamond';
  points: [number, number][];
}

interface ChartOpts {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xLog?: boolean;
  yLog?: boolean;
  xTicks?: number[];
  width?: number;
  height?: number;
}

function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of [1, 2, 5]) out.push(m * 10 ** e);
    return out.filter((t) => t >= lo * 0.999 && t <= hi * 1.001);
  }
  const span = hi - lo || 1;
  const step0 = 10 ** Math.floor(Math.log10(span / 5));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6) ?? step0 * 10;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Math.round(t * 1e6) / 1e6);
  return out;
}

function marker(kind: Series['marker'], x: number, y: number, color: string): string {
  switch (kind) {
    case 'square':
      return `<rect x="${x - 3.5}" y="${y - 3.5}" width="7" height="7" fill="${color}"/>`;
    case 'triangle':
      return `<path d="M${x},${y - 4.5}L${x + 4.5},${y + 3.5}L${x - 4.5},${y + 3.5}Z" fill="${color}"/>`;
    case 'diamond':
      return `<path d="M${x},${y - 5}L${x + 5},${y}L${x},${y + 5}L${x - 5},${y}Z" fill="${color}"/>`;
    default:
      return `<circle cx="${x}" cy="${y}" r="4" fill="${color}"/>`;
  }
}

/** A line chart as inline SVG (no script, no network). */
export function lineChart(o: ChartOpts): string {
  const W = o.width ?? 640;
  const H = o.height ?? 360;
  const m = { l: 64, r: 16, t: 36, b: 72 };
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0) && (!o.yLog || y > 0));
  if (pts.length === 0) return `<figure><figcaption>${esc(o.title)}: no data</figcaption></figure>`;
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (o.yLog) {
    y0 = 10 ** Math.floor(Math.log10(y0));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else {
    y0 = 0;
    y1 = y1 * 1.1 || 1;
  }
  if (o.xLog) {
    x0 = x0 / 1.2;
    x1 = x1 * 1.2;
  } else if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  } else {
    const pad = (x1 - x0) * 0.05;
    x0 = Math.max(0, x0 - pad);
    x1 += pad;
  }
  const sx = (x: number): number =>
    m.l + ((o.xLog ? Math.log10(x) - Math.log10(x0) : x - x0) / (o.xLog ? Math.log10(x1) - Math.log10(x0) : x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number): number =>
    H - m.b - ((o.yLog ? Math.log10(y) - Math.log10(y0) : y - y0) / (o.yLog ? Math.log10(y1) - Math.log10(y0) : y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-weight="600">${esc(o.title)}</text>`);
  for (const t of niceTicks(y0, y1, o.yLog === true)) {
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#ddd"/><text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`,
    );
  }
  for (const t of o.xTicks ?? niceTicks(x0, x1, o.xLog === true)) {
    parts.push(
      `<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${sx(t)}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
  );
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - m.b + 34}" text-anchor="middle" font-size="12">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0) && (!o.yLog || y > 0));
    if (p.length > 1)
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dash !== '' ? `stroke-dasharray="${s.dash}"` : ''} points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`,
      );
    for (const [x, y] of p) parts.push(`${marker(s.marker, sx(x), sy(y), s.color)}<title>${esc(s.name)}: ${fmt(x)}, ${fmt(y)}</title>`);
    const lx = m.l + (i % 2) * ((W - m.l - m.r) / 2);
    const yy = H - m.b + 52 + Math.floor(i / 2) * 14;
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${yy - 4}" y2="${yy - 4}" stroke="${s.color}" stroke-width="2" ${s.dash !== '' ? `stroke-dasharray="${s.dash}"` : ''}/>${marker(s.marker, lx + 12, yy - 4, s.color)}<text x="${lx + 30}" y="${yy}" font-size="11">${esc(s.name)}</text>`,
    );
  });
  const rows = Math.ceil(o.series.length / 2);
  const height = H + Math.max(0, rows - 1) * 14;
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="${esc(o.title)}" font-family="system-ui, sans-serif">${parts.join('')}</svg></figure>`;
}

const MARKERS: Record<Mode, Series['marker']> = { speculative: 'circle', durable: 'square', none: 'triangle' };

export function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** The HTML report: charts (latency against steps, throughput against latency, commit lag), tables, and the raw JSON. */
export function renderHtml(r: BenchResult): string {
  const modes = [...new Set(r.workflow.map((w) => w.mode))];
  const steps = [...new Set(r.workflow.map((w) => w.steps))].sort((a, b) => a - b);
  const latency = lineChart({
    title: 'Workflow latency against steps (p50)',
    xLabel: 'steps (each a round trip to a service on another node process)',
    yLabel: 'ms, request → speculative outcome (log)',
    yLog: true,
    xTicks: steps,
    series: [
      ...modes.map((m) => ({
        name: MODE_STYLE[m].label,
        color: MODE_STYLE[m].color,
        dash: MODE_STYLE[m].dash,
        marker: MARKERS[m],
        points: r.workflow.filter((w) => w.mode === m).map((w): [number, number] => [w.steps, w.p50Ms]),
      })),
      ...(r.workflowCommit.filter((w) => w.mode === 'speculative').length > 0
        ? [
            {
              name: 'speculative, until committed',
              color: '#CC79A7',
              dash: '1 3',
              marker: 'diamond' as const,
              points: r.workflowCommit.filter((w) => w.mode === 'speculative').map((w): [number, number] => [w.steps, w.p50Ms]),
            },
          ]
        : []),
    ],
  });
  const kvModes = [...new Set([...r.kv.map((k) => k.mode), ...r.kvLoad.map((k) => k.mode)])];
  const throughput = lineChart({
    title: 'Key-value: throughput against latency (p50)',
    xLabel: 'achieved ops/s (fixed offered loads in order, then saturation)',
    yLabel: 'ms, p50 (log)',
    yLog: true,
    series: kvModes.map((m) => ({
      name: MODE_STYLE[m].label,
      color: MODE_STYLE[m].color,
      dash: MODE_STYLE[m].dash,
      marker: MARKERS[m],
      points: [
        ...r.kvLoad.filter((l) => l.mode === m).map((l): [number, number] => [l.achievedOpsPerSec, l.p50Ms]),
        ...r.kv.filter((k) => k.mode === m).map((k): [number, number] => [k.opsPerSec, k.p50Ms]),
      ],
    })),
  });
  const commitModes = [...new Set(r.workflowCommit.map((w) => w.mode))];
  const lag = lineChart({
    title: 'Commit lag: answer and commit (p50)',
    xLabel: 'steps',
    yLabel: 'ms (log)',
    yLog: true,
    xTicks: steps,
    series: [
      ...(modes.includes('speculative')
        ? [
            {
              name: 'speculative: answer',
              color: MODE_STYLE.speculative.color,
              dash: MODE_STYLE.speculative.dash,
              marker: 'circle' as const,
              points: r.workflow.filter((w) => w.mode === 'speculative').map((w): [number, number] => [w.steps, w.p50Ms]),
            },
          ]
        : []),
      ...commitModes.map((m) => ({
        name: `${m}: committed`,
        color: m === 'speculative' ? '#CC79A7' : '#56B4E9',
        dash: m === 'speculative' ? '1 3' : '8 2',
        marker: m === 'speculative' ? ('diamond' as const) : ('square' as const),
        points: r.workflowCommit.filter((w) => w.mode === m).map((w): [number, number] => [w.steps, w.p50Ms]),
      })),
    ],
  });
  const wfRows = steps.flatMap((s) =>
    modes.map((m) => {
      const w = r.workflow.find((x) => x.steps === s && x.mode === m);
      const c = r.workflowCommit.find((x) => x.steps === s && x.mode === m);
      return [s, m, w?.n ?? 0, w?.p50Ms ?? '—', w?.p99Ms ?? '—', c?.p50Ms ?? '—', c?.p99Ms ?? '—'];
    }),
  );
  const rec = r.recovery;
  const title = `DSE benchmark — ${r.storage}${r.storageDelayMs > 0 ? ` + ${r.storageDelayMs} ms per commit (modelled)` : ''}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:1340px;margin:24px auto;padding:0 16px;color:#222}
.charts{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:4px;background:#fff}
table{border-collapse:collapse;margin:8px 0 20px} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f4f4f4}
td:nth-child(2){text-align:left} .note{color:#555;font-size:14px} .met{color:#006d4f} .miss{color:#b03000;font-weight:600}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px} pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:300px;font-size:12px}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="note">${esc(r.startedAt)} · <code>${esc(r.command)}</code> · ${esc(r.storageDescribe)} · ${r.cluster.nodes} node processes, checkpoint every ${r.cluster.checkpointIntervalMs} ms, ${esc(r.cluster.relay)} ·
machine: ${r.machine.cpus} CPUs, load ${r.machine.loadAvg1m.toFixed(1)} at start, Node ${esc(r.machine.node)} · ${(r.elapsedMs / 1000).toFixed(0)} s.
${r.storageDelayMs > 0 ? `<br><b>Modelled:</b> every storage commit waited ${r.storageDelayMs} ms more than the real one, to model a cloud disk.` : ''}
Figures from one run on a shared machine: compare the modes by their ratios, not absolute numbers.</p>
<h2>Goals</h2>
<ul>${r.goals.map((g) => `<li class="${g.met === false ? 'miss' : 'met'}">${g.met === null ? '?' : g.met ? '✓ met' : '✕ missed'} — ${esc(g.goal)}: ${g.value ?? '—'} (${esc(g.target)})</li>`).join('')}</ul>
<div class="charts">${latency}${throughput}${lag}</div>
<h2>Workflows</h2>
<p class="note">Each workflow is started on an orchestrator node (rotating over the nodes); each step is a reservation on another node process, run as an sthread. Answer: request → speculative outcome. Committed: request → the outcome durable.</p>
${table(['steps', 'mode', 'n', 'p50 ms', 'p99 ms', 'committed p50 ms', 'committed p99 ms'], wfRows)}
<h2>Key-value store</h2>
${table(
  ['', 'mode', 'ops/s', 'p50 ms', 'p99 ms', 'n', 'sessions', 'errors'],
  r.kv.map((k) => ['saturation', k.mode, k.opsPerSec, k.p50Ms, k.p99Ms, k.n, k.sessions, k.errors]),
)}
${table(
  ['offered ops/s', 'mode', 'achieved ops/s', 'p50 ms', 'p99 ms', 'n', 'dropped'],
  r.kvLoad.map((l) => [l.offeredOpsPerSec, l.mode, l.achievedOpsPerSec, l.p50Ms, l.p99Ms, l.n, l.dropped]),
)}
<h2>CPU</h2>
<p class="note">Per mode and phase, in % of one core: the server process (relay of every message, coordinator, sessions, storage client${r.storage === 'pglite' ? ', and PGlite itself' : ''}) and all node processes together.</p>
${table(
  ['phase', 'mode', 'server %', 'nodes %', 'server event-loop delay p99 ms', 'max ms', 'wall ms'],
  r.cpu.map((c) => [c.phase, c.mode, c.serverCpuPct, c.nodesCpuPct ?? '—', c.serverLoopDelayP99Ms, c.serverLoopDelayMaxMs, c.wallMs]),
)}
<h2>Recovery</h2>
<p>${rec.kills} SIGKILLs in speculative mode, checkpoint every ${rec.checkpointIntervalMs} ms: kill → first commit on the new world-line, median <b>${rec.killToFirstCommitMs} ms</b> (max ${rec.maxKillToFirstCommitMs} ms); detection median ${rec.detectMs} ms; versions rolled back (median) ${rec.rolledBackVersions}.${rec.stalls > 0 ? ` <b>${rec.stalls} kill(s) with no commit within 30 s</b> (counted at 30 s).` : ''}</p>
${table(
  ['kill', 'victim', 'detected ms', 'world-line ms', 'first commit ms', 'versions rolled back'],
  rec.each.map((k, i) => [i + 1, k.victim, k.detectMs, k.worldLineMs, k.stalled ? `> ${k.killToFirstCommitMs}` : k.killToFirstCommitMs, k.rolledBackVersions]),
)}
<h2>Raw result</h2>
<pre>${esc(JSON.stringify(r, null, 1))}</pre>
</body></html>
`;
}
