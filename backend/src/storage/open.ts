import type { Storage } from '../core/ports';
import { MemoryStorage } from './memory';

export type StorageKind = 'memory' | 'pglite' | 'postgres';

export interface OpenStorageOptions {
  /** Default: `postgres` when `DATABASE_URL` is set, otherwise `pglite`. */
  kind?: StorageKind;
  /** PGlite's data folder; default `DSE_DATA_DIR` or `.data/`. */
  dataDir?: string;
  /** PostgreSQL connection string; default `DATABASE_URL`. */
  databaseUrl?: string;
}

export interface OpenedStorage {
  kind: StorageKind;
  storage: Storage;
  /** Human-readable: where the data lives (folder or database, never a password). */
  describe: string;
  close(): Promise<void>;
}

/**
 * Opens the storage the runtime should use. The SQL kinds live in `sql.ts` (one code path for PGlite
 * and PostgreSQL); this is the one place that chooses between them.
 */
export async function openStorage(opts: OpenStorageOptions = {}): Promise<OpenedStorage> {
  const kind: StorageKind = opts.kind ?? (process.env.DATABASE_URL ? 'postgres' : 'pglite');
  if (kind === 'memory') {
    return { kind, storage: new MemoryStorage(), describe: 'in memory (nothing survives a restart)', close: () => Promise.resolve() };
  }
  // PGlite and PostgreSQL: implemented by the persistence issue (#3).
  throw new Error(`storage kind ${kind} is not available yet`);
}
