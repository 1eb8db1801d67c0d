/**
 * Capped exponential backoff with jitter: how long a node process that could not join waits before it
 * tries again. Doubling spreads a flood of attempts out; the cap bounds how late a node notices that
 * the server is back; the jitter keeps nodes started together from trying again together.
 */
export interface Backoff {
  /** The first wait (before jitter). */
  baseMs: number;
  /** The longest wait. */
  capMs: number;
}

/** A node process's joins: 250 ms, 500 ms, 1 s, ... up to 10 s between attempts. */
export const JOIN_BACKOFF: Backoff = { baseMs: 250, capMs: 10_000 };

/**
 * The wait before attempt `attempt + 1`, after `attempt` (1, 2, ...) failed ones: a random time in
 * [d/2, d] where d = min(cap, base × 2^(attempt−1)) ("equal jitter": never less than half the step).
 */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const step = Math.min(b.capMs, b.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(step / 2 + random() * (step / 2));
}
