import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface RunningServer {
  url: string;
  process: ChildProcess;
  dataDir: string;
}

/** Builds the web app, then starts the real server (`npm start`'s entry) on a free port with a fresh PGlite folder. */
export async function startPlayground(env: Record<string, string> = {}, startTimeoutMs = 120_000): Promise<RunningServer> {
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('the web app did not build');
  const dataDir = mkdtempSync(join(tmpdir(), 'dse-playwright-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'backend/src/server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DSE_DATA_DIR: dataDir, DSE_SKIP_WEB_BUILD: '1', DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within ${startTimeoutMs} ms:\n${log}`)), startTimeoutMs);
    const onData = (b: Buffer): void => {
      log += b.toString();
      const m = /DSE Playground: (http:\/\/[^\s/]+)\//.exec(log);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before it started:\n${log}`));
    });
  });
  // Keep draining its output so the pipe never fills.
  child.stdout!.resume();
  child.stderr!.resume();
  return { url, process: child, dataDir };
}

/** Stops the server the way Ctrl-C does (it stops its node processes), then removes its data. */
export async function stopPlayground(pid: number, dataDir: string): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  for (let i = 0; i < 150; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // stopped
  }
  rmSync(dataDir, { recursive: true, force: true });
}
