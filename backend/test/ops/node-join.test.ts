/**
 * A node process that cannot join waits and tries again (capped exponential backoff with jitter)
 * instead of exiting at once and being respawned in a loop; a process the server spawned still goes
 * when the server is gone.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/chaos/server-proc';
import { backoffDelay, JOIN_BACKOFF } from '../../src/live/backoff';
import { startServer } from '../../src/server/server';
import { waitFor } from '../live/helpers';
import { alive } from './procs';

const NODE_MAIN = fileURLToPath(new URL('../../src/live/node-main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('backoffDelay', () => {
  const b = { baseMs: 100, capMs: 1000 };
  it('doubles from the base up to the cap, between half the step and the step', () => {
    expect([1, 2, 3, 4, 5, 6, 40].map((a) => backoffDelay(a, b, () => 0))).toEqual([50, 100, 200, 400, 500, 500, 500]);
    expect([1, 2, 3, 4, 5, 6, 40].map((a) => backoffDelay(a, b, () => 0.999999))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });
  it('jitters: attempts of nodes started together spread out', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(3, b)));
    expect(seen.size).toBeGreaterThan(10);
    for (const d of seen) expect(d >= 200 && d <= 400).toBe(true);
  });
  it('joins wait at most 10 s', () => {
    expect(backoffDelay(1000, JOIN_BACKOFF, () => 1)).toBe(JOIN_BACKOFF.capMs);
    expect(JOIN_BACKOFF.capMs).toBeLessThanOrEqual(10_000);
  });
});

interface LogLine {
  level: string;
  msg: string;
  node?: string;
  attempt?: number;
  retryInMs?: number;
  [k: string]: unknown;
}

/** A node process with its stderr read as JSON log lines. */
function startNode(args: string[], stdin: 'pipe' | 'ignore' = 'ignore'): { child: ChildProcess; lines: LogLine[]; other: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, DSE_LOG_LEVEL: 'info', DSE_TOKEN: '', DATABASE_URL: '' },
    stdio: [stdin, 'ignore', 'pipe'],
  });
  const lines: LogLine[] = [];
  const other: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const all = (partial + chunk).split('\n');
    partial = all.pop()!;
    for (const l of all) {
      try {
        lines.push(JSON.parse(l) as LogLine);
      } catch {
        other.push(l);
      }
    }
  });
  return { child, lines, other };
}

describe('a node process that cannot join', () => {
  it('tries again with growing waits, stays up, and joins once the server is there', async () => {
    const port = await freePort();
    const { child, lines, other } = startNode(['--server', `http://127.0.0.1:${port}`, '--id', 'late1']);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const retries = () => lines.filter((l) => /^cannot join/.test(l.msg));
      await waitFor('three failed attempts', () => retries().length >= 3, 60_000);
      expect(child.exitCode).toBeNull();
      const r = retries().slice(0, 3);
      expect(r.map((l) => l.attempt)).toEqual([1, 2, 3]);
      for (const [i, l] of r.entries()) {
        const step = Math.min(JOIN_BACKOFF.capMs, JOIN_BACKOFF.baseMs * 2 ** i);
        expect(l.retryInMs).toBeGreaterThanOrEqual(step / 2);
        expect(l.retryInMs).toBeLessThanOrEqual(step);
        expect(l).toMatchObject({ level: 'warn', node: 'late1', pid: child.pid });
        expect(typeof l.time).toBe('string');
      }
      expect(other).toEqual([]);

      const s = await startServer({ port, storage: 'memory', nodes: 0, log: () => undefined });
      try {
        await waitFor('late1 up', () => s.cluster.info(0).nodes.find((n) => n.id === 'late1')?.status === 'up', 60_000);
        expect(s.cluster.info(0).nodes.find((n) => n.id === 'late1')).toMatchObject({ origin: 'remote', pid: child.pid });
        const joined = await waitFor('the joined line', () => lines.find((l) => l.msg === 'joined'), 10_000);
        expect(joined.failedAttempts).toBeGreaterThanOrEqual(3);
      } finally {
        await s.close();
      }
      // Once joined, losing the server ends the process (its memory must not outlive the failure).
      expect(await exited).toBe(3);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('waits out a refusal that may pass (a full cluster), and exits on one that cannot (a bad id, a stale incarnation)', async () => {
    const port = await freePort();
    const s = await startServer({ port, storage: 'memory', nodes: 0, log: () => undefined, limits: { nodesMax: 2 } });
    const url = `http://127.0.0.1:${port}`;
    const procs: ChildProcess[] = [];
    const exitOf = (c: ChildProcess): Promise<number | null> => new Promise((resolve) => (c.exitCode !== null ? resolve(c.exitCode) : c.once('exit', resolve)));
    const status = (id: string): string | undefined => s.cluster.info(0).nodes.find((n) => n.id === id)?.status;
    try {
      for (const id of ['a1', 'a2']) procs.push(startNode(['--server', url, '--id', id]).child);
      await waitFor('a1 and a2 up', () => status('a1') === 'up' && status('a2') === 'up', 60_000);
      const a3 = startNode(['--server', url, '--id', 'a3']);
      procs.push(a3.child);
      await waitFor('a3 refused twice', () => a3.lines.filter((l) => /join refused: LimitExceeded/.test(l.msg)).length >= 2, 60_000);
      expect(a3.child.exitCode).toBeNull();
      expect(await s.exec({ type: 'removeNode', node: 'a1' })).toMatchObject({ ok: true });
      await waitFor('a3 up once there is room', () => status('a3') === 'up', 60_000);

      const bad = startNode(['--server', url, '--id', 'bad id!']);
      procs.push(bad.child);
      expect(await exitOf(bad.child)).toBe(2);
      expect(bad.lines.find((l) => /join refused: BadRequest/.test(l.msg))).toMatchObject({ level: 'error' });
      // A process spawned by a server (an incarnation) that this server does not expect: stale, it goes.
      const stale = startNode(['--server', url, '--id', 'zz', '--incarnation', 'zz.1.0'], 'pipe');
      procs.push(stale.child);
      expect(await exitOf(stale.child)).toBe(2);
      expect(stale.lines.find((l) => /join refused: Conflict/.test(l.msg))).toMatchObject({ level: 'error' });
    } finally {
      for (const c of procs) c.kill('SIGKILL');
      await s.close();
    }
  });

  it('exits when the server that spawned it is gone, even before it joined', async () => {
    const port = await freePort();
    // A stand-in for the server: it spawns the node the way the supervisor does (stdin a pipe, an
    // incarnation), toward a port where nothing answers, then dies without a word (SIGKILL).
    const script = `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ['--import', 'tsx', ${JSON.stringify(NODE_MAIN)}, '--server', 'http://127.0.0.1:${port}', '--id', 'orphan1', '--incarnation', 'orphan1.1.0'],
        { cwd: ${JSON.stringify(ROOT)}, env: { ...process.env, DSE_LOG_LEVEL: 'info', DSE_TOKEN: '', DATABASE_URL: '' }, stdio: ['pipe', 'ignore', 'inherit'] });
      process.stdout.write(c.pid + '\\n');
      setInterval(() => {}, 1e6);`;
    const parent = spawn(process.execPath, ['-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    parent.stdout.on('data', (b: Buffer) => (out += b.toString()));
    parent.stderr.on('data', (b: Buffer) => (err += b.toString()));
    let nodePid = 0;
    try {
      nodePid = Number((await waitFor('the node pid', () => /^(\d+)\n/.exec(out), 30_000))[1]);
      await waitFor('a failed attempt (the node runs, and waits)', () => err.includes('cannot join'), 60_000);
      parent.kill('SIGKILL');
      const gone = await waitFor('the node to exit', () => !alive(nodePid), 20_000).catch(() => false);
      expect(gone).toBe(true);
      expect(err).toMatch(/the server that started this process is gone: exiting/);
    } finally {
      parent.kill('SIGKILL');
      if (nodePid > 0) {
        try {
          process.kill(nodePid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
});
