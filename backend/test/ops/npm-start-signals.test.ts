/**
 * `npm start` under a process manager: a signal sent to the npm process alone (not to its whole
 * process group) stops the server and every node process it started. npm forwards SIGINT and SIGTERM
 * to its child; the `start` script `exec`s node, so that child is the server itself rather than a
 * shell that would die and leave the server running as an orphan.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/chaos/server-proc';
import { waitFor } from '../live/helpers';
import { alive } from './procs';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Polls an asynchronous condition until it yields a value. */
async function until<T>(what: string, cond: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every process below `root` (Linux: each process's parent from /proc/PID/stat). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    for (const c of children.get(todo.pop()!) ?? []) {
      found.push(c);
      todo.push(c);
    }
  }
  return found;
}

async function stopsOn(signal: 'SIGTERM' | 'SIGINT'): Promise<void> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'dse-npm-start-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DSE_DATA_DIR: dataDir,
    DSE_SKIP_WEB_BUILD: '1',
    DSE_LOCAL_NODES: '2',
    DSE_LOG_LEVEL: 'info',
  };
  delete env.DATABASE_URL;
  delete env.DSE_TOKEN;
  // Its own process group, so that the signal below reaches npm alone, and the cleanup can reach everything.
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  npm.stdout.on('data', (b: Buffer) => (out += b.toString()));
  npm.stderr.on('data', (b: Buffer) => (err += b.toString()));
  try {
    await waitFor(`the server's banner (output so far: ${out}${err})`, () => out.includes('DSE Playground: http'), 90_000);
    const url = `http://127.0.0.1:${port}`;
    const nodePids = await until(
      'both node processes up',
      async () => {
        const r = (await (await fetch(`${url}/api/cluster`)).json()) as { nodes: { status: string; pid: number | null }[] };
        const pids = r.nodes.filter((n) => n.status === 'up' && n.pid !== null).map((n) => n.pid!);
        return pids.length === 2 ? pids : null;
      },
      90_000,
    );
    const tree = descendants(npm.pid!);
    for (const pid of nodePids) expect(tree).toContain(pid);

    process.kill(npm.pid!, signal);
    // The server stops its node processes (SIGTERM, SIGKILL after 1 s) and exits: well within 15 s.
    const everything = [npm.pid!, ...tree];
    const stopped = await waitFor(`every process of npm start gone after ${signal}`, () => everything.every((p) => !alive(p)), 15_000).catch(() => false);
    expect(everything.filter(alive)).toEqual([]);
    expect(stopped).toBe(true);

    // The logs: JSON lines on stderr, from the server and from each node process (with its id and pid).
    const lines = err
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { level: string; time: string; pid: number; msg: string; node?: string; role?: string });
    expect(lines.find((l) => l.role === 'server' && l.msg === 'listening')).toBeDefined();
    expect(lines.find((l) => l.role === 'server' && l.msg === 'stopping')).toMatchObject({ signal });
    for (const pid of nodePids)
      expect(lines.find((l) => l.pid === pid && l.msg === 'joined')).toMatchObject({ level: 'info', node: expect.stringMatching(/^n\d$/) as string });
    for (const l of lines) expect(typeof l.time).toBe('string');
  } finally {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // the group is gone
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('npm start', () => {
  it('stops the server and its node processes on SIGTERM sent to npm alone', async () => {
    await stopsOn('SIGTERM');
  });

  it('and on SIGINT sent to npm alone', async () => {
    await stopsOn('SIGINT');
  });
});
