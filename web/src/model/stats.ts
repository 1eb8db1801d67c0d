import type { Mode } from '@dse/shared';
import type { PlaygroundModel } from './model';

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
}

export function percentiles(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { count: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

export interface ModeLatency {
  /** The mode the answers came in; null where the events never said (a trace without mode events). */
  mode: Mode | null;
  /** Request sent → speculative answer, ms. */
  answer: Percentiles | null;
  /** Request sent → committed, ms. */
  commit: Percentiles | null;
}

export interface LiveStats {
  /** Per mode the answers came in: speculative and durable side by side after a mode change. */
  latency: ModeLatency[];
  /** Time from a request's speculative answer to its commit (output commit wait), ms. */
  commitLag: Percentiles | null;
  /** Answers per second over the window, by kind. */
  speculativePerS: number;
  committedPerS: number;
  rolledBackPerS: number;
  /** Series for the throughput chart: per bucket, committed answers per second. */
  buckets: { t: number; speculative: number; committed: number }[];
}

/** Statistics over the last `windowMs` of event time (never wall-clock time). */
export function liveStats(model: PlaygroundModel, windowMs: number, bucketCount = 30): LiveStats {
  const end = model.lastT;
  const start = end - windowMs;
  const lags: number[] = [];
  let spec = 0;
  let comm = 0;
  let rb = 0;
  const bucketMs = windowMs / bucketCount;
  const buckets = Array.from({ length: bucketCount }, (_, i) => ({ t: start + (i + 1) * bucketMs, speculative: 0, committed: 0 }));
  const bucket = (t: number): { speculative: number; committed: number } | undefined => buckets[Math.min(bucketCount - 1, Math.floor((t - start) / bucketMs))];
  const byMode = new Map<Mode | null, { answer: number[]; commit: number[] }>();
  for (const r of model.sessions.values()) {
    if (r.sentAt !== null) {
      const k = r.mode ?? model.mode;
      let b = byMode.get(k);
      if (b === undefined) byMode.set(k, (b = { answer: [], commit: [] }));
      if (r.speculativeAt !== null) b.answer.push(r.speculativeAt - r.sentAt);
      if (r.committedAt !== null) b.commit.push(r.committedAt - r.sentAt);
    }
    if (r.speculativeAt !== null && r.speculativeAt >= start) {
      spec++;
      const b = bucket(r.speculativeAt);
      if (b !== undefined) b.speculative++;
    }
    if (r.committedAt !== null && r.committedAt >= start) {
      comm++;
      const b = bucket(r.committedAt);
      if (b !== undefined) b.committed++;
      if (r.speculativeAt !== null) lags.push(r.committedAt - r.speculativeAt);
    }
    if (r.rolledBackAt !== null && r.rolledBackAt >= start) rb++;
  }
  const perS = 1000 / windowMs;
  const toRate = 1000 / bucketMs;
  return {
    latency: [...byMode].map(([mode, b]) => ({ mode, answer: percentiles(b.answer), commit: percentiles(b.commit) })),
    commitLag: percentiles(lags),
    speculativePerS: spec * perS,
    committedPerS: comm * perS,
    rolledBackPerS: rb * perS,
    buckets: buckets.map((b) => ({ t: b.t, speculative: b.speculative * toRate, committed: b.committed * toRate })),
  };
}

/**
 * Request → answer latencies (ms) per mode of the retained session requests sent at or after
 * `sinceT` (event time), from their `sessionResult` events; the latency race reads these.
 */
export function answerLatencies(model: PlaygroundModel, sinceT = -Infinity): Map<Mode | null, number[]> {
  const out = new Map<Mode | null, number[]>();
  for (const r of model.sessions.values()) {
    if (r.sentAt === null || r.sentAt < sinceT || r.speculativeAt === null) continue;
    const k = r.mode ?? model.mode;
    let a = out.get(k);
    if (a === undefined) out.set(k, (a = []));
    a.push(r.speculativeAt - r.sentAt);
  }
  return out;
}

/** Shared bins for a latency distribution: counts per bin for each series, over [0, max]. */
export function histogram(series: readonly (readonly number[])[], bins: number): { max: number; counts: number[][] } {
  const all = series.flat();
  const max = all.length === 0 ? 1 : Math.max(1, percentiles(all)!.p99);
  const counts = series.map((s) => {
    const c = new Array<number>(bins).fill(0);
    for (const v of s) c[Math.min(bins - 1, Math.floor((v / max) * bins))]!++;
    return c;
  });
  return { max, counts };
}
