import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InspectionEvent, NumberedEvent, ServiceRequestInfo } from '@dse/shared';
import { ServiceRequestInfoSchema } from '@dse/shared';
import type { RunningServer, ServerOptions } from '../../src/server/server';
import { startServer } from '../../src/server/server';

/** Polls `cond` until it holds; fails with `what` after `timeoutMs` (generous: this machine is noisy). */
export async function waitFor<T>(what: string, cond: () => T | undefined | null | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Polls `GET /api/requests/:id` until the service request is committed, and returns it; fails when it
 * is rolled back, or is not committed within `timeoutMs`.
 */
export async function committed(t: Pick<TestServer, 'api'>, id: string, timeoutMs = 30_000): Promise<ServiceRequestInfo> {
  const end = Date.now() + timeoutMs;
  let last: Record<string, unknown> = {};
  while (Date.now() < end) {
    const r = await t.api('GET', `/api/requests/${id}`);
    last = r.json;
    if (r.json.status === 'committed') return ServiceRequestInfoSchema.parse(r.json);
    if (r.json.status === 'rolled-back') throw new Error(`request ${id} rolled back`);
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`request ${id} not committed: ${JSON.stringify(last)}`);
}

export interface TestServer {
  server: RunningServer;
  /** Every event since the server started, in order. */
  events: NumberedEvent[];
  /** Events after index `from` matching `pred`. */
  find<K extends InspectionEvent['type']>(
    type: K,
    pred?: (e: Extract<NumberedEvent, { type: K }>) => boolean,
    from?: number,
  ): Extract<NumberedEvent, { type: K }> | undefined;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }>;
  /** Kills every node process and removes the data folder. */
  close(): Promise<void>;
}

export async function startTestServer(opts: ServerOptions): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dse-live-'));
  const server = await startServer({ port: 0, storage: 'pglite', dataDir, nodeStderr: false, log: () => undefined, ...opts });
  const events: NumberedEvent[] = [...server.stream.recent()];
  server.stream.onEvent((e) => events.push(e));
  return {
    server,
    events,
    find(type, pred, from = 0) {
      for (let i = from; i < events.length; i++) {
        const e = events[i]!;
        if (e.type === type && (pred === undefined || pred(e as never))) return e as never;
      }
      return undefined;
    },
    async api(method, path, body, headers = {}) {
      const res = await fetch(server.url + path, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = { text };
      }
      return { status: res.status, json };
    },
    async close() {
      const pids = server.cluster
        .info(0)
        .nodes.map((n) => n.pid)
        .filter((p): p is number => p !== null);
      await server.close();
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
