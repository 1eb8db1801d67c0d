/**
 * What every benchmark's HTML report shares: the page (title, a note on how the figures were made,
 * the report's own content, and the raw result as JSON), its style, tables, the goals list, and line
 * charts as inline SVG. A report is one self-contained file: no script, no network.
 */

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (x: number): string => (Number.isInteger(x) || x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));

/** How a curve is drawn: colour, dash pattern (empty: solid) and marker shape. */
export interface SeriesStyle {
  color: string;
  dash: string;
  marker: 'circle' | 'square' | 'triangle' | 'diamond';
}

export interface Series extends SeriesStyle {
  name: string;
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

/** Okabe-Ito colours, each with its own dash and marker, for reports whose curves are not modes. */
const PALETTE: readonly SeriesStyle[] = [
  { color: '#0072B2', dash: '', marker: 'circle' },
  { color: '#E69F00', dash: '6 3', marker: 'square' },
  { color: '#009E73', dash: '2 3', marker: 'triangle' },
  { color: '#CC79A7', dash: '8 2', marker: 'diamond' },
  { color: '#D55E00', dash: '1 3', marker: 'circle' },
  { color: '#56B4E9', dash: '4 2', marker: 'square' },
];

/** The `i`-th curve's style (the palette repeats past six). */
export const seriesStyle = (i: number): SeriesStyle => PALETTE[i % PALETTE.length]!;

/** A table of plain text cells (escaped); a null cell shows as a dash. */
export function table(head: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c === null ? '—' : String(c))}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** A goal a benchmark checks: its value in this run, the target, and whether it was met (null: not measured). */
export interface Goal {
  goal: string;
  value: number | null;
  target: string;
  met: boolean | null;
}

/** The goals, each marked met, missed or unknown. */
export function goalList(goals: readonly Goal[]): string {
  return `<ul>${goals.map((g) => `<li class="${g.met === false ? 'miss' : 'met'}">${g.met === null ? '?' : g.met ? '✓ met' : '✕ missed'} — ${esc(g.goal)}: ${g.value ?? '—'} (${esc(g.target)})</li>`).join('')}</ul>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:1340px;margin:24px auto;padding:0 16px;color:#222}
.charts{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:4px;background:#fff}
table{border-collapse:collapse;margin:8px 0 20px} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f4f4f4}
.note{color:#555;font-size:14px} .met{color:#006d4f} .miss{color:#b03000;font-weight:600}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px} pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:300px;font-size:12px}`;

export interface ReportPage {
  /** The page's title and heading (plain text). */
  title: string;
  /** How the figures were made: when, the command, the machine (HTML). */
  note: string;
  /** The report's own content (HTML). */
  body: string;
  /** The result, shown as JSON at the end. */
  raw: unknown;
  /** Style rules of this report only, after the shared ones. */
  style?: string;
}

/** A whole report page. */
export function reportPage(p: ReportPage): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(p.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
${STYLE}${p.style === undefined ? '' : `\n${p.style}`}
</style></head><body>
<h1>${esc(p.title)}</h1>
<p class="note">${p.note}</p>
${p.body}
<h2>Raw result</h2>
<pre>${esc(JSON.stringify(p.raw, null, 1))}</pre>
</body></html>
`;
}
