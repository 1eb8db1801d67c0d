import type { Mode } from '@dse/shared';
import type { BenchResult } from './types';
import { esc, goalList, lineChart, reportPage, table, type Series } from './page';

/** Okabe-Ito colours, as in the playground; each mode also has its own dash and marker shape. */
export const MODE_STYLE: Record<Mode, { color: string; dash: string; label: string }> = {
  speculative: { color: '#E69F00', dash: '6 3', label: 'speculative (DSE)' },
  durable: { color: '#0072B2', dash: '', label: 'durable (persist every step)' },
  none: { color: '#009E73', dash: '2 3', label: 'none (no persistence)' },
};

const MARKERS: Record<Mode, Series['marker']> = { speculative: 'circle', durable: 'square', none: 'triangle' };

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
  return reportPage({
    title,
    note: `${esc(r.startedAt)} · <code>${esc(r.command)}</code> · ${esc(r.storageDescribe)} · ${r.cluster.nodes} node processes, checkpoint every ${r.cluster.checkpointIntervalMs} ms, ${esc(r.cluster.relay)} ·
machine: ${r.machine.cpus} CPUs, load ${r.machine.loadAvg1m.toFixed(1)} at start, Node ${esc(r.machine.node)} · ${(r.elapsedMs / 1000).toFixed(0)} s.
${r.storageDelayMs > 0 ? `<br><b>Modelled:</b> every storage commit waited ${r.storageDelayMs} ms more than the real one, to model a cloud disk.` : ''}
Figures from one run on a shared machine: compare the modes by their ratios, not absolute numbers.`,
    style: 'td:nth-child(2){text-align:left}',
    body: `<h2>Goals</h2>
${goalList(r.goals)}
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
)}`,
    raw: r,
  });
}
