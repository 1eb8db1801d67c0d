/** Percentiles of latency samples (milliseconds), nearest-rank. */
export interface Percentiles {
  n: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

const round = (x: number): number => Math.round(x * 100) / 100;

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function percentiles(samples: readonly number[]): Percentiles {
  if (samples.length === 0) return { n: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, meanMs: 0, maxMs: 0 };
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50Ms: round(quantile(s, 0.5)),
    p90Ms: round(quantile(s, 0.9)),
    p99Ms: round(quantile(s, 0.99)),
    meanMs: round(s.reduce((a, b) => a + b, 0) / s.length),
    maxMs: round(s[s.length - 1]!),
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return round(s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2);
}

/**
 * A latency histogram on log-spaced buckets (for distribution charts): `edgesMs[i]..edgesMs[i+1]`
 * holds `counts[i]` samples; the last bucket is open-ended.
 */
export interface Histogram {
  edgesMs: number[];
  counts: number[];
}

export function histogram(samples: readonly number[], bucketsPerDecade = 8, fromMs = 0.1, toMs = 100_000): Histogram {
  const edgesMs: number[] = [];
  for (let e = fromMs; e <= toMs * 1.0001; e *= 10 ** (1 / bucketsPerDecade)) edgesMs.push(round(e * 1000) / 1000);
  const counts = new Array<number>(edgesMs.length).fill(0);
  for (const x of samples) {
    let i = Math.floor(Math.log10(Math.max(x, fromMs) / fromMs) * bucketsPerDecade);
    i = Math.min(Math.max(i, 0), counts.length - 1);
    counts[i]!++;
  }
  // Trim empty buckets at both ends, keeping the edges aligned.
  let lo = counts.findIndex((c) => c > 0);
  if (lo < 0) return { edgesMs: [], counts: [] };
  let hi = counts.length - 1;
  while (hi > lo && counts[hi] === 0) hi--;
  lo = Math.max(0, lo);
  return { edgesMs: edgesMs.slice(lo, hi + 2), counts: counts.slice(lo, hi + 1) };
}
