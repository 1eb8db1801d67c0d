import type { BenchResult } from './types';

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const ms = (x: number | undefined): string => (x === undefined ? '—' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const ratio = (x: number | null): string => (x === null ? '—' : `${x.toFixed(2)}×`);

/** The short table printed at the end of a run. */
export function formatTable(r: BenchResult): string {
  const lines: string[] = [];
  const modes = [...new Set(r.workflow.map((w) => w.mode))];
  const steps = [...new Set(r.workflow.map((w) => w.steps))].sort((a, b) => a - b);
  lines.push(
    `DSE benchmark — ${r.storage}${r.storageDelayMs > 0 ? ` + ${r.storageDelayMs} ms per commit (modelled)` : ''}, ${r.cluster.nodes} node processes, checkpoint every ${r.cluster.checkpointIntervalMs} ms${r.quick ? ', --quick' : ''}`,
  );
  lines.push('');
  lines.push('workflow latency, request → speculative outcome, p50 / p99 ms (commit: request → committed, speculative mode)');
  lines.push(pad('steps', 7) + modes.map((m) => lpad(m, 18)).join('') + lpad('commit (spec.)', 18));
  for (const s of steps) {
    const cell = (rows: BenchResult['workflow'], m: string): string => {
      const w = rows.find((x) => x.steps === s && x.mode === m);
      return lpad(w === undefined ? '—' : `${ms(w.p50Ms)} / ${ms(w.p99Ms)}`, 18);
    };
    lines.push(pad(String(s), 7) + modes.map((m) => cell(r.workflow, m)).join('') + cell(r.workflowCommit, 'speculative'));
  }
  lines.push('');
  lines.push('key-value store at saturation');
  lines.push(pad('mode', 13) + lpad('ops/s', 10) + lpad('p50 ms', 10) + lpad('p99 ms', 10));
  for (const k of r.kv) lines.push(pad(k.mode, 13) + lpad(k.opsPerSec.toFixed(0), 10) + lpad(ms(k.p50Ms), 10) + lpad(ms(k.p99Ms), 10));
  if (r.kvLoad.length > 0) {
    const loads = [...new Set(r.kvLoad.map((l) => l.offeredOpsPerSec))].sort((a, b) => a - b);
    lines.push('');
    lines.push('key-value p50 / p99 ms at fixed offered loads (ops/s)');
    lines.push(pad('mode', 13) + loads.map((l) => lpad(String(l), 16)).join(''));
    for (const m of [...new Set(r.kvLoad.map((l) => l.mode))]) {
      lines.push(
        pad(m, 13) +
          loads
            .map((l) => {
              const x = r.kvLoad.find((y) => y.mode === m && y.offeredOpsPerSec === l);
              return lpad(x === undefined ? '—' : `${ms(x.p50Ms)} / ${ms(x.p99Ms)}`, 16);
            })
            .join(''),
      );
    }
  }
  if (r.cpu.length > 0) {
    lines.push('');
    lines.push('CPU, % of one core (server process: control plane, coordinator, sessions / all node processes)');
    for (const c of r.cpu)
      lines.push(
        `  ${pad(c.mode, 12)} ${pad(c.phase, 14)} server ${lpad(c.serverCpuPct.toFixed(0), 4)}%  nodes ${c.nodesCpuPct === null ? '—' : lpad(c.nodesCpuPct.toFixed(0), 4) + '%'}  server event-loop delay p99 ${ms(c.serverLoopDelayP99Ms)} ms, max ${ms(c.serverLoopDelayMaxMs)} ms`,
      );
  }
  lines.push('');
  const rec = r.recovery;
  lines.push(
    `recovery (${rec.kills} SIGKILLs, checkpoint ${rec.checkpointIntervalMs} ms): kill → first commit median ${ms(rec.killToFirstCommitMs)} ms (max ${ms(rec.maxKillToFirstCommitMs)}), ${rec.rolledBackVersions} versions rolled back (median)${rec.stalls > 0 ? `; ${rec.stalls} kill(s) with no commit within 30 s` : ''}`,
  );
  lines.push('');
  lines.push(
    `ratios (one run): durable/speculative p50 at 5 steps ${ratio(r.ratios.durableOverSpeculativeP50At5)}; speculative/none ${ratio(r.ratios.speculativeOverNoneP50At5)}; kv throughput speculative/none ${r.ratios.kvSpeculativeOverNoneThroughput === null ? '—' : `${(r.ratios.kvSpeculativeOverNoneThroughput * 100).toFixed(0)}%`}`,
  );
  for (const g of r.goals) lines.push(`  ${g.met === null ? '?' : g.met ? 'met ' : 'MISS'}  ${g.goal}: ${g.value === null ? '—' : g.value} (${g.target})`);
  return lines.join('\n');
}
