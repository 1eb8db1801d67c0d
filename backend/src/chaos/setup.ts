import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { dropSchema } from '../storage/postgres';
import type { HttpClient } from './api';
import { TcpProxy } from './proxy';
import type { ChaosOptions } from './run';
import type { RunContext } from './run-context';
import { sleep } from './run-context';

// Setup: the storage the server runs on, and the cluster's configuration.

/** The storage of one run: a PGlite folder, or a PostgreSQL schema of its own behind a TCP proxy (which cuts the connection on demand). */
export interface RunStorage {
  /** PGlite: the data folder. */
  dataDir: string | undefined;
  /** PostgreSQL: the proxy the server connects through. */
  proxy: TcpProxy | null;
  schema: string | null;
  /** PostgreSQL, not through the proxy (the final check reads it directly). */
  directUrl: string | undefined;
  /** PostgreSQL through the proxy, in the run's schema: what the server is given. */
  serverDbUrl: string | undefined;
}

export async function prepareStorage(o: ChaosOptions): Promise<RunStorage> {
  if (o.storage === 'pglite') {
    return { dataDir: mkdtempSync(join(tmpdir(), 'dse-chaos-')), proxy: null, schema: null, directUrl: undefined, serverDbUrl: undefined };
  }
  const directUrl = o.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const u = new URL(directUrl);
  const schema = `dse_chaos_${o.seed}_${process.pid}_${Date.now().toString(36)}`;
  const c = new pg.Client({ connectionString: directUrl });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(`CREATE SCHEMA ${schema}`); // a name built from digits and letters above, not from input
  } finally {
    await c.end();
  }
  const proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
  const proxyPort = await proxy.listen();
  const su = new URL(directUrl);
  su.hostname = '127.0.0.1';
  su.port = String(proxyPort);
  su.searchParams.set('options', `-c search_path=${schema}`);
  return { dataDir: undefined, proxy, schema, directUrl, serverDbUrl: su.toString() };
}

/** Closes the proxy and, unless the data is to be kept, deletes the folder or drops the schema. */
export async function disposeStorage(s: RunStorage, keepData: boolean, log: (line: string) => void): Promise<void> {
  await s.proxy?.close();
  if (!keepData) {
    if (s.dataDir !== undefined) rmSync(s.dataDir, { recursive: true, force: true });
    if (s.schema !== null && s.directUrl !== undefined) {
      await dropSchema(s.directUrl, s.schema).catch(() => undefined); // if left behind: named dse_chaos_*
    }
  } else log(`data kept: ${s.dataDir ?? `schema ${s.schema}`}`);
}

export async function configure(ctx: RunContext, http: HttpClient): Promise<void> {
  const config: Record<string, unknown> = {
    autoRestart: true,
    autoRestartDelayMs: 300,
    heartbeatIntervalMs: 100,
    heartbeatTimeoutMs: 2000,
    checkpointIntervalMs: 50,
  };
  if (ctx.o.mode !== 'speculative') config.mode = ctx.o.mode;
  if (ctx.o.recovery !== undefined) config.recovery = ctx.o.recovery;
  for (let attempt = 0; ; attempt++) {
    const a = await http.request('POST', '/api/config', config, {}, 60_000);
    if ('status' in a && a.status === 200) break;
    if (attempt >= 5) throw new Error(`POST /api/config failed: ${'status' in a ? a.text : a.transport}`);
    await sleep(500);
  }
  // Background load of the built-in workload: chains of puts across nodes (cross-node dependencies).
  await http.request('POST', '/api/workload', { kind: 'mixed', rate: 10 });
}
