import { DseError } from '@dse/shared';
import pg from 'pg';
import { migrate } from './migrations';
import type { SqlConnection, SqlPool } from './sql';
import { SqlStorage, isConnectionError, translateError } from './sql';

/**
 * Drops a schema and everything in it (the tests, benchmarks and the chaos tool each work in a schema
 * of their own). A bad name is refused; a database error is thrown.
 */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  if (!SCHEMA_NAME.test(schema)) throw new DseError('BadRequest', `bad schema name ${JSON.stringify(schema)}`);
  const c = new pg.Client({ connectionString: databaseUrl });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** PostgreSQL through `pg`: selected by `DATABASE_URL`. Several processes may share one database. */

export interface PostgresOptions {
  /** A connection string: `postgres://user:password@host:port/database`. */
  url: string;
  /** A schema of its own (created if missing; tests use one each); default: the server's search_path. */
  schema?: string;
  /** Connections in the pool (default 8). */
  poolMax?: number;
  /** Giving up on connecting (default 5 s) or on a query's answer (default 30 s): the connection is then dropped. */
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The connection string without its password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, '') || '(default database)';
    return `PostgreSQL at ${u.hostname}${u.port ? `:${u.port}` : ''}/${db}${u.username ? ` as ${decodeURIComponent(u.username)}` : ''}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}

class PgPool implements SqlPool {
  constructor(readonly pool: pg.Pool) {}

  async withConnection<T>(fn: (c: SqlConnection) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // A connection lost while checked out (between statements) is reported as an event: without a
    // listener it would crash the process.
    const onError = (e: Error): void => {
      broken = e;
    };
    client.on('error', onError);
    const conn: SqlConnection = {
      query<R extends object>(text: string, values?: unknown[]) {
        return client.query<R & pg.QueryResultRow>(text, values).catch((e: unknown) => {
          if (isConnectionError(e)) broken = e instanceof Error ? e : new Error(String(e));
          throw e;
        });
      },
    };
    try {
      return await fn(conn);
    } finally {
      client.removeListener('error', onError);
      // A broken connection is dropped, never handed out again.
      client.release(broken);
    }
  }
}

export class PostgresStorage {
  readonly storage: SqlStorage;
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    readonly describe: string,
    readonly schema: string | undefined,
  ) {
    this.storage = new SqlStorage(new PgPool(pool), { label: describe });
  }

  static async open(opts: PostgresOptions): Promise<PostgresStorage> {
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
      throw new DseError('BadRequest', `schema name ${JSON.stringify(opts.schema)}: use lower-case letters, digits and _`);
    }
    const describe = describeUrl(opts.url) + (opts.schema !== undefined ? ` (schema ${opts.schema})` : '');
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolMax ?? 8,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      query_timeout: opts.queryTimeoutMs ?? 30_000,
      keepAlive: true,
      application_name: 'dse',
      ...(opts.schema !== undefined ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    // An idle connection that breaks is dropped by the pool; the next checkout opens a new one.
    pool.on('error', () => undefined);
    const self = new PostgresStorage(pool, describe, opts.schema);
    try {
      const wrapped = new PgPool(pool);
      await wrapped.withConnection(async (c) => {
        // An identifier (checked above), not a value: it cannot be a parameter.
        if (opts.schema !== undefined) await c.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
        await migrate(c);
      });
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw translateError(e, `${describe}: start`);
    }
    return self;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
