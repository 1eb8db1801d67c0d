import { esc, goalList, lineChart, reportPage, seriesStyle, table } from './page';
import type { ScaleResult, SoakResult } from './live-types';

const machineNote = (r: { startedAt: string; command: string; machine: SoakResult['machine']; compiled: boolean; elapsedMs: number }): string =>
  `${esc(r.startedAt)} · <code>${esc(r.command)}</code> · ${r.compiled ? 'compiled JavaScript (backend/dist)' : 'TypeScript under tsx'} · machine: ${r.machine.cpus} CPUs, load ${r.machine.loadAvgStart.join(' ')} at start, ${r.machine.loadAvgEnd.join(' ')} at the end (shared with other work), Node ${esc(r.machine.node)} · ${(r.elapsedMs / 60_000).toFixed(1)} min.`;

/** `bench:scale`: cost against the number of node processes. */
export function renderScaleHtml(r: ScaleResult): string {
  const ns = r.rows.map((x) => x.nodes);
  const chart = (title: string, yLabel: string, series: { name: string; points: [number, number][] }[]): string =>
    lineChart({ title, xLabel: 'node processes', yLabel, xTicks: ns, series: series.map((s, i) => ({ ...s, ...seriesStyle(i) })) });
  const body = `<h2>Goals</h2>
${goalList(r.goals)}
<div class="charts">
${chart('Memory against N', 'MB (resident)', [
  { name: 'server, idle (after settling)', points: r.rows.map((x) => [x.nodes, x.serverIdle.rssMb]) },
  { name: 'server, after load and kills', points: r.rows.map((x) => [x.nodes, x.serverAfter.rssMb]) },
  { name: 'node process, median', points: r.rows.map((x) => [x.nodes, x.nodeRssMedianMb]) },
  { name: 'node process, max', points: r.rows.map((x) => [x.nodes, x.nodeRssMaxMb]) },
])}
${chart('Start-up and recovery against N', 'ms', [
  { name: 'start-up (every node up)', points: r.rows.map((x) => [x.nodes, x.startupMs]) },
  { name: 'recovery, SIGKILL → first commit (median)', points: r.rows.map((x) => [x.nodes, x.recovery.medianMs]) },
])}
${chart('Key-value throughput against N', 'ops/s at saturation', [{ name: 'speculative', points: r.rows.map((x) => [x.nodes, x.kv.opsPerSec]) }])}
</div>
${r.failed.map((f) => `<p class="miss">${f.nodes} node processes: not measured: ${esc(f.error)}</p>`).join('')}
<h2>Per cluster size</h2>
${table(
  [
    'nodes',
    'start-up ms',
    'restarted at start-up',
    'server MB idle',
    'server heap MB idle',
    'node MB median',
    'node MB max',
    'server MB after',
    'kv ops/s',
    'kv p50 ms',
    'kv p99 ms',
    'recovery median ms',
    'max ms',
    'stalls',
    'load 1m',
  ],
  r.rows.map((x) => [
    x.nodes,
    x.startupMs,
    x.startupRestarts,
    x.serverIdle.rssMb,
    x.serverIdle.heapUsedMb,
    x.nodeRssMedianMb,
    x.nodeRssMaxMb,
    x.serverAfter.rssMb,
    x.kv.opsPerSec,
    x.kv.p50Ms,
    x.kv.p99Ms,
    x.recovery.medianMs,
    x.recovery.maxMs,
    x.recovery.stalls,
    x.loadAvg1m,
  ]),
)}`;
  return reportPage({
    title: 'DSE live cluster at scale',
    note: `${machineNote(r)} Storage ${r.storage}; checkpoint every ${r.checkpointIntervalMs} ms; memory read ${r.settleS} s after every node was up. The server's figure is its whole process (PGlite's worker thread included).`,
    body,
    raw: r,
  });
}

/** `bench:soak`: memory, storage and event-loop delay against time. */
export function renderSoakHtml(r: SoakResult): string {
  const ids = Object.keys(r.samples[0]?.nodes ?? {});
  const t = (f: (s: SoakResult['samples'][number]) => number | null): [number, number][] =>
    r.samples.filter((s) => f(s) !== null).map((s): [number, number] => [s.tMin, f(s)!]);
  const chart = (title: string, yLabel: string, series: { name: string; points: [number, number][] }[]): string =>
    lineChart({ title, xLabel: 'minutes', yLabel, width: 660, series: series.map((s, i) => ({ ...s, ...seriesStyle(i) })) });
  const sl = r.slopesPerHour;
  const body = `<h2>Slopes per hour (after ${r.warmupMin} min, over ${sl.spanMin} min)</h2>
${table(
  ['what', 'slope per hour'],
  [
    ['server resident set, MB', sl.serverRssMb ?? '—'],
    ['server JavaScript heap used, MB', sl.serverHeapUsedMb ?? '—'],
    ...Object.entries(sl.nodesRssMb).map(([id, v]): [string, string | number] => [`node ${id} resident set, MB (over its last life)`, v ?? '—']),
    ['checkpoint rows', sl.rows ?? '—'],
    ['checkpoint table, MB', sl.tableMb ?? '—'],
    ['PGlite folder, MB', sl.folderMb ?? '—'],
  ],
)}
<p>Storage: at most ${r.storageBound.maxRowsFirstHalf ?? '—'} rows in the first half, ${r.storageBound.maxRowsSecondHalf ?? '—'} in the second; at the end ${r.storageBound.lastRows ?? '—'} rows, table ${r.storageBound.lastTableBytes === null ? '—' : (r.storageBound.lastTableBytes / 1048576).toFixed(1)} MB.
${r.kills.length} kills: SIGKILL → first commit on the new world-line, median ${r.recovery.medianMs ?? '—'} ms, max ${r.recovery.maxMs ?? '—'} ms, ${r.recovery.stalls} without a commit within 30 s.
Server event-loop delay: p99 per ${r.sampleS} s, median ${r.loopDelay.p99MedianMs} ms, worst ${r.loopDelay.p99MaxMs} ms; max ${r.loopDelay.maxMs} ms.</p>
<div class="charts">
${chart('Server memory against time', 'MB', [
  { name: 'resident set (whole process)', points: t((s) => s.server.rssMb) },
  { name: 'JavaScript heap used', points: t((s) => s.server.heapUsedMb) },
  { name: 'external (buffers)', points: t((s) => s.server.externalMb) },
])}
${chart(
  'Node processes against time',
  'MB resident (a gap or drop: killed and restarted)',
  ids.map((id) => ({ name: id, points: t((s) => s.nodes[id] ?? null) })),
)}
${chart('Storage against time', 'checkpoint rows', [{ name: 'rows held', points: t((s) => s.rows) }])}
${chart('Storage bytes against time', 'MB', [
  { name: 'checkpoint table (with indexes, TOAST)', points: t((s) => (s.tableBytes === null ? null : s.tableBytes / 1048576)) },
  { name: 'PGlite folder on disk', points: t((s) => (s.folderBytes === null ? null : s.folderBytes / 1048576)) },
])}
${chart('Server event-loop delay against time', 'ms', [
  { name: `p99 per ${r.sampleS} s`, points: t((s) => s.loopP99Ms) },
  { name: 'p50', points: t((s) => s.loopP50Ms) },
])}
${chart('Machine load against time', 'load average, 1 min', [{ name: 'load', points: t((s) => s.load1m) }])}
</div>
<h2>Kills</h2>
${table(
  ['minute', 'victim', 'kill → first commit ms'],
  r.kills.map((k) => [k.tMin, k.victim, k.killToFirstCommitMs ?? '> 30000']),
)}`;
  return reportPage({
    title: `DSE live cluster: ${r.minutes} min soak`,
    note: `${machineNote(r)} ${esc(r.storageDescribe)}; ${r.nodes} node processes (the first ${r.spare} never killed), workload ${esc(r.workload.kind)} at ${r.workload.rate}/s, a SIGKILL every ${r.killEveryS} s; a sample every ${r.sampleS} s. The server's figure is its whole process (PGlite's worker thread included).`,
    body,
    raw: r,
  });
}
