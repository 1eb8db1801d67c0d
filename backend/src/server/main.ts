/**
 * `npm start`: builds the web app if needed, starts the server on 127.0.0.1:8080 (PORT, HOST), on
 * PGlite (DSE_DATA_DIR, default .data/) unless DATABASE_URL is set, with 4 node processes and a gentle
 * workload. Ctrl-C, or SIGINT or SIGTERM to this process (`npm start` execs it), stops every process
 * it started. Logs are JSON lines on stderr (`../log.ts`); the banner with the URL is on stdout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RateLimits } from './rate-limit';
import { parseRateLimit } from './rate-limit';
import { isLoopback } from './security';
import type { Logger } from '../log';
import { createLogger, logLevel } from '../log';
import type { RunningServer } from './server';
import { startServer } from './server';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function newestMtime(dir: string): number {
  let t = 0;
  if (!existsSync(dir)) return 0;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return t;
}

function buildWebIfNeeded(): void {
  if (process.env.DSE_SKIP_WEB_BUILD === '1') return;
  const src = join(ROOT, 'web', 'src');
  if (!existsSync(src)) return; // nothing to build yet (the placeholder page)
  const index = join(ROOT, 'web', 'dist', 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(join(ROOT, 'web'))) return;
  process.stderr.write('building the web app (vite build)…\n');
  // The web app's own build config when it has one (web/vite.config.*), else the root's.
  const own = ['ts', 'mjs', 'js'].map((ext) => join('web', `vite.config.${ext}`)).find((f) => existsSync(join(ROOT, f)));
  const args = [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', ...(own !== undefined ? ['--config', own] : [])];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.stderr.write('the web app did not build; the server starts anyway and serves a placeholder page\n');
}

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const token = process.env.DSE_TOKEN ?? '';
// Node processes the server starts itself; 0 when they all join from elsewhere (`npm run node`, docker).
const localNodes = Number(process.env.DSE_LOCAL_NODES ?? 4);
if (!Number.isInteger(localNodes) || localNodes < 0 || localNodes > 64) {
  process.stderr.write(`DSE_LOCAL_NODES must be a whole number from 0 to 64, not ${process.env.DSE_LOCAL_NODES}\n`);
  process.exit(2);
}
let logger: Logger;
try {
  logger = createLogger({ bindings: { role: 'server' }, level: logLevel() });
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`PORT must be a port number, not ${process.env.PORT}\n`);
  process.exit(2);
}
// DSE_RATE_LIMIT: commands a second per client address (see rate-limit.ts for the defaults).
let rateLimit: Partial<RateLimits> = {};
try {
  const text = process.env.DSE_RATE_LIMIT ?? '';
  if (text.trim() !== '') rateLimit = parseRateLimit(text);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
if (!isLoopback(host) && token === '') {
  process.stderr.write(
    `Refusing to start: HOST=${host} is not a loopback address (127.0.0.1, localhost, ::1).\n` +
      'Anyone who can reach it could control the cluster. Set DSE_TOKEN to a secret (for example\n' +
      '`DSE_TOKEN=$(openssl rand -hex 16)`); clients then send `Authorization: Bearer <token>`.\n',
  );
  process.exit(2);
}

buildWebIfNeeded();

// Signals are handled from here on, so that one arriving while the node processes start still stops them.
let server: RunningServer | null = null;
let stopping = false;
const exitAfter = (p: Promise<void>): void => {
  p.then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
const stop = (signal: NodeJS.Signals): void => {
  if (stopping) process.exit(1); // a second Ctrl-C: at once
  stopping = true;
  logger.info({ signal }, 'stopping');
  setTimeout(() => {
    logger.error('the server did not stop within 10 s: exiting anyway');
    process.exit(1);
  }, 10_000).unref();
  if (server !== null) exitAfter(server.close());
  // else: startServer is still running; it is closed as soon as it returns.
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

server = await startServer({
  host,
  port,
  token,
  nodes: localNodes,
  rateLimit,
  workload: { kind: 'mixed', rate: 4 },
}).catch((e: unknown) => {
  logger.fatal(`the server did not start: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
if (stopping) exitAfter(server.close());

logger.info({ url: server.url, storage: server.storage.describe, token: token !== '', localNodes }, 'listening');
process.stdout.write(
  `DSE Playground: ${server.url}/  (storage: ${server.storage.describe}; ${token !== '' ? 'token required' : 'no token, loopback only'}; Ctrl-C stops it)\n`,
);
