import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface RunningServer {
  url: string;
  process: ChildProcess;
  dataDir: string;
}

/**
 * Builds the web app (unless `build: false`: a server started earlier in the run built it), then
 * starts the real server (`npm start`'s entry) on a free port with a fresh PGlite folder, or on
 * PostgreSQL when `env` gives a DATABASE_URL.
 */
export async function startPlayground(
  env: Record<string, string> = {},
  startTimeoutMs = 120_000,
  opts: { build?: boolean; buildArgs?: string[] } = {},
): Promise<RunningServer> {
  if (opts.build !== false) {
    const build = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn', ...(opts.buildArgs ?? [])],
      { cwd: ROOT, stdio: 'inherit' },
    );
    if (build.status !== 0) throw new Error('the web app did not build');
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'dse-playwright-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'backend/src/server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DSE_DATA_DIR: dataDir, DSE_SKIP_WEB_BUILD: '1', DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within ${startTimeoutMs} ms:\n${log}`)), startTimeoutMs);
    const onData = (b: Buffer): void => {
      log += b.toString();
      const m = /DSE Playground: (http:\/\/[^\s/]+)\//.exec(log);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before it started:\n${log}`));
    });
  });
  // Keep draining its output so the pipe never fills.
  child.stdout.resume();
  child.stderr.resume();
  return { url, process: child, dataDir };
}

/** Stops the server the way Ctrl-C does (it stops its node processes), then removes its data. */
export async function stopPlayground(pid: number, dataDir: string): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  for (let i = 0; i < 150; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // stopped
  }
  rmSync(dataDir, { recursive: true, force: true });
}

/** Where the browser tests' PostgreSQL is: DATABASE_URL, else the local server (as the backend's PostgreSQL tests). */
export const POSTGRES_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const POSTGRES_REQUIRED = process.env.DSE_REQUIRE_POSTGRES === '1';

export interface PostgresSchema {
  /** DATABASE_URL for the server: POSTGRES_URL with the schema as its search_path. */
  serverUrl: string;
  schema: string;
  drop(): Promise<void>;
}

async function withClient<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * A schema of its own on PostgreSQL for one server (created now, dropped by `drop`), or why there is
 * none: the reason when PostgreSQL does not answer.
 */
export async function postgresSchema(prefix: string): Promise<PostgresSchema | { problem: string }> {
  const schema = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  if (!/^[a-z0-9_]+$/.test(schema)) throw new Error(`bad schema name ${schema}`);
  try {
    await withClient((c) => c.query(`CREATE SCHEMA ${schema}`));
  } catch (e) {
    return { problem: e instanceof Error ? e.message : String(e) };
  }
  const u = new URL(POSTGRES_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    serverUrl: u.toString(),
    schema,
    drop: () => withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => undefined),
  };
}

/** POSTGRES_URL without its password, for messages. */
export function postgresShown(): string {
  return POSTGRES_URL.replace(/:[^:@/]*@/, ':***@');
}
