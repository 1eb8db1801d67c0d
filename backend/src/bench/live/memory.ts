import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { OpenedStorage } from '../../storage/open';

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

interface Countable {
  rowCount?: (node?: string) => Promise<number> | number;
  query?: (sql: string, values?: unknown[]) => Promise<Record<string, unknown>[] | { rows: Record<string, unknown>[] }>;
}

/** What the storage holds: rows, and bytes where the storage can say (PGlite and PostgreSQL via SQL, PGlite's folder). */
export async function storageSize(opened: OpenedStorage, dataDir: string | null): Promise<StorageSize> {
  const s = opened.storage as unknown as Countable;
  const rows = typeof s.rowCount === 'function' ? await Promise.resolve(s.rowCount()).catch(() => null) : null;
  let tableBytes: number | null = null;
  if (typeof s.query === 'function') {
    const r = await s.query("SELECT pg_total_relation_size('dse_checkpoints')::text AS b").catch(() => null);
    const first = r === null ? undefined : Array.isArray(r) ? r[0] : r.rows[0];
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
