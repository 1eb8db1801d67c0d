import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The server (`npm start`, `backend/src/server/main.ts`) as a child process of the chaos tool, so that
 * it can be SIGKILLed and started again on the same data folder or database. It runs in a process
 * group of its own (`detached`): the node processes it spawns join that group, so `killGroup` ends
 * every process of one server incarnation (stopped ones too) and nothing else.
 */

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../server/main.ts', import.meta.url));

export interface ServerProcessOptions {
  port: number;
  /** PGlite folder (when `databaseUrl` is not set). */
  dataDir?: string;
  databaseUrl?: string;
  token?: string;
  /** Each stderr line of the server (and its node processes). */
  onLog?: (line: string) => void;
}

export class ServerProcess {
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** Process group ids of every incarnation started (killed at the end whatever happened). */
  readonly groups = new Set<number>();
  starts = 0;
  readonly url: string;
  private readonly tail: string[] = [];

  private readonly onExit = (): void => {
    this.killGroups();
  };

  constructor(private readonly o: ServerProcessOptions) {
    this.url = `http://127.0.0.1:${o.port}`;
    // The server runs in a process group of its own: if this process ends before cleaning up (an
    // uncaught error, a test runner giving up), its servers and node processes must not live on.
    process.once('exit', this.onExit);
  }

  /** Kills what is left and stops watching this process's exit. */
  dispose(): void {
    this.killGroups();
    process.off('exit', this.onExit);
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The last lines of the server's stderr (for error reports). */
  recentLog(): string[] {
    return [...this.tail];
  }

  /** Starts the server and resolves once it listens with its cluster started (its ready line). */
  async start(timeoutMs = 120_000): Promise<void> {
    if (this.running) throw new Error('the server runs already');
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(this.o.port), HOST: '127.0.0.1', DSE_SKIP_WEB_BUILD: '1' };
    delete env.DATABASE_URL;
    delete env.DSE_DATA_DIR;
    delete env.DSE_TOKEN;
    if (this.o.databaseUrl !== undefined) env.DATABASE_URL = this.o.databaseUrl;
    else if (this.o.dataDir !== undefined) env.DSE_DATA_DIR = this.o.dataDir;
    if (this.o.token !== undefined) env.DSE_TOKEN = this.o.token;
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = child;
    this.starts++;
    if (child.pid !== undefined) this.groups.add(child.pid);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let out = '';
    child.stderr.setEncoding('utf8');
    let errBuf = '';
    child.stderr.on('data', (chunk: string) => {
      errBuf += chunk;
      const lines = errBuf.split('\n');
      errBuf = lines.pop()!;
      for (const l of lines) {
        this.tail.push(l);
        if (this.tail.length > 40) this.tail.shift();
        this.o.onLog?.(l);
      }
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`the server did not start within ${timeoutMs} ms: ${this.tail.slice(-5).join(' | ')}`));
      }, timeoutMs);
      const onData = (b: Buffer): void => {
        out += b.toString();
        if (out.includes('DSE Playground: http')) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(new Error(`the server exited while starting (${code ?? signal}): ${this.tail.slice(-5).join(' | ')}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.stdout.resume();
      };
      child.stdout.on('data', onData);
      child.once('exit', onExit);
    });
  }

  /** SIGKILL of the server process alone (its node processes notice the lost connection and exit). */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === null) return;
    if (this.running) p.kill('SIGKILL');
    await this.exited;
    this.proc = null;
  }

  /** SIGTERM (a clean stop: the server stops its node processes), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const p = this.proc;
    if (p === null) return;
    if (this.running) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    this.proc = null;
  }

  /**
   * SIGKILL to every process left of the server incarnations this object started (servers and their
   * node processes, stopped or not): processes of those process groups whose command line is ours.
   */
  killGroups(): number {
    let n = 0;
    for (const pid of processesInGroups(this.groups)) {
      try {
        process.kill(pid, 'SIGKILL');
        n++;
      } catch {
        // gone meanwhile
      }
    }
    return n;
  }
}

/** Pids of live processes in one of `groups` that run this repository's server or node code (Linux /proc). */
export function processesInGroups(groups: ReadonlySet<number>): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const name of entries) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pgrp = Number(rest[2]);
      if (!groups.has(pgrp)) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes('backend/src/server/main.ts') || cmd.includes('backend/src/live/node-main.ts')) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A free TCP port on loopback (bound and released; good enough for a tool that owns its machine's ports). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
