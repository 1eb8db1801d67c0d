/** The command rate limit: buckets on an injected clock (no sleeping), health exempt, `Retry-After`, `DSE_RATE_LIMIT`. */
import type { CommandReply } from '@dse/shared';
import { isApiError } from '@dse/shared';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS, isLoopbackAddress, parseRateLimit, RateLimiter } from '../../src/server/rate-limit';
import type { RunningServer } from '../../src/server/server';
import { DEFAULT_LIMITS, startServer } from '../../src/server/server';

describe('RateLimiter', () => {
  it('lets a burst of twice the rate through, then refills at the rate on its clock', () => {
    let now = 0;
    const l = new RateLimiter({ loopback: 10, remote: 2 }, () => now);
    const burst = Array.from({ length: 25 }, () => l.take('http', '127.0.0.1').ok);
    expect(burst.filter(Boolean).length).toBe(20);
    const refused = l.take('http', '127.0.0.1');
    expect(refused).toEqual({ ok: false, rate: 10, retryAfterMs: 100 });
    now += 99;
    expect(l.take('http', '127.0.0.1').ok).toBe(false);
    now += 2; // 101 ms: one command's worth
    expect(l.take('http', '127.0.0.1').ok).toBe(true);
    expect(l.take('http', '127.0.0.1').ok).toBe(false);
    now += 60_000; // refills to the burst, no more
    expect(Array.from({ length: 25 }, () => l.take('http', '127.0.0.1').ok).filter(Boolean).length).toBe(20);
  });

  it('gives clients elsewhere the lower rate, and counts addresses and channels apart', () => {
    const l = new RateLimiter({ loopback: 10, remote: 2 }, () => 0);
    expect(Array.from({ length: 10 }, () => l.take('io', '10.1.2.3').ok).filter(Boolean).length).toBe(4);
    expect(l.take('io', '10.1.2.3')).toEqual({ ok: false, rate: 2, retryAfterMs: 500 });
    expect(l.take('http', '10.1.2.3').ok).toBe(true);
    expect(l.take('io', '10.1.2.4').ok).toBe(true);
    expect(l.rateFor('::ffff:127.0.0.1')).toBe(10);
    expect(l.rateFor('::1')).toBe(10);
    expect(l.rateFor('::ffff:10.0.0.1')).toBe(2);
  });

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.5.6.7', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:192.168.1.1', '::', '0.0.0.0', '1127.0.0.1', 'fe80::1']) expect(isLoopbackAddress(a)).toBe(false);
  });

  it('defaults: at least 1,000 a second on loopback, fewer from elsewhere', () => {
    expect(DEFAULT_RATE_LIMITS.loopback).toBeGreaterThanOrEqual(1000);
    expect(DEFAULT_RATE_LIMITS.remote).toBeLessThan(DEFAULT_RATE_LIMITS.loopback);
    expect(DEFAULT_LIMITS.commandsPerSecond).toBe(DEFAULT_RATE_LIMITS.remote);
  });
});

describe('DSE_RATE_LIMIT', () => {
  it('takes one rate for every client, or loopback= and remote=', () => {
    expect(parseRateLimit('500')).toEqual({ loopback: 500, remote: 500 });
    expect(parseRateLimit('loopback=5000')).toEqual({ loopback: 5000 });
    expect(parseRateLimit(' remote=20 , loopback=2000 ')).toEqual({ loopback: 2000, remote: 20 });
    expect(parseRateLimit('remote=0.5')).toEqual({ remote: 0.5 });
  });

  it('refuses anything else with a message that says what is wrong', () => {
    expect(() => parseRateLimit('fast')).toThrow(/DSE_RATE_LIMIT: the rate must be a number/);
    expect(() => parseRateLimit('0')).toThrow(/above 0/);
    expect(() => parseRateLimit('-3')).toThrow(/above 0/);
    expect(() => parseRateLimit('1e9')).toThrow(/at most/);
    expect(() => parseRateLimit('local=5')).toThrow(/"local=5" is not loopback=N or remote=N/);
    expect(() => parseRateLimit('remote=5,remote=6')).toThrow(/remote is given twice/);
    expect(() => parseRateLimit('remote=')).toThrow(/remote must be a number/);
    expect(() => parseRateLimit('remote=1=2')).toThrow(/is not loopback=N/);
  });
});

describe('the server', () => {
  const token = 'rate-limit-token';
  const auth = { authorization: `Bearer ${token}` };
  let now = 0;
  let s: RunningServer;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // No node processes: the limit is the server's alone. 2 commands a second, bursts of 4, on a clock of the test's.
    s = await startServer({ port: 0, token, storage: 'memory', nodes: 0, log: () => undefined, limits: { commandsPerSecond: 2 }, rateLimitClock: () => now });
  });

  afterAll(async () => {
    for (const c of sockets) c.close();
    await s?.close();
  });

  const get = async (path: string): Promise<{ status: number; retryAfter: string | null; json: unknown }> => {
    const r = await fetch(s.url + path, { headers: auth });
    return { status: r.status, retryAfter: r.headers.get('retry-after'), json: await r.json() };
  };

  const connect = async (): Promise<Socket> => {
    const c = io(s.url, { transports: ['websocket'], reconnection: false, auth: { token } });
    sockets.push(c);
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('connect_error', reject);
    });
    return c;
  };
  const command = (c: Socket, cmd: unknown): Promise<CommandReply> => c.timeout(10_000).emitWithAck('command', cmd) as Promise<CommandReply>;

  it('refuses HTTP commands beyond the rate with 429 and Retry-After, and lets them through once the bucket refills', async () => {
    const replies = await Promise.all(Array.from({ length: 10 }, () => get('/api/cluster')));
    expect(replies.filter((r) => r.status === 200).length).toBe(4);
    const limited = replies.filter((r) => r.status === 429);
    expect(limited.length).toBe(6);
    expect(limited[0]!.retryAfter).toBe('1');
    expect(limited[0]!.json).toMatchObject({
      error: { code: 'LimitExceeded', definite: true, message: expect.stringMatching(/more than 2 commands a second/) as string },
    });
    expect(replies.every((r) => r.status === 429 || r.retryAfter === null)).toBe(true);

    now += 1000; // two commands' worth
    expect((await get('/api/cluster')).status).toBe(200);
    expect((await get('/api/cluster')).status).toBe(200);
    expect((await get('/api/cluster')).status).toBe(429);
  });

  it('always answers /api/health, however many requests were refused', async () => {
    expect((await get('/api/config')).status).toBe(429);
    const health = await Promise.all(Array.from({ length: 50 }, () => get('/api/health')));
    expect(health.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(health[0]!.json).toEqual({ ok: true });
    expect((await get('/api/config')).status).toBe(429);
  });

  it('counts Socket.IO commands per address, not per connection; health is not counted', async () => {
    const a = await connect();
    const b = await connect();
    // 3 commands on each of two connections exceed one burst of 4.
    const both = await Promise.all([a, b, a, b, a, b].map((c) => command(c, { type: 'cluster' })));
    const refused = both.filter((r) => isApiError(r) && r.error.code === 'LimitExceeded');
    expect(refused.length).toBe(2);
    expect(refused[0]).toMatchObject({ error: { message: expect.stringMatching(/try again in \d+ ms/) as string } });
    expect(await command(a, { type: 'health' })).toEqual({ ok: true });
    now += 500;
    expect(await command(b, { type: 'cluster' })).not.toHaveProperty('error');
    expect(await command(a, { type: 'cluster' })).toMatchObject({ error: { code: 'LimitExceeded' } });
  });
});
