import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/server';
import { startServer } from '../../src/server/server';

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
  const res = await fetch(s.url + path, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  await res.arrayBuffer();
  return res.status;
}

function connectError(namespace: string, auth: Record<string, string>, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const c = io(s.url + namespace, { transports: ['websocket'], reconnection: false, auth, extraHeaders: headers });
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
    for (const ns of ['/', '/node']) {
      expect(await connectError(ns, {}), ns).toMatch(/Unauthorized/);
      expect(await connectError(ns, { token: 'nope' }), ns).toMatch(/Unauthorized/);
      expect(await connectError(ns, {}, { authorization: 'Bearer nope' }), ns).toMatch(/Unauthorized/);
      expect(await connectError(ns, { token: TOKEN }), ns).toBe('connected');
    }
    expect(await connectError('/other', { token: TOKEN })).toMatch(/Invalid namespace/);
  });
});
