import { describe, expect, it } from 'vitest';
import { renderBigHtml, type BigRow } from '../../src/bench/checkpoint-big';
import { renderHtml } from '../../src/bench/report/html';
import { renderScaleHtml as renderLiveScaleHtml, renderSoakHtml } from '../../src/bench/report/live-html';
import type { ScaleResult as LiveScaleResult, SoakResult } from '../../src/bench/report/live-types';
import { renderScaleHtml as renderSimScaleHtml, type ScaleResult as SimScaleResult } from '../../src/bench/report/scale-html';
import type { Histogram, Percentiles } from '../../src/bench/report/stats';
import type { BenchResult } from '../../src/bench/report/types';
import type { ServerMemory } from '../../src/bench/live/memory';

/**
 * Every benchmark's HTML report, rendered from a small made-up result (no benchmark runs): one whole
 * self-contained page each (the shared shell of report/page.ts), with its charts and tables, and
 * every table row as wide as its head.
 */

const pct: Percentiles = { n: 2, p50Ms: 3.5, p90Ms: 4, p99Ms: 9.25, maxMs: 10, meanMs: 4 };
const hist: Histogram = { edgesMs: [1, 10], counts: [1, 1] };
const mem: ServerMemory = { rssMb: 120.5, heapUsedMb: 40.2, heapTotalMb: 60, externalMb: 3.1 };
const modes = ['none', 'speculative', 'durable'] as const;
const bench: BenchResult = {
  schema: 1,
  storage: 'pglite',
  storageDescribe: 'PGlite in /tmp/x <&>',
  storageDelayMs: 1,
  storageDelayModelled: true,
  quick: true,
  command: 'npm run bench -- --quick',
  startedAt: '2025-01-01T00:00:00.000Z',
  elapsedMs: 61234,
  machine: { cpus: 2, loadAvg1m: 1.23, node: 'v20.19.0', platform: 'linux' },
  deployment: 'processes',
  observation: 'full',
  cluster: { nodes: 4, rounds: 2, checkpointIntervalMs: 50, cut: 'exact', relay: 'relay via server' },
  peers: [],
  peersSkipped: 'needs PostgreSQL',
  workflow: [1, 2, 5, 10].flatMap((steps) => modes.map((mode, i) => ({ ...pct, p50Ms: steps * (i + 1), steps, mode, hist }))),
  workflowCommit: [1, 2, 5, 10].flatMap((steps) =>
    (['speculative', 'durable'] as const).map((mode, i) => ({ ...pct, p50Ms: steps * (i + 3), steps, mode, hist })),
  ),
  kv: modes.map((mode, i) => ({ mode, opsPerSec: 1000 * (i + 1), p50Ms: 2 + i, p99Ms: 9, n: 100, sessions: 4, seconds: 1, errors: 0 })),
  kvLoad: modes.flatMap((mode, i) =>
    [100, 200].map((o) => ({ mode, offeredOpsPerSec: o, achievedOpsPerSec: o - i, p50Ms: 1 + i, p99Ms: 5, n: 10, dropped: 0, seconds: 1 })),
  ),
  recovery: {
    mode: 'speculative',
    checkpointIntervalMs: 50,
    kills: 2,
    killToFirstCommitMs: 200,
    rolledBackVersions: 3,
    detectMs: 20,
    maxKillToFirstCommitMs: 300,
    stalls: 1,
    each: [
      { victim: 'n2', detectMs: 20, worldLineMs: 30, killToFirstCommitMs: 200, rolledBackVersions: 3, stalled: false },
      { victim: 'n3', detectMs: 21, worldLineMs: 31, killToFirstCommitMs: 30000, rolledBackVersions: 1, stalled: true },
    ],
  },
  cpu: modes.map((mode) => ({
    mode,
    phase: 'workflow',
    serverCpuPct: 50,
    nodesCpuPct: mode === 'none' ? null : 80,
    wallMs: 1000,
    serverLoopDelayP99Ms: 12,
    serverLoopDelayMaxMs: 40,
  })),
  ratios: {
    durableOverSpeculativeP50At5: 2,
    speculativeOverNoneP50At5: 1,
    kvSpeculativeOverNoneThroughput: 1,
    commitOverAnswerP50At5: 1,
    peerOverSpeculativeP50At5: null,
    peerOverCommitP50At5: null,
  },
  goals: [
    { goal: 'DBOS answer', value: null, target: '> 2x', met: null },
    { goal: 'kv overhead', value: 1.2, target: '< 1.5', met: true },
    { goal: 'recovery', value: 900, target: '< 500 ms', met: false },
  ],
};
const machine = { cpus: 2, node: 'v20.19.0', platform: 'linux', loadAvgStart: [1, 2, 3], loadAvgEnd: [0.5, 1, 1.5] };
const liveScale: LiveScaleResult = {
  schema: 1,
  kind: 'scale',
  command: 'npm run bench:scale',
  compiled: true,
  startedAt: '2025-01-01T00:00:00.000Z',
  elapsedMs: 600000,
  machine,
  storage: 'pglite',
  checkpointIntervalMs: 100,
  settleS: 10,
  rows: [4, 8, 16].map((nodes) => ({
    nodes,
    startupMs: nodes * 100,
    startupRestarts: 0,
    serverIdle: mem,
    nodeRssMb: [50],
    nodeRssMedianMb: 50,
    nodeRssMaxMb: 60,
    nodePrivateMedianMb: 20,
    serverAfter: mem,
    kv: { sessions: 8, seconds: 5, opsPerSec: 900 / nodes, p50Ms: 3, p99Ms: 20, errors: 0 },
    recovery: { kills: 3, medianMs: 200 + nodes, maxMs: 400, detectMedianMs: 30, stalls: 0 },
    loadAvg1m: 1.5,
  })),
  failed: [{ nodes: 32, error: 'out of <memory>' }],
  goals: [{ goal: 'memory', value: 10, target: '< 20 MB a node', met: true }],
};
const soak: SoakResult = {
  schema: 1,
  kind: 'soak',
  command: 'npm run bench:soak',
  compiled: false,
  startedAt: '2025-01-01T00:00:00.000Z',
  elapsedMs: 3300000,
  machine,
  storage: 'pglite',
  storageDescribe: 'PGlite in /tmp/s',
  nodes: 4,
  spare: 1,
  minutes: 55,
  killEveryS: 60,
  sampleS: 10,
  warmupMin: 5,
  workload: { kind: 'kv', rate: 50 },
  kills: [
    { tMin: 1, victim: 'n2', killToFirstCommitMs: 207 },
    { tMin: 2, victim: 'n3', killToFirstCommitMs: null },
  ],
  recovery: { n: 2, medianMs: 207, maxMs: 300, stalls: 1 },
  slopesPerHour: { spanMin: 50, serverRssMb: 16, serverHeapUsedMb: 2, nodesRssMb: { n1: 1, n2: null }, rows: 0, tableMb: 0.1, folderMb: 59 },
  storageBound: { maxRowsFirstHalf: 100, maxRowsSecondHalf: 101, lastRows: 99, lastTableBytes: 2097152, lastFolderBytes: 1e8 },
  loopDelay: { p99MedianMs: 10, p99MaxMs: 30, maxMs: 50 },
  serverLogTail: [],
  samples: [0, 1, 2, 3].map((i) => ({
    tMin: i,
    server: mem,
    nodes: { n1: 50 + i, n2: i === 2 ? null : 40 },
    rows: 100 + i,
    tableBytes: i === 1 ? null : 2e6,
    folderBytes: 1e8 + i * 1e6,
    loopP50Ms: 1,
    loopP99Ms: 10,
    loopMaxMs: 20,
    worldLine: i,
    kills: i,
    load1m: 1,
  })),
};
const cost = (algorithm: 'before' | 'after', nodes: number, pending: number) => ({
  algorithm,
  nodes,
  pending,
  reports: 100,
  usPerReport: 10 * nodes,
  meanUsPerReport: 12,
  cutChanges: 5,
  usPerCutChange: null,
  usPerOtherReport: 8,
});
const simScale: SimScaleResult = {
  benchmark: 'scale',
  startedAt: '2025-01-01T00:00:00.000Z',
  command: 'npm run bench:sim',
  machine: { cpus: 2, loadAvg: [1, 2, 3], node: 'v20' },
  seedsAtN4: 20,
  workload: { sessions: 3, requestsPerSession: 10 },
  sim: [4, 8].flatMap((nodes) =>
    [
      { nodes, mode: 'speculative', cut: 'exact', coordinator: 'after' as const },
      { nodes, mode: 'durable', cut: 'cheap', coordinator: 'after' as const },
      { nodes, mode: 'speculative', cut: 'exact', coordinator: 'before' as const },
    ].map((c) => ({
      ...c,
      seeds: 10,
      seedsPerMinute: 100 / nodes,
      seedsPerCpuMinute: 110 / nodes,
      simRequestsPerSec: 1000,
      requestsPerSeed: 30,
      crashesPerSeed: 2,
      violations: 0,
      reportsPerSeed: 50,
      cutChangesPerSeed: 20,
      coordinatorUsPerReport: 5 * nodes,
      coordinatorMeanUsPerReport: 6,
      coordinatorUsPerCutChange: nodes === 4 ? null : 9,
      coordinatorUsPerOtherReport: 3,
      coordinatorShareOfTime: 0.123,
    })),
  ),
  steady: [cost('before', 4, 0), cost('after', 4, 0), cost('before', 8, 0), cost('after', 8, 0)],
  chain: [cost('before', 4, 100), cost('after', 4, 100), cost('before', 4, 1000), cost('after', 4, 1000)],
  chainNodes: 4,
  releases: [{ algorithm: 'before', pending: 1000, ms: 5, usPerCommittedVersion: 5 }],
  elapsedMs: 30000,
};
const big = (backend: string, keys: number): BigRow => ({
  backend,
  keys,
  fullMs: 100,
  deltas: [
    { changed: keys / 1000, ms: 2, usPerChangedKey: 20 },
    { changed: keys / 100, ms: 10, usPerChangedKey: 10 },
  ],
  schedule: {
    versions: 200,
    fullSnapshots: 2,
    cycle: 100,
    writeMs: 3,
    deltaMs: 2,
    fullMs: 100,
    pruneEvery: 10,
    pruneMs: 0.5,
    totalMs: 3.5,
    overDelta: 1.75,
    pruneMaxMs: 5,
    rows: 100,
  },
  restoreAfterChainMs: 50,
  chain: 99,
  rowsAtRestore: 100,
  restoreFullMs: 40,
});
const bigResult = {
  startedAt: '2025-01-01T00:00:00.000Z',
  command: 'npm run bench:checkpoint -- --big',
  loadAvg: [1, 2, 3],
  rows: [big('pglite', 100000), big('postgres', 1000000)],
};

const PAGES: [string, () => string][] = [
  ['bench', () => renderHtml(bench)],
  ['bench:scale', () => renderLiveScaleHtml(liveScale)],
  ['bench:soak', () => renderSoakHtml(soak)],
  ['bench:sim', () => renderSimScaleHtml(simScale)],
  ['bench:checkpoint --big', () => renderBigHtml(bigResult)],
];

describe('benchmark HTML reports', () => {
  it.each(PAGES)('%s: one whole page, with charts, tables and the raw result, and nothing fetched', (_name, render) => {
    const html = render();
    expect(html.startsWith('<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>')).toBe(true);
    expect(html.trimEnd().endsWith('</body></html>')).toBe(true);
    expect(html.match(/<h1>/g)).toHaveLength(1);
    expect(html.match(/<style>/g)).toHaveLength(1);
    expect(html).toContain('<svg');
    expect(html).toContain('<table>');
    expect(html).toContain('<h2>Raw result</h2>');
    expect(html).toContain('&quot;startedAt&quot;: &quot;2025-01-01T00:00:00.000Z&quot;');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    // Text from the result is escaped.
    expect(html).not.toMatch(/<(memory|&)>/);
  });

  it.each(PAGES)('%s: every table row has as many cells as its head', (_name, render) => {
    for (const t of render().match(/<table>.*?<\/table>/gs) ?? []) {
      const head = t.match(/<th>/g)?.length ?? 0;
      for (const row of t.match(/<tbody>.*<\/tbody>/s)![0].match(/<tr>.*?<\/tr>/gs) ?? []) expect(row.match(/<td>/g)?.length, row).toBe(head);
    }
  });

  it('marks goals met, missed and unknown', () => {
    const html = renderHtml(bench);
    expect(html).toContain('<li class="met">? — DBOS answer: — (&gt; 2x)</li>');
    expect(html).toContain('<li class="met">✓ met — kv overhead: 1.2 (&lt; 1.5)</li>');
    expect(html).toContain('<li class="miss">✕ missed — recovery: 900 (&lt; 500 ms)</li>');
  });

  it('keeps report-specific style after the shared one', () => {
    const bench1 = renderHtml(bench);
    expect(bench1.indexOf('td:nth-child(2){text-align:left}')).toBeGreaterThan(bench1.indexOf('th{background:#f4f4f4}'));
    expect(renderSoakHtml(soak)).not.toContain('td:nth-child(2)');
  });
});
