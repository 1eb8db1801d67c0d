import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { Command, CommandReply, ErrorCode, Limits } from '@dse/shared';
import { DseError, errorBody, isApiError, isDseError } from '@dse/shared';
import type { LogFn } from '../log';
import type { Commands } from './commands';
import type { RateLimiter } from './rate-limit';
import { refusalMessage, retryAfterSeconds } from './rate-limit';
import type { Security } from './security';
import { CONTENT_SECURITY_POLICY } from './security';
import * as v from './validate';

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  BadRequest: 400,
  Unauthorized: 401,
  NotFound: 404,
  Conflict: 409,
  SessionRolledBack: 409,
  WrongOwner: 409,
  NodeRemoved: 409,
  Orphaned: 409,
  LimitExceeded: 429,
  Timeout: 504,
  StorageUnavailable: 503,
  Internal: 500,
};

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

export interface HttpOptions {
  security: Security;
  /** Commands a second, per client address (HTTP and Socket.IO count apart; `/api/health` not at all). */
  limiter: RateLimiter;
  limits: Limits;
  commands: Commands;
  /** The folder served as the web app. */
  webDist: string;
  log: LogFn;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, e: unknown, status?: number, headers?: Record<string, string>): void {
  const body = errorBody(e);
  send(res, status ?? HTTP_STATUS[body.code] ?? 409, { error: body }, headers);
}

function replyStatus(r: CommandReply): number {
  return isApiError(r) ? (HTTP_STATUS[r.error.code] ?? 409) : 200;
}

function readBody(req: IncomingMessage, limits: Limits): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limits.bodyBytesMax) {
      reject(new DseError('LimitExceeded', `the body is larger than ${limits.bodyBytesMax} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limits.bodyBytesMax) {
        failed = true;
        reject(new DseError('LimitExceeded', `the body is larger than ${limits.bodyBytesMax} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve({});
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new DseError('BadRequest', 'the body is not valid JSON'));
      }
    });
    req.on('error', () => reject(new DseError('BadRequest', 'the request was cut off')));
  });
}

function serveStatic(req: IncomingMessage, res: ServerResponse, pathname: string, webDist: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, new DseError('BadRequest', `${req.method} is not allowed here`), 405);
    return;
  }
  const index = join(webDist, 'index.html');
  if (!existsSync(index)) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      '<!doctype html><meta charset="utf-8"><title>DSE Playground</title><h1>DSE Playground</h1><p>The web app is not built yet: run <code>npm start</code> (it builds it), or <code>npx vite build</code>, then reload.</p><p>The API works already: <a href="/api/cluster">/api/cluster</a>.</p>',
    );
    return;
  }
  let rel: string;
  try {
    rel = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  } catch {
    sendError(res, new DseError('BadRequest', 'bad path'));
    return;
  }
  let file = join(webDist, rel);
  if (!file.startsWith(webDist + sep) && file !== webDist) {
    sendError(res, new DseError('NotFound', 'not found'));
    return;
  }
  if (!existsSync(file) || !statSync(file).isFile()) file = index; // the app routes in the browser
  res.writeHead(200, {
    'content-type': MIME[extname(file)] ?? 'application/octet-stream',
    'x-content-type-options': 'nosniff',
    'cache-control': file === index ? 'no-cache' : 'public, max-age=3600',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  });
  res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
}

/** The API's route table: a request under `/api/` as the command it stands for (validated). */
function commandOf(method: string, path: string, body: unknown, limits: Limits, commands: Commands): Command {
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .slice(1); // after 'api'
  const key = `${method} ${parts.map((p, i) => (i === 1 && (parts[0] === 'nodes' || parts[0] === 'requests' || parts[0] === 'sessions') ? ':id' : p)).join('/')}`;
  const emptyBody = (): void => {
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length > 0)) {
      throw new DseError('BadRequest', `${method} ${path} takes no body`);
    }
  };
  switch (key) {
    case 'GET health':
      return { type: 'health' };
    case 'GET cluster':
      return { type: 'cluster' };
    case 'GET config':
      return { type: 'getConfig' };
    case 'POST nodes/:id/kill':
      emptyBody();
      return { type: 'kill', node: v.nodeId(parts[1]) };
    case 'POST nodes/:id/restart':
      emptyBody();
      return { type: 'restart', node: v.nodeId(parts[1]) };
    case 'POST nodes':
      return v.addNode(body);
    case 'DELETE nodes/:id':
      emptyBody();
      return { type: 'removeNode', node: v.nodeId(parts[1]) };
    case 'POST config':
      return { type: 'config', config: v.configPatch(body, limits, commands.current().config) };
    case 'POST workload':
      return { type: 'workload', workload: v.workload(body, limits, commands.current().workload) };
    case 'POST requests':
      return { type: 'request', ...v.kvRequest(body, limits) };
    case 'POST service':
      return { type: 'service', ...v.serviceRequest(body, limits) };
    case 'GET requests/:id':
      return { type: 'getRequest', id: v.requestId(parts[1]) };
    case 'POST sessions/:id/resume':
      emptyBody();
      return { type: 'resumeSession', session: v.session(parts[1]) };
    case 'POST simulate':
      return { type: 'simulate', ...v.simulate(body) };
    default: {
      const known = ['health', 'cluster', 'config', 'nodes', 'workload', 'requests', 'service', 'sessions', 'simulate'].includes(parts[0] ?? '');
      throw new DseError(known ? 'BadRequest' : 'NotFound', known ? `${method} ${path} is not part of the API` : `no API route ${path}`);
    }
  }
}

/** The HTTP server: the security checks, then the web app's files or the API (`/api/*`). */
export function createHttpServer(o: HttpOptions): Server {
  const { security, limiter, limits, commands, webDist, log } = o;
  const token = security.token;

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (!security.hostHeaderOk(req)) {
      sendError(res, new DseError('Unauthorized', 'this server answers only to localhost, 127.0.0.1 or [::1] (set DSE_TOKEN to serve other names)'), 403);
      return;
    }
    if (security.crossSite(req)) {
      // CSRF: a page on another site may send "simple" requests (no preflight) to a loopback server.
      sendError(res, new DseError('Unauthorized', 'cross-site requests are refused'), 403);
      return;
    }
    // `/?token=…` once in a browser: the token goes into a cookie, so that the page and its Socket.IO connection carry it.
    if (token !== null && path === '/' && url.searchParams.has('token')) {
      if (!security.tokenOk(url.searchParams.get('token'))) {
        sendError(res, new DseError('Unauthorized', 'wrong token'));
        return;
      }
      res.writeHead(303, { location: '/', 'set-cookie': `dse_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    if (!security.authorized(req)) {
      sendError(
        res,
        new DseError('Unauthorized', 'this server needs its token: Authorization: Bearer <DSE_TOKEN> (browsers: open /?token=<DSE_TOKEN> once)'),
        401,
        { 'www-authenticate': 'Bearer' },
      );
      return;
    }
    if (!path.startsWith('/api/') && path !== '/api') {
      serveStatic(req, res, path, webDist);
      return;
    }
    // Health answers always: an orchestrator's probe must not see a flood of refused requests as a dead server.
    const admitted = path === '/api/health' ? ({ ok: true } as const) : limiter.take('http', req.socket.remoteAddress ?? '?');
    if (!admitted.ok) {
      sendError(res, new DseError('LimitExceeded', refusalMessage(admitted)), 429, { 'retry-after': retryAfterSeconds(admitted.retryAfterMs) });
      return;
    }
    const method = req.method ?? 'GET';
    let cmd: Command;
    try {
      const body = method === 'POST' || method === 'PUT' || method === 'DELETE' ? await readBody(req, limits) : undefined;
      cmd = commandOf(method, path, body, limits, commands);
    } catch (e) {
      const tooBig = isDseError(e) && e.code === 'LimitExceeded' && e.message.includes('larger than');
      const bodyCut = tooBig && e.message.startsWith('the body');
      sendError(res, e, tooBig ? 413 : undefined, bodyCut ? { connection: 'close' } : {});
      if (bodyCut) res.on('finish', () => req.destroy());
      return;
    }
    const reply = await commands.exec(cmd);
    send(res, replyStatus(reply), reply);
  };

  const http = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      log(`internal error on ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { level: 'error' });
      if (!res.headersSent) sendError(res, new DseError('Internal', 'internal error'));
      else res.end();
    });
  });
  http.requestTimeout = 60_000;
  http.headersTimeout = 20_000;
  return http;
}
