import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import { DseError } from '@dse/shared';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import type { DataDirLock } from './lock';
import { acquireDataDirLock } from './lock';
import { migrate } from './migrations';
import type { SqlConnection, SqlPool } from './sql';
import { SqlStorage, translateError } from './sql';

/**
 * PGlite (PostgreSQL compiled to WebAssembly, running in this process) on a data folder: the embedded
 * default. The folder holds `dse.lock` (its one owner, see lock.ts) and `pglite/` (the database files).
 * It is reached through node-postgres's client API like PostgreSQL, so the SQL in sql.ts serves both.
 */

export const IN_MEMORY = 'memory://';

export interface PgliteOptions {
  /** The data folder, or `memory://` for a database that lives only as long as the process (tests). */
  dataDir: string;
}

/**
 * node-postgres's client as the storage's connection. Its `query` types rows as `QueryResultRow` (an
 * index signature), which the storage's row interfaces have not: the caller's row type is passed on
 * with that signature added, as postgres.ts does.
 */
function sqlConnection(client: pg.Client): SqlConnection {
  return {
    query<R extends object>(text: string, values?: unknown[]) {
      return client.query<R & pg.QueryResultRow>(text, values);
    },
  };
}

/** One connection, used by one transaction at a time: PGlite is a single-user PostgreSQL. */
class SingleConnectionPool implements SqlPool {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly connection: SqlConnection;
  constructor(client: pg.Client) {
    this.connection = sqlConnection(client);
  }

  withConnection<T>(fn: (c: SqlConnection) => Promise<T>): Promise<T> {
    const run = this.tail.then(() => fn(this.connection));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every queued transaction has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

/** How often the checkpoint table is vacuumed. */
const VACUUM_EVERY_MS = 30_000;
/** How often PostgreSQL's own checkpoint runs (its `checkpoint_timeout` default), which lets it drop old WAL segments. */
const WAL_CHECKPOINT_EVERY_MS = 300_000;
/**
 * The write-ahead log PostgreSQL keeps after a checkpoint (its defaults: 80 MB kept, up to 1 GB). PGlite
 * runs no checkpointer process, so without `walCheckpoint` the log only grows (the hour-long soak: +41 MB
 * an hour); with it, what is left after a checkpoint is at most about `max_wal_size`.
 */
const WAL_PARAMS = ['-c', 'max_wal_size=64MB', '-c', 'min_wal_size=32MB'];

export class PgliteStorage {
  readonly storage: SqlStorage;
  readonly describe: string;
  private closed = false;
  private readonly vacuumTimer: NodeJS.Timeout;
  private readonly walTimer: NodeJS.Timeout;

  private constructor(
    readonly db: PGlite,
    private readonly client: pg.Client,
    readonly pool: SingleConnectionPool,
    private readonly lock: DataDirLock | null,
    readonly dataDir: string,
  ) {
    this.describe = dataDir === IN_MEMORY ? 'PGlite in memory (nothing survives a restart)' : `PGlite in ${dataDir}`;
    this.storage = new SqlStorage(pool, { label: this.describe });
    // PGlite runs no autovacuum: the rows pruning deletes would stay as dead space and the table would
    // grow for as long as the cluster runs. A plain VACUUM makes their space reusable (a few ms on a pruned table).
    this.vacuumTimer = setInterval(() => {
      this.pool.withConnection((c) => c.query('VACUUM dse_checkpoints')).catch(() => undefined);
    }, VACUUM_EVERY_MS);
    this.vacuumTimer.unref();
    this.walTimer = setInterval(() => void this.walCheckpoint().catch(() => undefined), WAL_CHECKPOINT_EVERY_MS);
    this.walTimer.unref();
  }

  /**
   * A PostgreSQL checkpoint: the write-ahead log before it is no longer needed, and PostgreSQL removes the
   * segments beyond `max_wal_size`. Runs every five minutes (a server's checkpointer would; PGlite has none).
   */
  walCheckpoint(): Promise<void> {
    return this.pool.withConnection((c) => c.query('CHECKPOINT')).then(() => undefined);
  }

  static async open(opts: PgliteOptions): Promise<PgliteStorage> {
    const inMemory = opts.dataDir === IN_MEMORY;
    const dataDir = inMemory ? IN_MEMORY : path.resolve(opts.dataDir);
    // The lock comes first: nothing touches the database files before this process owns them.
    const lock = inMemory ? null : acquireDataDirLock(dataDir);
    let db: PGlite | null = null;
    try {
      const dbDir = inMemory ? IN_MEMORY : path.join(dataDir, 'pglite');
      if (!inMemory) fs.mkdirSync(dbDir, { recursive: true });
      // PGlite touches all of shared_buffers at start (128 MB by default): 16 MB holds the checkpoint
      // table many times over (pruning bounds it) and saves ~110 MB of the server's resident memory.
      db = await PGlite.create(dbDir, { startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB', ...WAL_PARAMS] });
      const client = new pg.Client(createPgConfig(db));
      await client.connect();
      const pool = new SingleConnectionPool(client);
      await pool.withConnection((c) => migrate(c));
      return new PgliteStorage(db, client, pool, lock, dataDir);
    } catch (e) {
      if (db !== null) await db.close().catch(() => undefined);
      lock?.release();
      if (e instanceof DseError) throw e;
      // PGlite fails to start on files it cannot read (another program's, or damaged ones).
      throw new DseError('StorageCorrupt', `PGlite could not open ${dataDir}: ${translateError(e, 'start').message}`);
    }
  }

  /** Runs one query outside the storage's own methods (tests, the benchmark). */
  query<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }> {
    return this.pool.withConnection((c) => c.query<R>(text, values));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.vacuumTimer);
    clearInterval(this.walTimer);
    try {
      await this.pool.idle();
      await this.client.end().catch(() => undefined);
      await this.db.close();
    } finally {
      this.lock?.release();
    }
  }
}
