/**
 * The command rate limit: a token bucket per client address and channel (HTTP and Socket.IO count
 * apart), refilled at `rate` a second up to a burst of twice that. Clients on this host get a high
 * rate (scripts writing with many sessions), clients elsewhere a lower one (browsers reaching a server
 * published with a token). `/api/health` is never counted (see `http.ts`).
 */

/** Commands a second one client address may send, by where it connects from. */
export interface RateLimits {
  /** Clients on this host (127.0.0.0/8, ::1). */
  loopback: number;
  /** Clients elsewhere. */
  remote: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { loopback: 1000, remote: 100 };

/** The most a rate may be (`DSE_RATE_LIMIT`): beyond it the bucket's arithmetic stops meaning anything. */
const RATE_MAX = 1_000_000;

/** A client's address (as `socket.remoteAddress` gives it) is on this host. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase();
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return v4.startsWith('127.') || a === '::1' || a === '0:0:0:0:0:0:0:1';
}

/**
 * `DSE_RATE_LIMIT`: `N` (every client), or `loopback=N`, `remote=N`, or both joined by a comma.
 * Throws an `Error` that says what is wrong.
 */
export function parseRateLimit(text: string): Partial<RateLimits> {
  const rate = (s: string, what: string): number => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isFinite(n) || n <= 0 || n > RATE_MAX) {
      throw new Error(`DSE_RATE_LIMIT: ${what} must be a number of commands a second above 0 and at most ${RATE_MAX}, not "${s.trim()}"`);
    }
    return n;
  };
  if (!text.includes('=')) {
    const n = rate(text, 'the rate');
    return { loopback: n, remote: n };
  }
  const out: Partial<RateLimits> = {};
  for (const part of text.split(',')) {
    const [key, value, ...extra] = part.split('=');
    const k = (key ?? '').trim();
    if ((k !== 'loopback' && k !== 'remote') || value === undefined || extra.length > 0) {
      throw new Error(`DSE_RATE_LIMIT: "${part.trim()}" is not loopback=N or remote=N (or a single number for every client)`);
    }
    if (out[k] !== undefined) throw new Error(`DSE_RATE_LIMIT: ${k} is given twice`);
    out[k] = rate(value, k);
  }
  return out;
}

/** A command let through, or refused with how long until the client's bucket holds one again. */
export type Admission = { ok: true } | { ok: false; rate: number; retryAfterMs: number };

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly limits: RateLimits,
    /** Milliseconds, monotonic (tests pass a clock of their own). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The rate a client at `address` gets. */
  rateFor(address: string): number {
    return isLoopbackAddress(address) ? this.limits.loopback : this.limits.remote;
  }

  /** Counts one command of `address` on `channel` (`http`, `io`). */
  take(channel: string, address: string): Admission {
    const rate = this.rateFor(address);
    const key = `${channel}:${address}`;
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size > 10_000) this.buckets.clear();
      b = { tokens: rate * 2, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(rate * 2, b.tokens + ((now - b.at) * rate) / 1000);
    b.at = now;
    if (b.tokens < 1) return { ok: false, rate, retryAfterMs: Math.ceil(((1 - b.tokens) * 1000) / rate) };
    b.tokens -= 1;
    return { ok: true };
  }
}

/** The refusal's message (HTTP body and Socket.IO reply alike). */
export function refusalMessage(a: { rate: number; retryAfterMs: number }): string {
  return `more than ${a.rate} commands a second: slow down (try again in ${a.retryAfterMs} ms)`;
}

/** The `Retry-After` header's value: whole seconds, at least 1. */
export function retryAfterSeconds(retryAfterMs: number): string {
  return String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
}
