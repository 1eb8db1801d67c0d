import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/server';
import { BROWSER_FRAME_BYTES_MAX, startServer } from '../../src/server/server';
import { NODE_NAMESPACE, NODE_SOCKET_PATH } from '../../src/live/wire';

/**
 * The token rule on every route and every Socket.IO namespace (docs/security.md): with `DSE_TOKEN`
 * set, nothing answers without it (no bearer, a wrong bearer, a wrong cookie), and nothing changes;
 * with it, every route is reachable.
 */

const TOKEN = 'auth-test-token-5d1c';

const ROUTES: [string, string, unknown?][] = [
  ['GET', '/api/health'],
  ['GET', '/api/cluster'],
  ['GET', '/api/config'],
  ['POST', '/api/nodes/n1/kill'],
  ['POST', '/api/nodes/n1/restart'],
  ['POST', '/api/nodes', {}],
  ['DELETE', '/api/nodes/n1'],
  ['POST', '/api/config', { networkDelayMs: 1 }],
  ['POST', '/api/workload', { kind: 'kv', rate: 1 }],
  ['POST', '/api/requests', { op: 'put', key: 'k', value: 1 }],
  ['GET', '/api/requests/r1'],
  ['POST', '/api/simulate', { seed: 1 }],
  ['GET', '/api/nope'],
  ['GET', '/'],
  ['GET', '/index.html'],
  ['GET', '/assets/app.js'],
  ['GET', '/%2e%2e/package.json'],
  ['HEAD', '/'],
];

let s: RunningServer;

beforeAll(async () => {
  s = await startServer({ port: 0, token: TOKEN, storage: 'memory', nodes: 1, log: () => undefined, nodeStderr: false, limits: { commandsPerSecond: 1000 } });
}, 120_000);

afterAll(async () => {
  await s?.close();
});

async function call(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<number> {
  const res = await fetch(s.url + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  await res.arrayBuffer();
  return res.status;
}

function connectError(namespace: string, auth: Record<string, string>, headers: Record<string, string> = {}, path = '/socket.io'): Promise<string> {
  return new Promise((resolve) => {
    const c = io(s.url + namespace, { path, transports: ['websocket'], reconnection: false, auth, extraHeaders: headers });
    c.once('connect', () => {
      c.close();
      resolve('connected');
    });
    c.once('connect_error', (e) => {
      c.close();
      resolve(e.message);
    });
  });
}

describe('token rule', () => {
  it('every route refuses a request without the token, with a wrong bearer or a wrong cookie, and nothing changes', async () => {
    const before = JSON.stringify({ cluster: s.cluster.info(0).nodes.map((n) => [n.id, n.pid]), config: s.cluster.config, workload: s.workload.config });
    for (const [method, path, body] of ROUTES) {
      const variants: Record<string, string>[] = [{}, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }, { cookie: 'dse_token=nope' }];
      for (const headers of variants) {
        expect(await call(method, path, body, headers), `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
      }
    }
    expect(await call('GET', '/?token=wrong', undefined, {})).toBe(401);
    const after = JSON.stringify({ cluster: s.cluster.info(0).nodes.map((n) => [n.id, n.pid]), config: s.cluster.config, workload: s.workload.config });
    expect(after).toBe(before);
  });

  it('every route is reachable with the bearer token or the cookie', async () => {
    for (const [method, path, body] of ROUTES) {
      if (method === 'DELETE' || path.endsWith('/kill') || path.endsWith('/restart')) continue; // reachable, but would change the cluster
      expect(await call(method, path, body, { authorization: `Bearer ${TOKEN}` }), `${method} ${path}`).not.toBe(401);
    }
    expect(await call('GET', '/api/cluster', undefined, { cookie: `dse_token=${TOKEN}` })).toBe(200);
    const res = await fetch(`${s.url}/?token=${TOKEN}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
  });

  it('Socket.IO: the browser namespace and the nodes’ namespace refuse connections without the token', async () => {
    for (const [ns, path] of [
      ['/', '/socket.io'],
      [NODE_NAMESPACE, NODE_SOCKET_PATH],
    ] as const) {
      expect(await connectError(ns, {}, {}, path), ns).toMatch(/Unauthorized/);
      expect(await connectError(ns, { token: 'nope' }, {}, path), ns).toMatch(/Unauthorized/);
      expect(await connectError(ns, {}, { authorization: 'Bearer nope' }, path), ns).toMatch(/Unauthorized/);
      expect(await connectError(ns, { token: TOKEN }, {}, path), ns).toBe('connected');
    }
    expect(await connectError('/other', { token: TOKEN })).toMatch(/Invalid namespace/);
    // Each path serves only its own: no browser namespace on the nodes' path, no nodes on the browsers'.
    expect(await connectError('/', { token: TOKEN }, {}, NODE_SOCKET_PATH)).toMatch(/node processes only/);
    expect(await connectError(NODE_NAMESPACE, { token: TOKEN })).toMatch(/Invalid namespace/);
  });

  it('a browser frame above BROWSER_FRAME_BYTES_MAX closes that connection before it is parsed; the server goes on', async () => {
    const c = io(s.url, { transports: ['websocket'], reconnection: false, auth: { token: TOKEN } });
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    const reason = new Promise<string>((resolve) => c.once('disconnect', (r) => resolve(r)));
    c.emit('command', { type: 'health', pad: 'x'.repeat(BROWSER_FRAME_BYTES_MAX + 1024) }, () => undefined);
    expect(await reason).toMatch(/transport close|transport error/);
    const ok = await fetch(`${s.url}/api/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
  });
});
