import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestInfo } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/server';
import { startServer } from '../../src/server/server';

/**
 * Bugs the chaos work found in code owned by others, as tests that fail while the bug is there
 * (`it.fails`: they pass now and turn red once the bug is fixed; then drop `.fails`).
 *
 * Session numbering restarts with the server. Sessions live in the server's memory, but the nodes'
 * caller tables (`r:cl:<session>`, part of their committed state) remember replies per session and
 * request number. After a server restart the same session name starts again at request 1, and the node
 * answers the new request from its table with the OLD reply: the new put is never applied, yet it is
 * reported committed. Unnamed API requests hit the same: their session is `api.<n>` with a counter
 * that restarts at 1 too. The chaos tool avoids it by naming sessions per server start.
 */

async function put(s: RunningServer, body: Record<string, unknown>): Promise<RequestInfo> {
  const r = await s.exec({ type: 'request', ...(body as { op: 'put'; key: string; value: number }) });
  if ('error' in r) throw new Error(r.error.message);
  return r as unknown as RequestInfo;
}

async function committed(s: RunningServer, id: string): Promise<RequestInfo> {
  for (let i = 0; i < 600; i++) {
    const r = await s.exec({ type: 'getRequest', id });
    if ('error' in r) throw new Error(r.error.message);
    const info = r as unknown as RequestInfo;
    if (info.status !== 'speculative') return info;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`request ${id} undecided after 60 s`);
}

async function readCommitted(s: RunningServer, key: string): Promise<unknown> {
  const r = await s.exec({ type: 'request', op: 'get', key, committedOnly: true });
  if ('error' in r) throw new Error(r.error.message);
  return ((r as unknown as RequestInfo).result as { value: unknown }).value;
}

describe('known bugs (others’ code)', () => {
  it.fails('a put in a session named again after a server restart is applied (not answered from the old caller table)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dse-bug-'));
    const start = (): Promise<RunningServer> => startServer({ port: 0, storage: 'pglite', dataDir, nodes: 1, log: () => undefined, nodeStderr: false, config: { checkpointIntervalMs: 20 } });
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
