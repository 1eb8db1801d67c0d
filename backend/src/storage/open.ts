import { DseError } from '@dse/shared';
import * as path from 'node:path';
import type { Storage } from '../core/ports';
import { MemoryStorage } from './memory';
import { PgliteStorage } from './pglite';
import { PostgresStorage } from './postgres';
import { WorkerPgliteStorage } from './worker-storage';

export type StorageKind = 'memory' | 'pglite' | 'postgres';

export interface OpenStorageOptions {
  /** Default: `postgres` when `DATABASE_URL` is set, otherwise `pglite`. */
  kind?: StorageKind;
  /** PGlite's data folder; default `DSE_DATA_DIR` or `.data/`. */
  dataDir?: string;
  /** PostgreSQL connection string; default `DATABASE_URL`. */
  databaseUrl?: string;
  /** PostgreSQL: a schema of its own (created if missing); default the server's search_path. */
  schema?: string;
  /**
   * PGlite: run the database in a worker thread (`worker`, the default: its queries never stall this
   * process's event loop) or in this thread (`main`).
   */
  pgliteThread?: 'worker' | 'main';
}

export interface OpenedStorage {
  kind: StorageKind;
  storage: Storage;
  /** PostgreSQL: the schema it lives in (null: the server's search_path), so that node processes can open their own pools. */
  schema?: string | null;
  /** PostgreSQL: the connection string (kept in memory for the node processes this one spawns; never sent, never shown). */
  url?: string;
  /** Human-readable: where the data lives (folder or database, never a password). */
  describe: string;
  close(): Promise<void>;
}

/** The PGlite data folder the options and environment name. */
export function defaultDataDir(opts: OpenStorageOptions = {}): string {
  return path.resolve(opts.dataDir ?? (process.env.DSE_DATA_DIR || '.data'));
}

/**
 * Opens the storage the runtime should use. The SQL kinds live in `sql.ts` (one code path for PGlite
 * and PostgreSQL); this is the one place that chooses between them. Rejects with a `DseError`:
 * `StorageLocked` (another process owns the PGlite folder), `StorageUnavailable` (the server cannot be
 * reached), `StorageCorrupt` (the files cannot be read) or `StorageConflict` (a newer schema).
 */
export async function openStorage(opts: OpenStorageOptions = {}): Promise<OpenedStorage> {
  const databaseUrl = opts.databaseUrl ?? process.env.DATABASE_URL;
  const kind: StorageKind = opts.kind ?? (databaseUrl ? 'postgres' : 'pglite');
  if (kind === 'memory') {
    return { kind, storage: new MemoryStorage(), describe: 'in memory (nothing survives a restart)', close: () => Promise.resolve() };
  }
  if (kind === 'pglite') {
    if ((opts.pgliteThread ?? 'worker') === 'worker') {
      const w = await WorkerPgliteStorage.open(defaultDataDir(opts));
      return { kind, storage: w, describe: `${w.describe} (in a worker thread)`, close: () => w.close() };
    }
    const s = await PgliteStorage.open({ dataDir: defaultDataDir(opts) });
    return { kind, storage: s.storage, describe: s.describe, close: () => s.close() };
  }
  if (!databaseUrl) throw new DseError('BadRequest', 'storage kind postgres needs a connection string: set DATABASE_URL');
  const s = await PostgresStorage.open({ url: databaseUrl, ...(opts.schema !== undefined ? { schema: opts.schema } : {}) });
  return { kind, storage: s.storage, describe: s.describe, schema: opts.schema ?? null, url: databaseUrl, close: () => s.close() };
}
