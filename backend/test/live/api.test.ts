import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { CommandReply, EventBatch, StreamSnapshot } from '@dse/shared';
import { isApiError } from '@dse/shared';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_CONNECTIONS_PER_ADDRESS, startServer } from '../../src/server/server';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/** Hostile and malformed commands, the event stream over Socket.IO, and the token. */

let t: TestServer;
const sockets: Socket[] = [];

beforeAll(async () => {
  t = await startTestServer({
    nodes: 2,
    // A long heartbeat timeout: a busy machine must not fail a node in the middle of a "nothing changed" check.
    config: { checkpointIntervalMs: 25, heartbeatTimeoutMs: 5000 },
    workload: { kind: 'chain', rate: 20 },
    stream: { queueEventsMax: 300, ackTimeoutMs: 1500 },
  });
  await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
}, 90_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await t?.close();
});

function connect(url: string, auth?: Record<string, string>): Socket {
  const s = io(url, { transports: ['websocket'], reconnection: false, ...(auth !== undefined ? { auth } : {}) });
  sockets.push(s);
  return s;
}

function command(s: Socket, c: unknown): Promise<CommandReply> {
  return s.timeout(10_000).emitWithAck('command', c) as Promise<CommandReply>;
}

function fingerprint(): string {
  const c = t.server.cluster.info(0);
  return JSON.stringify({ worldLine: c.worldLine, mode: c.mode, nodes: c.nodes.map((n) => [n.id, n.pid]), config: t.server.cluster.config });
}

/** A raw HTTP request (fetch refuses to send some hostile things, like a foreign Host header). */
function raw(path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string }> {
  const u = new URL(t.server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostile and malformed commands', () => {
  it('get typed errors over HTTP, change nothing, and the server stays up', async () => {
    const before = fingerprint();
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/api/config', { checkpointIntervalMs: 'fast' }, 400, 'BadRequest'],
      ['POST', '/api/config', { checkpointIntervalMs: -5 }, 400, 'BadRequest'],
      ['POST', '/api/config', { checkpointIntervalMs: 1e12 }, 400, 'BadRequest'],
      ['POST', '/api/config', { mode: 'turbo' }, 400, 'BadRequest'],
      ['POST', '/api/config', { messageLoss: 2 }, 400, 'BadRequest'],
      ['POST', '/api/config', { __proto__: { mode: 'none' }, evil: 1 }, 400, 'BadRequest'],
      ['POST', '/api/config', [1, 2], 400, 'BadRequest'],
      ['POST', '/api/config', 'not json {', 400, 'BadRequest'],
      ['POST', '/api/config', { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 1000 }, 400, 'BadRequest'],
      ['POST', '/api/workload', { rate: 1e9 }, 400, 'BadRequest'],
      ['POST', '/api/workload', { rate: 'lots' }, 400, 'BadRequest'],
      ['POST', '/api/workload', { kind: 'ddos', rate: 1 }, 400, 'BadRequest'],
      ['POST', '/api/nodes/zz9/kill', undefined, 404, 'NotFound'],
      ['POST', '/api/nodes/zz9/restart', undefined, 404, 'NotFound'],
      ['DELETE', '/api/nodes/zz9', undefined, 404, 'NotFound'],
      ['POST', '/api/nodes/..%2F..%2Fetc/kill', undefined, 400, 'BadRequest'],
      ['POST', '/api/nodes/n1/kill', { now: true }, 400, 'BadRequest'],
      ['POST', '/api/nodes', { id: 'n1' }, 409, 'Conflict'],
      ['POST', '/api/nodes', { id: 'bad id!' }, 400, 'BadRequest'],
      ['POST', '/api/requests', { op: 'put', key: 5, value: 1 }, 400, 'BadRequest'],
      ['POST', '/api/requests', { op: 'delete', key: 'a' }, 400, 'BadRequest'],
      ['POST', '/api/requests', { op: 'put', key: 'a' }, 400, 'BadRequest'],
      ['POST', '/api/requests', { op: 'get', key: 'x'.repeat(1000) }, 400, 'BadRequest'],
      ['POST', '/api/requests', { op: 'get', key: 'a', node: 'nope' }, 404, 'NotFound'],
      ['POST', '/api/requests', { op: 'get', key: 'a', session: '../../x' }, 400, 'BadRequest'],
      ['POST', '/api/requests', { op: 'put', key: 'a', value: 'v'.repeat(20_000) }, 413, 'LimitExceeded'],
      ['POST', '/api/requests', { op: 'put', key: 'a', value: 'v'.repeat(200_000) }, 413, 'LimitExceeded'],
      ['POST', '/api/requests', { op: 'put', key: 'a', value: JSON.parse('['.repeat(40) + ']'.repeat(40)) as unknown }, 400, 'BadRequest'],
      ['GET', '/api/requests/<script>', undefined, 400, 'BadRequest'],
      ['GET', '/api/nope', undefined, 404, 'NotFound'],
      ['PUT', '/api/cluster', undefined, 400, 'BadRequest'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await t.api(method, path, body);
      expect({ method, path, status: r.status }).toEqual({ method, path, status });
      expect(r.json.error, `${method} ${path}`).toMatchObject({ code, definite: true });
      expect(typeof (r.json.error as { message: string }).message).toBe('string');
    }
    expect(fingerprint()).toBe(before);
    expect((await t.api('GET', '/api/health')).json).toEqual({ ok: true });
  });

  it('refuses foreign Host names (DNS rebinding), cross-site requests (CSRF), and never serves files outside the web app', async () => {
    const r = await raw('/api/cluster', { host: 'evil.example:80' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'Unauthorized' } });
    // CSRF: a page of another site posting a "simple" request to the loopback server.
    const csrf = await raw('/api/nodes/n1/kill', { host: '127.0.0.1', origin: 'http://evil.example', 'content-type': 'text/plain' }, 'POST');
    expect(csrf.status).toBe(403);
    const fetchMeta = await raw('/api/nodes/n1/kill', { host: '127.0.0.1', 'sec-fetch-site': 'cross-site' }, 'POST');
    expect(fetchMeta.status).toBe(403);
    expect(t.server.cluster.info(0).nodes.find((n) => n.id === 'n1')!.status).toBe('up');
    const trav = await raw('/..%2F..%2F..%2F..%2Fetc%2Fpasswd', { host: 'localhost' });
    expect(trav.body).not.toContain('root:');
  });

  it('get typed errors over Socket.IO and change nothing', async () => {
    const before = fingerprint();
    const s = connect(t.server.url);
    await waitFor('connected', () => s.connected, 20_000);
    const bad: unknown[] = [
      null,
      'kill n1',
      { type: 'bogus' },
      { type: 'kill' },
      { type: 'kill', node: 42 },
      { type: 'kill', node: 'zz9' },
      { type: 'config', config: { mode: 'turbo' } },
      { type: 'config', config: 'fast' },
      { type: 'request', op: 'put', key: 'a', value: 'v'.repeat(100_000) },
      { type: 'workload', workload: { rate: -1 } },
      { type: 'getRequest', id: 'r999999' },
    ];
    for (const c of bad) {
      const r = await command(s, c);
      expect('error' in r, JSON.stringify(c)?.slice(0, 80)).toBe(true);
      if (isApiError(r)) expect(['BadRequest', 'NotFound', 'LimitExceeded']).toContain(r.error.code);
    }
    // A command without a callback is ignored, not a crash.
    s.emit('command', { type: 'kill', node: 'n1' });
    expect(await command(s, { type: 'health' })).toEqual({ ok: true });
    expect(fingerprint()).toBe(before);
  });
});

describe('simulation in the server', () => {
  it('runs a seeded simulation in its own process and returns the same events for the same seed', async () => {
    const body = { seed: 7, requestsPerSession: 4, sessions: 3 };
    const a = await t.api('POST', '/api/simulate', body);
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ ok: true, seed: 7, violations: [], truncated: false });
    const events = a.json.events as { type: string }[];
    expect(events.length).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'worldLineChanged')).toBe(true);
    // The replay shows the nodes' state: the run reports its changes.
    expect(events.some((e) => e.type === 'stateChanged')).toBe(true);
    const b = await t.api('POST', '/api/simulate', body);
    expect(b.json.events).toEqual(a.json.events);
    const bad = await t.api('POST', '/api/simulate', { seed: -1 });
    expect(bad.json).toMatchObject({ error: { code: 'BadRequest' } });
  });
});

describe('event stream', () => {
  it('a late browser gets a snapshot with recent history, then numbered batches without gaps', async () => {
    const s = connect(t.server.url);
    let snap: StreamSnapshot | null = null;
    const batches: EventBatch[] = [];
    s.on('snapshot', (x: StreamSnapshot) => (snap = x));
    s.on('events', (b: EventBatch, ack: () => void) => {
      batches.push(b);
      ack();
    });
    const first = await waitFor('snapshot', () => snap, 20_000);
    expect(first.reason).toBe('connect');
    expect(first.cluster.nodes.map((n) => n.id)).toEqual(['n1', 'n2']);
    expect(first.history.length).toBeGreaterThan(0);
    expect(first.history[first.history.length - 1]!.n).toBe(first.lastEvent);
    expect(first.limits.historyEventsMax).toBeGreaterThan(0);
    await waitFor('a few batches', () => batches.length >= 5, 30_000);
    let next = first.lastEvent + 1;
    for (const b of batches) {
      expect(b.from).toBe(next);
      expect(b.events.map((e) => e.n)).toEqual(Array.from({ length: b.to - b.from + 1 }, (_, i) => b.from + i));
      next = b.to + 1;
    }
  });

  it('a browser that does not acknowledge is dropped to a snapshot with a notice; the cluster goes on', async () => {
    const s = connect(t.server.url);
    const snaps: StreamSnapshot[] = [];
    s.on('snapshot', (x: StreamSnapshot) => snaps.push(x));
    s.on('events', () => undefined); // never acknowledges
    const resync = await waitFor('a resync snapshot', () => snaps.find((x) => x.reason === 'resync'), 60_000);
    expect(resync.notice).toMatch(/fell behind/);
    expect((await t.api('GET', '/api/health')).json).toEqual({ ok: true });
  });
});

describe('security', () => {
  it('refuses to listen beyond loopback without a token', async () => {
    await expect(startServer({ host: '0.0.0.0', port: 0, storage: 'memory', nodes: 1 })).rejects.toMatchObject({ code: 'Unauthorized' });
    const main = fileURLToPath(new URL('../../src/server/main.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', main], {
      env: { ...process.env, HOST: '0.0.0.0', PORT: '0', DSE_TOKEN: '', DSE_SKIP_WEB_BUILD: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Refusing to start: HOST=0\.0\.0\.0.*\n.*DSE_TOKEN/s);
  });

  it('with a token: every HTTP call and Socket.IO connection needs it; node processes join with it', async () => {
    const token = 'test-token-7f3a';
    const ts = await startTestServer({ token, nodes: 1, config: { checkpointIntervalMs: 25, heartbeatTimeoutMs: 5000 } });
    try {
      // The node process joined with the token from its environment.
      await waitFor('n1 up', () => ts.server.cluster.info(0).nodes[0]?.status === 'up', 60_000);
      const none = await ts.api('GET', '/api/cluster');
      expect(none.status).toBe(401);
      expect(none.json).toMatchObject({ error: { code: 'Unauthorized', definite: true } });
      const wrong = await ts.api('POST', '/api/nodes/n1/kill', undefined, { authorization: 'Bearer nope' });
      expect(wrong.status).toBe(401);
      expect(ts.server.cluster.info(0).nodes[0]!.status).toBe('up');
      const ok = await ts.api('GET', '/api/cluster', undefined, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      const page = await ts.api('GET', '/');
      expect(page.status).toBe(401);

      const anon = connect(ts.server.url);
      const err = await new Promise<Error>((resolve) => anon.once('connect_error', resolve));
      expect(err.message).toMatch(/Unauthorized/);
      const good = connect(ts.server.url, { token });
      let snap: StreamSnapshot | null = null;
      good.on('snapshot', (x: StreamSnapshot) => (snap = x));
      await waitFor('snapshot with the token', () => snap, 20_000);
      expect(await command(good, { type: 'health' })).toEqual({ ok: true });

      // (The command rate limit has tests of its own, on a clock they control: backend/test/ops/rate-limit.test.ts.)
      const second = connect(ts.server.url, { token });
      await new Promise<void>((resolve) => second.once('connect', () => resolve()));

      // And one address holds at most BROWSER_CONNECTIONS_PER_ADDRESS connections (two are open).
      const more = Array.from({ length: BROWSER_CONNECTIONS_PER_ADDRESS - 1 }, () => connect(ts.server.url, { token }));
      const closed = await Promise.all(
        more.map(
          (s) =>
            new Promise<boolean>((resolve) => {
              s.once('disconnect', () => resolve(true));
              setTimeout(() => resolve(false), 5000);
            }),
        ),
      );
      expect(closed.filter(Boolean).length).toBe(1);
    } finally {
      await ts.close();
    }
  });
});
