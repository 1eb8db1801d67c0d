import pg from 'pg';
import { dropSchema as dropSchemaAt } from '../../src/storage/postgres';

/**
 * Where the PostgreSQL tests run: `DATABASE_URL`, else the local server on 127.0.0.1:5432 when one
 * answers. Without a server they are skipped with a message, unless `DSE_REQUIRE_POSTGRES=1` (CI):
 * then the missing server fails the run.
 */
export const POSTGRES_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const POSTGRES_REQUIRED = process.env.DSE_REQUIRE_POSTGRES === '1';

async function probe(url: string): Promise<string | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await c.end().catch(() => undefined);
  }
}

let cached: Promise<string | null> | undefined;

/** Null when PostgreSQL answers; otherwise why not. */
export function postgresProblem(): Promise<string | null> {
  cached ??= probe(POSTGRES_URL);
  return cached;
}

/** Says once, visibly, that PostgreSQL tests are skipped. */
export function reportSkip(what: string, problem: string): void {
  const url = POSTGRES_URL.replace(/:[^:@/]*@/, ':***@');
  console.warn(
    `\n*** PostgreSQL not reachable at ${url} (${problem}): ${what} SKIPPED. Set DATABASE_URL, or DSE_REQUIRE_POSTGRES=1 to make this a failure. ***\n`,
  );
}

/** A schema name of its own for one test run. */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Drops a schema created by a test (with a connection of its own). */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^[a-z0-9_]+$/.test(schema)) throw new Error(`bad schema name ${schema}`);
  await dropSchemaAt(POSTGRES_URL, schema);
}
