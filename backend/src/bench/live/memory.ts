import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Storage } from '../../core/ports';
import { MemoryStorage } from '../../storage/memory';
import type { OpenedStorage } from '../../storage/open';
import { SqlStorage } from '../../storage/sql';
import { WorkerPgliteStorage } from '../../storage/worker-storage';

/**
 * Memory and storage readings for the live-cluster benchmarks (`bench:scale`, `bench:soak`): the server
 * is this process (with PGlite's worker thread, when the storage is PGlite); the node processes are
 * read from /proc (Linux; elsewhere their figures are null).
 */

const MB = 1024 * 1024;
const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

export interface ServerMemory {
  /** Resident set of this process, every thread (MB). */
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  /** Memory outside the JavaScript heap held by JavaScript objects: buffers, WebAssembly memory of this thread (MB). */
  externalMb: number;
}

export function serverMemory(): ServerMemory {
  const m = process.memoryUsage();
  return { rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed), heapTotalMb: mb(m.heapTotal), externalMb: mb(m.external) };
}

/** The resident set of a process (MB), from /proc/<pid>/status; null when it cannot be read (gone, not Linux). */
export function processRssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? null : Math.round((Number(kb) / 1024) * 10) / 10;
  } catch {
    return null;
  }
}

/**
 * A process's private memory (MB): its anonymous resident pages (heap, stacks, buffers), without the
 * pages of the Node binary and libraries that every node process shares; null when it cannot be read.
 */
export function processPrivateMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^RssAnon:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? null : Math.round((Number(kb) / 1024) * 10) / 10;
  } catch {
    return null;
  }
}

/** Bytes under a folder (files only; a file that vanishes meanwhile counts 0). */
export function folderBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const p = join(dir, name);
    try {
      const st = statSync(p);
      total += st.isDirectory() ? folderBytes(p) : st.size;
    } catch {
      // removed while we walked
    }
  }
  return total;
}

export interface StorageSize {
  /** Checkpoint rows held. */
  rows: number | null;
  /** The checkpoint table with its indexes and TOAST, as the database counts it (bytes). */
  tableBytes: number | null;
  /** PGlite: the data folder on disk (bytes), write-ahead log included. */
  folderBytes: number | null;
}

/** What a storage can tell of its size beyond the Storage port: its rows, and (PGlite in its worker) a query. */
interface Countable {
  rowCount(): Promise<number> | number;
  query?: (sql: string) => Promise<Record<string, unknown>[]>;
}

/** The storage's size readings, by its kind; null for a kind that has none. */
function countable(s: Storage): Countable | null {
  if (s instanceof WorkerPgliteStorage) return { rowCount: () => s.rowCount(), query: (sql) => s.query(sql) };
  if (s instanceof SqlStorage || s instanceof MemoryStorage) return { rowCount: () => s.rowCount() };
  return null;
}

/** What the storage holds: rows, and bytes where the storage can say (PGlite's table via SQL, PGlite's folder). */
export async function storageSize(opened: OpenedStorage, dataDir: string | null): Promise<StorageSize> {
  const s = countable(opened.storage);
  const rows = s === null ? null : await Promise.resolve(s.rowCount()).catch(() => null);
  let tableBytes: number | null = null;
  if (s?.query !== undefined) {
    const r = await s.query("SELECT pg_total_relation_size('dse_checkpoints')::text AS b").catch(() => null);
    const first = r?.[0];
    if (first !== undefined) tableBytes = Number(first.b);
  }
  return { rows, tableBytes, folderBytes: dataDir === null ? null : folderBytes(dataDir) };
}

/** Least-squares slope of y against x (per unit of x); null with fewer than 2 points or no spread in x. */
export function slope(points: readonly (readonly [number, number])[]): number | null {
  const n = points.length;
  if (n < 2) return null;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}
