import { DseError } from '@dse/shared';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * One owning process per PGlite data folder. PGlite is PostgreSQL in this process's memory: a second
 * process (or a second open in this one) on the same files would corrupt them. The lock is a file in
 * the data folder holding the owner's pid and the pid's start time; a lock whose owner is gone (the pid
 * is dead, or was reused by a process that started later) is stale and taken over.
 */

export const LOCK_FILE = 'dse.lock';

export interface LockOwner {
  pid: number;
  /** The owner's start time as the OS reports it (Linux: clock ticks since boot), or null where unknown. */
  startTime: string | null;
  /** Milliseconds since the epoch, for people reading the file. */
  lockedAt: number;
  /** A random token: tells this lock from a later one of the same process. */
  token: string;
}

export interface DataDirLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** The start time of `pid`, or null where it cannot be read (no /proc, or the process is gone). */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: count fields after its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field 22 is starttime.
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that wrote `owner` still runs. */
export function ownerAlive(owner: LockOwner): boolean {
  if (!pidAlive(owner.pid)) return false;
  if (owner.startTime === null) return true;
  const now = processStartTime(owner.pid);
  // A different start time: the pid was reused by another process; the owner is gone.
  return now === null || now === owner.startTime;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return null;
    return {
      pid: o.pid,
      startTime: typeof o.startTime === 'string' ? o.startTime : null,
      lockedAt: typeof o.lockedAt === 'number' ? o.lockedAt : 0,
      token: typeof o.token === 'string' ? o.token : '',
    };
  } catch {
    return null;
  }
}

function readText(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function lockedError(dir: string, owner: LockOwner): DseError {
  const self = owner.pid === process.pid ? ' (this process: the folder is already open here)' : '';
  return new DseError(
    'StorageLocked',
    `the data folder ${dir} is in use by process ${owner.pid}${self}, since ${new Date(owner.lockedAt).toISOString()}. ` +
      `One process owns a PGlite folder: stop that process, point DSE_DATA_DIR at another folder, or set DATABASE_URL to use a PostgreSQL server.`,
  );
}

/**
 * Takes the lock of `dir` (created if missing). Throws `StorageLocked` when a live process holds it,
 * and takes over a stale lock.
 */
export function acquireDataDirLock(dir: string): DataDirLock {
  fs.mkdirSync(dir, { recursive: true });
  const lockPath = path.join(dir, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    lockedAt: Date.now(),
    token: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  };
  const content = JSON.stringify(owner) + '\n';

  for (let attempt = 0; attempt < 5; attempt++) {
    // Written aside, then linked into place: link fails when the lock exists, and nobody reads a half-written lock.
    const tmp = `${lockPath}.${owner.token}.tmp`;
    fs.writeFileSync(tmp, content);
    try {
      fs.linkSync(tmp, lockPath);
      fs.unlinkSync(tmp);
      return makeLock(lockPath, owner);
    } catch (e) {
      fs.unlinkSync(tmp);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = readText(lockPath);
    if (text === null) continue; // released meanwhile: try again
    const current = parseOwner(text);
    if (current !== null && ownerAlive(current)) throw lockedError(dir, current);
    // Stale (or unreadable, e.g. cut short by a crash): move it aside, and check that what moved is
    // what was judged stale; another process may have taken it over in between.
    const aside = `${lockPath}.stale-${owner.token}`;
    try {
      fs.renameSync(lockPath, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readText(aside);
    if (moved !== text) {
      // We moved a fresh lock of someone else: put it back and report it.
      try {
        fs.linkSync(aside, lockPath);
      } catch {
        // Someone holds the lock again anyway.
      }
      fs.rmSync(aside, { force: true });
      const other = moved === null ? null : parseOwner(moved);
      if (other !== null) throw lockedError(dir, other);
      continue;
    }
    fs.rmSync(aside, { force: true });
  }
  throw new DseError('StorageLocked', `the data folder ${dir}: could not take its lock ${lockPath} (it keeps changing hands)`);
}

function makeLock(lockPath: string, owner: LockOwner): DataDirLock {
  let done = false;
  const release = (): void => {
    if (done) return;
    done = true;
    process.removeListener('exit', release);
    try {
      const text = readText(lockPath);
      if (text !== null && parseOwner(text)?.token === owner.token) fs.unlinkSync(lockPath);
    } catch {
      // Best effort: a lock left behind is stale once this process is gone.
    }
  };
  process.on('exit', release);
  return { path: lockPath, owner, release };
}
