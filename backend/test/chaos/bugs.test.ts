import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestInfo } from '@dse/shared';
import { isApiError } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/server';
import { startServer } from '../../src/server/server';

/**
 * Regression tests for bugs the chaos work found in the live server (fixed in 2e59e47 and 5757a07;
 * they were `it.fails` while the bugs were there). See docs/security.md, F1 to F3.
 *
 * Session numbering restarted with the server. Sessions live in the server's memory, but the nodes'
 * caller tables (`r:cl:<session>`, part of their committed state) remember replies per session and
 * request number. After a server restart the same session name started again at request 1, and the
 * node answered the new request from its table with the OLD reply: the new put was never applied, yet
 * reported committed. Unnamed API requests (`api.<n>`) and the workload's sessions hit the same.
 */

async function put(s: RunningServer, body: Record<string, unknown>): Promise<RequestInfo> {
  const r = await s.exec({ type: 'request', ...(body as { op: 'put'; key: string; value: number }) });
  if (isApiError(r)) throw new Error(r.error.message);
  return r as unknown as RequestInfo;
}

async function committed(s: RunningServer, id: string, timeoutMs = 60_000): Promise<RequestInfo> {
  for (let i = 0; i < timeoutMs / 100; i++) {
    const r = await s.exec({ type: 'getRequest', id });
    if (isApiError(r)) throw new Error(r.error.message);
    const info = r as unknown as RequestInfo;
    if (info.status !== 'speculative') return info;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`request ${id} undecided after ${timeoutMs} ms`);
}

async function readCommitted(s: RunningServer, key: string): Promise<unknown> {
  const r = await s.exec({ type: 'request', op: 'get', key, committedOnly: true });
  if (isApiError(r)) throw new Error(r.error.message);
  return ((r as unknown as RequestInfo).result as { value: unknown }).value;
}

describe('found by chaos: server restart', () => {
  it('a put in a session named again after a server restart is applied (not answered from the old caller table)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dse-bug-'));
    const start = (): Promise<RunningServer> =>
      startServer({ port: 0, storage: 'pglite', dataDir, nodes: 1, log: () => undefined, nodeStderr: false, config: { checkpointIntervalMs: 20 } });
    let s: RunningServer | null = null;
    try {
      s = await start();
      const first = await put(s, { session: 'me', op: 'put', key: 'a', value: 1 });
      expect((await committed(s, first.id)).status).toBe('committed');
      await s.close();
      s = null;

      s = await start();
      const second = await put(s, { session: 'me', op: 'put', key: 'a', value: 2 });
      const info = await committed(s, second.id);
      expect(info.status).toBe('committed');
      // The bug: the committed value is still 1 (the reply came from the caller table entry of the first put).
      expect(await readCommitted(s, 'a')).toBe(2);
    } finally {
      await s?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('found by chaos and fuzzing: one server', () => {
  let s: RunningServer;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'dse-bug-'));
    s = await startServer({ port: 0, storage: 'pglite', dataDir, nodes: 1, log: () => undefined, nodeStderr: false, config: { checkpointIntervalMs: 20 } });
  }, 240_000);
  afterAll(async () => {
    await s?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a cross-site page cannot drive a loopback server without a token (CSRF through a text/plain POST)', async () => {
    // Socket.IO refuses foreign Origins, HTTP does not: a page on any site can POST a "simple" request
    // (text/plain, no preflight) to http://127.0.0.1:8080/api/... and the server parses the body as JSON.
    const res = await fetch(`${s.url}/api/workload`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' },
      body: JSON.stringify({ kind: 'chain', rate: 0 }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
  });

  it('unnamed requests share a bounded pool of sessions: no session table or caller table growing with every request (F4)', async () => {
    // Each unnamed request used to open a session of its own (`api.<n>`), never dropped: after 10,000
    // of them every unnamed request was refused, and each left a caller-table entry in a node's state.
    // (A node keeps one caller-table entry per session that called it: bounded by the sessions.)
    const apiSessions = (): number => s.cluster.host.allSessions().filter((x) => x.id.startsWith('api.')).length;
    const infos: RequestInfo[] = [];
    for (let round = 0; round < 5; round++) {
      infos.push(...(await Promise.all(Array.from({ length: 12 }, (_, i) => put(s, { op: 'put', key: `pool-${round}-${i}`, value: i })))));
    }
    const sessions = new Set(infos.map((i) => i.session));
    expect(sessions.size).toBeGreaterThan(1); // concurrent requests spread over the pool
    expect(sessions.size).toBeLessThanOrEqual(16);
    for (const i of infos) expect((await committed(s, i.id)).status).toBe('committed');
    expect(await readCommitted(s, 'pool-4-11')).toBe(11);
    expect(apiSessions()).toBe(sessions.size);
  }, 120_000);

  it('a put whose value is nested deeper than the storage accepts does not stop the cut (it is refused, or its checkpoint written)', async () => {
    // The API accepts any JSON value up to 16 KiB; the SQL storage refuses JSON nested deeper than 1000
    // (BadRequest, definite). The node treats every failed write as indefinite and retries it forever:
    // that node's checkpoints never persist again, the cut stops there and every request depending on it
    // stays speculative, until the node fails. One 2 KB request freezes the cluster's commits.
    let deep: unknown = 0;
    for (let i = 0; i < 1100; i++) deep = [deep];
    const r = await s.exec({ type: 'request', session: 'deep', op: 'put', key: 'deep', value: deep as number });
    if ('ok' in r) {
      const after = await put(s, { session: 'later', op: 'put', key: 'later', value: 1 });
      expect((await committed(s, after.id, 30_000)).status).toBe('committed');
    } else {
      expect(r.error.code).toBe('BadRequest');
    }
  }, 120_000);
});
