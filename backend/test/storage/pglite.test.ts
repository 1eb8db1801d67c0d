import { DseError } from '@dse/shared';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, acquireDataDirLock, processStartTime } from '../../src/storage/lock';
import { SCHEMA_VERSION } from '../../src/storage/migrations';
import { defaultDataDir, openStorage } from '../../src/storage/open';
import { PgliteStorage } from '../../src/storage/pglite';
import { freshPgliteDir } from './helpers';

const LOCK_CHILD = path.join(import.meta.dirname, 'lock-child.ts');

async function codeOf(p: Promise<unknown>): Promise<DseError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DseError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('the data-folder lock (lock.ts)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dse-lock-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('one owner: a second lock is refused with the owner named; release frees it', () => {
    const a = acquireDataDirLock(dir);
    let err: unknown;
    try {
      acquireDataDirLock(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DseError);
    expect((err as DseError).code).toBe('StorageLocked');
    expect((err as DseError).message).toContain(String(process.pid));
    expect((err as DseError).message).toContain(dir);
    a.release();
    a.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    acquireDataDirLock(dir).release();
  });

  it('a lock of a dead process, or of a pid now used by a later process, is stale and taken over', () => {
    const lockPath = path.join(dir, LOCK_FILE);
    fs.writeFileSync(lockPath, JSON.stringify({ pid: deadPid(), startTime: null, lockedAt: 0, token: 'dead' }));
    const a = acquireDataDirLock(dir);
    expect((JSON.parse(fs.readFileSync(lockPath, 'utf8')) as { pid: number }).pid).toBe(process.pid);
    a.release();
    if (processStartTime(process.pid) !== null) {
      // Our own pid, but another start time: the pid was reused, the owner is gone.
      fs.writeFileSync(lockPath, JSON.stringify({ pid: process.pid, startTime: '1', lockedAt: 0, token: 'reused' }));
      acquireDataDirLock(dir).release();
    }
    // A lock file cut short by a crash is stale too.
    fs.writeFileSync(lockPath, '{"pid": 12');
    acquireDataDirLock(dir).release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('PGlite storage on a data folder', () => {
  let dir = '';
  let db: PgliteStorage;
  beforeAll(async () => {
    dir = await freshPgliteDir('dse-pglite-');
    db = await PgliteStorage.open({ dataDir: dir });
  });
  afterAll(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a second open of the folder in the same process is refused (StorageLocked)', async () => {
    const e = await codeOf(PgliteStorage.open({ dataDir: dir }));
    expect(e.code).toBe('StorageLocked');
    expect(e.message).toContain(`process ${process.pid}`);
    expect(e.message).toContain(dir);
  });

  it('a second process is refused (StorageLocked naming this process and the folder)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', LOCK_CHILD, dir]);
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { code?: string; message?: string };
    expect(r.code).toBe('StorageLocked');
    expect(r.message).toContain(`process ${process.pid}`);
    expect(r.message).toContain(dir);
  });

  it('data survives a close and reopen; migrations are recorded once', async () => {
    await db.storage.writeCheckpoints([
      { node: 'n1', worldLine: 1, version: 1, prevVersion: 0, deps: {}, full: true, changes: { set: [['k', 'v']], del: [] } },
    ]);
    await db.storage.saveCoordinator({ worldLine: 1, cut: { n1: 1 }, recoveryCuts: [], nodes: ['n1'] });
    await db.close();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    db = await PgliteStorage.open({ dataDir: dir });
    expect((await db.storage.loadCheckpoint('n1', 1))!.state.get('k')).toBe('v');
    expect((await db.storage.loadCoordinator())!.cut).toEqual({ n1: 1 });
    const m = await db.query<{ version: number }>('SELECT version FROM dse_migrations ORDER BY version');
    expect(m.rows.map((r) => Number(r.version))).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
  });

  it('the write-ahead log stays bounded: PGlite has no checkpointer, so the storage runs CHECKPOINT itself', async () => {
    // Written and deleted, as checkpoint rows are: about 100 MB of log (random data: no compression).
    const walMb = (): number => fs.readdirSync(path.join(dir, 'pglite', 'pg_wal')).filter((f) => /^[0-9A-F]{24}$/.test(f)).length * 16;
    await db.query('CREATE TABLE wal_scratch (id int, v text)');
    for (let round = 0; round < 24; round++) {
      await db.query(
        "INSERT INTO wal_scratch SELECT g, (SELECT string_agg(md5(random()::text || g || k), '') FROM generate_series(1, 60) k) FROM generate_series(1, 2000) g",
      );
      await db.query('DELETE FROM wal_scratch');
    }
    const before = walMb();
    expect(before).toBeGreaterThan(96);
    await db.walCheckpoint();
    // What is left is about max_wal_size (64 MB) and the segment in use.
    expect(walMb()).toBeLessThanOrEqual(96);
    await db.query('DROP TABLE wal_scratch');
  }, 120_000);

  it('a database from a newer program is refused (StorageConflict), and the lock is released', async () => {
    await db.query('INSERT INTO dse_migrations (version, name) VALUES ($1, $2)', [SCHEMA_VERSION + 1, 'from the future']);
    await db.close();
    const e = await codeOf(PgliteStorage.open({ dataDir: dir }));
    expect(e.code).toBe('StorageConflict');
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    // Repair the folder for the other tests with a plain PGlite.
    const { PGlite } = await import('@electric-sql/pglite');
    const raw = await PGlite.create(path.join(dir, 'pglite'));
    await raw.query('DELETE FROM dse_migrations WHERE version > $1', [SCHEMA_VERSION]);
    await raw.close();
    db = await PgliteStorage.open({ dataDir: dir });
  });

  it('a table dropped under the storage is StorageCorrupt (definite), not a hang or a crash', async () => {
    await db.query('DROP TABLE dse_checkpoints');
    const e = await codeOf(
      db.storage.writeCheckpoints([{ node: 'n1', worldLine: 1, version: 2, prevVersion: 1, deps: {}, full: true, changes: { set: [], del: [] } }]),
    );
    expect(e.code).toBe('StorageCorrupt');
    expect((await codeOf(db.storage.loadCheckpoint('n1', 1))).code).toBe('StorageCorrupt');
  });
});

describe('openStorage', () => {
  it('chooses PGlite in DSE_DATA_DIR without DATABASE_URL, and says where the data lives', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dse-open-'));
    const saved = { dir: process.env.DSE_DATA_DIR, url: process.env.DATABASE_URL };
    try {
      process.env.DSE_DATA_DIR = path.join(root, 'here');
      delete process.env.DATABASE_URL;
      expect(defaultDataDir()).toBe(path.join(root, 'here'));
      const s = await openStorage();
      expect(s.kind).toBe('pglite');
      expect(s.describe).toContain(path.join(root, 'here'));
      expect(fs.existsSync(path.join(root, 'here', LOCK_FILE))).toBe(true);
      await s.close();
      expect(fs.existsSync(path.join(root, 'here', LOCK_FILE))).toBe(false);
    } finally {
      if (saved.dir === undefined) delete process.env.DSE_DATA_DIR;
      else process.env.DSE_DATA_DIR = saved.dir;
      if (saved.url !== undefined) process.env.DATABASE_URL = saved.url;
      fs.rmSync(root, { recursive: true, force: true });
    }
    delete process.env.DSE_DATA_DIR;
    expect(defaultDataDir()).toBe(path.resolve('.data'));
    if (saved.dir !== undefined) process.env.DSE_DATA_DIR = saved.dir;
  });

  it('postgres without a connection string, or an unreachable server, is a typed error', async () => {
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      expect((await codeOf(openStorage({ kind: 'postgres' }))).code).toBe('BadRequest');
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
    // Port 1 on localhost: nothing listens there.
    const e = await codeOf(openStorage({ kind: 'postgres', databaseUrl: 'postgres://someone:secret@127.0.0.1:1/nothing' }));
    expect(e.code).toBe('StorageUnavailable');
    expect(e.definite).toBe(false);
    expect(e.message).toContain('127.0.0.1:1/nothing');
    expect(e.message).not.toContain('secret');
  });
});
