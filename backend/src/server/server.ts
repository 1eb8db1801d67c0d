import { spawn } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig, Command, CommandReply, ErrorBody, ErrorCode, Limits, NumberedEvent, SimulateBody, SimulateResult, StreamSnapshot, WorkloadConfig } from '@dse/shared';
import { DseError, errorBody, isDseError } from '@dse/shared';
import { Server as IoServer } from 'socket.io';
import type { Socket } from 'socket.io';
import type { CheckpointRecord } from '../core/ports';
import { DEFAULT_APP } from '../live/apps';
import { Cluster, DEFAULT_CLUSTER_CONFIG } from '../live/cluster';
import { Requests } from '../live/requests';
import { NODE_NAMESPACE, NODE_SOCKET_PATH } from '../live/wire';
import { Workload } from '../live/workload';
import type { OpenedStorage, StorageKind } from '../storage/open';
import { openStorage } from '../storage/open';
import { EventStream } from './stream';
import type { StreamOptions } from './stream';
import * as v from './validate';

export const DEFAULT_LIMITS: Limits = {
  nodesMax: 16,
  bodyBytesMax: 64 * 1024,
  keyLengthMax: 256,
  valueBytesMax: 16 * 1024,
  workloadRateMax: 500,
  checkpointIntervalMs: { min: 5, max: 10_000 },
  networkDelayMs: { min: 0, max: 5000 },
  networkJitterMs: { min: 0, max: 5000 },
  messageLoss: { min: 0, max: 0.5 },
  heartbeatIntervalMs: { min: 20, max: 5000 },
  heartbeatTimeoutMs: { min: 100, max: 60_000 },
  autoRestartDelayMs: { min: 0, max: 60_000 },
  commandsPerSecond: 50,
  historyEventsMax: 10_000,
};

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase());
}

export interface ServerOptions {
  host?: string;
  /** 0: an ephemeral port. */
  port?: number;
  token?: string | null;
  /** An opened storage, or the kind to open (default: `DATABASE_URL` → postgres, else pglite). */
  storage?: OpenedStorage | StorageKind;
  dataDir?: string;
  /** Node processes started at once (default 4). */
  nodes?: number;
  config?: Partial<ClusterConfig>;
  workload?: WorkloadConfig;
  limits?: Partial<Limits>;
  /** The app the node processes run (`playground`, `kv`, `services`; default `playground`). */
  app?: string;
  log?: (line: string) => void;
  nodeStderr?: boolean;
  /** Serve this folder as the web app (default `web/dist`). */
  webDist?: string;
  /** Called with every batch of checkpoints the storage made durable (tests check the cut against it). */
  onDurable?: (records: readonly CheckpointRecord[]) => void;
  /** Event stream tuning (tests make browsers slow sooner). */
  stream?: Partial<StreamOptions>;
}

export interface RunningServer {
  url: string;
  port: number;
  cluster: Cluster;
  workload: Workload;
  stream: EventStream;
  storage: OpenedStorage;
  /** Runs a command exactly as HTTP and Socket.IO do. */
  exec(cmd: Command): Promise<CommandReply>;
  close(): Promise<void>;
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  BadRequest: 400,
  Unauthorized: 401,
  NotFound: 404,
  Conflict: 409,
  SessionRolledBack: 409,
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

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SIM_WORKER = fileURLToPath(new URL('./sim-worker.ts', import.meta.url));

/**
 * The pages' Content-Security-Policy: scripts, styles and connections (Socket.IO over WebSocket) only
 * from this server, nothing inline (React and d3 set styles through the CSSOM, which CSP allows);
 * no plugins, no framing. `playwright/csp.spec.ts` checks the playground runs without a violation.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The largest Socket.IO frame a browser may send (its commands are much smaller: `Limits.bodyBytesMax`). */
export const BROWSER_FRAME_BYTES_MAX = 1024 * 1024;

/** Socket.IO connections of browsers (the default namespace) one address may hold open at once. */
export const BROWSER_CONNECTIONS_PER_ADDRESS = 32;

/** A token bucket per client: `rate` a second, bursts of twice that. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly rate: number) {}
  take(key: string): boolean {
    const now = performance.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size > 10_000) this.buckets.clear();
      b = { tokens: this.rate * 2, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.rate * 2, b.tokens + ((now - b.at) * this.rate) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function cookieToken(cookie: string | undefined): string | null {
  if (cookie === undefined) return null;
  for (const part of cookie.split(';')) {
    const [k, ...rest] = part.trim().split('=');
    if (k === 'dse_token') return decodeURIComponent(rest.join('='));
  }
  return null;
}

/**
 * Starts the live cluster's server: storage, coordinator, session host, node processes, the HTTP API,
 * the Socket.IO command channel and event stream, and the node processes' namespace.
 */
export async function startServer(o: ServerOptions = {}): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token === undefined || o.token === '' ? null : o.token;
  if (!isLoopback(host) && token === null) {
    throw new DseError('Unauthorized', `refusing to listen on ${host}: an address other than loopback (127.0.0.1, localhost, ::1) needs DSE_TOKEN set, so that only holders of the token can control the cluster`);
  }
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits };
  const tokenDigest = token === null ? null : digest(token);
  const tokenOk = (t: unknown): boolean => tokenDigest === null || (typeof t === 'string' && timingSafeEqual(digest(t), tokenDigest));

  const storage = typeof o.storage === 'object' ? o.storage : await openStorage({ kind: o.storage, dataDir: o.dataDir });
  let port = 0;
  let stream: EventStream | null = null;
  const cluster = new Cluster({
    storage,
    config: { ...DEFAULT_CLUSTER_CONFIG, ...o.config },
    limits,
    app: o.app ?? DEFAULT_APP,
    serverUrl: () => `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`,
    token,
    emit: (e) => stream!.push(e),
    log,
    nodeStderr: o.nodeStderr,
    onDurable: o.onDurable,
  });
  const requests = new Requests(cluster, { keepMax: 10_000, sessionsMax: 10_000, answerTimeoutMs: 10_000 });
  const workload = new Workload(cluster, requests);

  const snapshot = (reason: 'connect' | 'resync', history: NumberedEvent[], notice?: string): StreamSnapshot => {
    const s: StreamSnapshot = {
      reason,
      lastEvent: stream!.lastEvent,
      cluster: cluster.info(stream!.lastEvent),
      config: { ...cluster.config },
      workload: { ...workload.config },
      limits,
      history,
    };
    if (notice !== undefined) s.notice = notice;
    return s;
  };
  stream = new EventStream({ historyEventsMax: limits.historyEventsMax, batchMs: 50, unackedBatchesMax: 8, queueEventsMax: 5000, ackTimeoutMs: 10_000, ...o.stream }, snapshot);
  stream.start();

  let simRunning = false;
  let simChild: ReturnType<typeof spawn> | null = null;
  const runSimulation = (body: SimulateBody): Promise<SimulateResult> => {
    if (simRunning) return Promise.reject(new DseError('Conflict', 'a simulation is running; try again when it finished'));
    simRunning = true;
    return new Promise<SimulateResult>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', SIM_WORKER, JSON.stringify(body)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      simChild = child;
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => {
        err = (err + b.toString()).slice(-2000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        simRunning = false;
        simChild = null;
        if (code !== 0) {
          reject(new DseError('Internal', `the simulation exited with ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(out).toString()) as SimulateResult);
        } catch (e) {
          reject(e);
        }
      });
    });
  };

  const current = (): { config: ClusterConfig; workload: WorkloadConfig } => ({ config: cluster.config, workload: workload.config });
  const exec = async (unchecked: Command): Promise<CommandReply> => {
    try {
      // Validated here too, so that in-process callers get exactly what HTTP and Socket.IO get.
      const cmd = v.command(unchecked, limits, current());
      switch (cmd.type) {
        case 'health':
          return { ok: true };
        case 'cluster':
          return { ok: true, ...cluster.info(stream.lastEvent) };
        case 'getConfig':
          return { ok: true, config: { ...cluster.config }, workload: { ...workload.config }, limits };
        case 'kill':
          cluster.kill(cmd.node);
          return { ok: true, node: cmd.node };
        case 'restart':
          cluster.restart(cmd.node);
          return { ok: true, node: cmd.node };
        case 'addNode':
          return { ok: true, node: cluster.addNode(cmd.id) };
        case 'removeNode':
          cluster.removeNode(cmd.node);
          workload.rotate();
          return { ok: true, node: cmd.node };
        case 'config':
          return { ok: true, config: await cluster.configure(cmd.config) };
        case 'workload':
          workload.set(cmd.workload);
          stream.push({ type: 'workloadChanged', t: cluster.clock.now(), workload: { ...workload.config } });
          return { ok: true, workload: { ...workload.config } };
        case 'request': {
          const { type: _t, ...body } = cmd;
          return { ok: true, ...(await requests.submit(body)) };
        }
        case 'service': {
          const { type: _t, ...body } = cmd;
          return { ok: true, ...(await requests.submitService(body)) };
        }
        case 'getRequest':
          return { ok: true, ...requests.get(cmd.id) };
        case 'resumeSession':
          return { ok: true, session: cmd.session, resumed: requests.resume(cmd.session) };
        case 'simulate': {
          const { type: _t, ...body } = cmd;
          return { ok: true, ...(await runSimulation(body)) };
        }
      }
    } catch (e) {
      if (!isDseError(e)) log(`internal error on ${unchecked.type}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      const reply: { error: ErrorBody; id?: string } = { error: errorBody(e) };
      const rid = (e as { requestId?: unknown }).requestId;
      if (typeof rid === 'string') reply.id = rid;
      return reply;
    }
  };

  const limiter = new RateLimiter(limits.commandsPerSecond);

  // ---------------------------------------------------------------- HTTP

  const webDist = o.webDist ?? join(REPO_ROOT, 'web', 'dist');

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
    res.end(text);
  };
  const sendError = (res: ServerResponse, e: unknown, status?: number, headers?: Record<string, string>): void => {
    const body = errorBody(e);
    send(res, status ?? HTTP_STATUS[body.code] ?? 409, { error: body }, headers);
  };
  const replyStatus = (r: CommandReply): number => ('error' in r ? (HTTP_STATUS[r.error.code] ?? 409) : 200);

  const readBody = (req: IncomingMessage): Promise<unknown> =>
    new Promise((resolve, reject) => {
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

  const hostHeaderOk = (req: IncomingMessage): boolean => {
    if (token !== null) return true;
    // Without a token the server is on loopback: refuse other Host names (DNS rebinding).
    const h = (req.headers.host ?? '').toLowerCase();
    const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]!;
    return isLoopback(name);
  };
  /** A browser request made by a page of another site (its Origin, or its Sec-Fetch-Site, says so). */
  const crossSite = (req: IncomingMessage): boolean => {
    if (req.headers['sec-fetch-site'] === 'cross-site') return true;
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') return origin === 'null' && token === null;
    let o: URL;
    try {
      o = new URL(origin);
    } catch {
      return true;
    }
    if (token === null) return !isLoopback(o.hostname);
    return o.host.toLowerCase() !== (req.headers.host ?? '').toLowerCase();
  };
  const authorized = (req: IncomingMessage): boolean => {
    if (token === null) return true;
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && auth.startsWith('Bearer ') && tokenOk(auth.slice(7))) return true;
    const c = cookieToken(req.headers.cookie);
    return c !== null && tokenOk(c);
  };

  const serveStatic = (req: IncomingMessage, res: ServerResponse, pathname: string): void => {
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
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (!hostHeaderOk(req)) {
      sendError(res, new DseError('Unauthorized', 'this server answers only to localhost, 127.0.0.1 or [::1] (set DSE_TOKEN to serve other names)'), 403);
      return;
    }
    if (crossSite(req)) {
      // CSRF: a page on another site may send "simple" requests (no preflight) to a loopback server.
      sendError(res, new DseError('Unauthorized', 'cross-site requests are refused'), 403);
      return;
    }
    // `/?token=…` once in a browser: the token goes into a cookie, so that the page and its Socket.IO connection carry it.
    if (token !== null && path === '/' && url.searchParams.has('token')) {
      if (!tokenOk(url.searchParams.get('token'))) {
        sendError(res, new DseError('Unauthorized', 'wrong token'));
        return;
      }
      res.writeHead(303, { location: '/', 'set-cookie': `dse_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    if (!authorized(req)) {
      sendError(res, new DseError('Unauthorized', 'this server needs its token: Authorization: Bearer <DSE_TOKEN> (browsers: open /?token=<DSE_TOKEN> once)'), 401, { 'www-authenticate': 'Bearer' });
      return;
    }
    if (!path.startsWith('/api/') && path !== '/api') {
      serveStatic(req, res, path);
      return;
    }
    if (!limiter.take(`http:${req.socket.remoteAddress ?? '?'}`)) {
      sendError(res, new DseError('LimitExceeded', `more than ${limits.commandsPerSecond} commands a second: slow down`));
      return;
    }
    const method = req.method ?? 'GET';
    const parts = path.split('/').filter((p) => p !== '').slice(1); // after 'api'
    let cmd: Command | null = null;
    try {
      const body = method === 'POST' || method === 'PUT' || method === 'DELETE' ? await readBody(req) : undefined;
      const key = `${method} ${parts.map((p, i) => (i === 1 && (parts[0] === 'nodes' || parts[0] === 'requests' || parts[0] === 'sessions') ? ':id' : p)).join('/')}`;
      const emptyBody = (): void => {
        if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length > 0)) {
          throw new DseError('BadRequest', `${method} ${path} takes no body`);
        }
      };
      switch (key) {
        case 'GET health':
          cmd = { type: 'health' };
          break;
        case 'GET cluster':
          cmd = { type: 'cluster' };
          break;
        case 'GET config':
          cmd = { type: 'getConfig' };
          break;
        case 'POST nodes/:id/kill':
          emptyBody();
          cmd = { type: 'kill', node: v.nodeId(parts[1]) };
          break;
        case 'POST nodes/:id/restart':
          emptyBody();
          cmd = { type: 'restart', node: v.nodeId(parts[1]) };
          break;
        case 'POST nodes': {
          const b = body as Record<string, unknown>;
          if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new DseError('BadRequest', 'the body must be a JSON object');
          for (const k of Object.keys(b)) if (k !== 'id') throw new DseError('BadRequest', `unknown field ${k.slice(0, 60)} (allowed: id)`);
          cmd = b.id === undefined ? { type: 'addNode' } : { type: 'addNode', id: v.nodeId(b.id, 'id') };
          break;
        }
        case 'DELETE nodes/:id':
          emptyBody();
          cmd = { type: 'removeNode', node: v.nodeId(parts[1]) };
          break;
        case 'POST config':
          cmd = { type: 'config', config: v.configPatch(body, limits, current().config) };
          break;
        case 'POST workload':
          cmd = { type: 'workload', workload: v.workload(body, limits, current().workload) };
          break;
        case 'POST requests':
          cmd = { type: 'request', ...v.kvRequest(body, limits) };
          break;
        case 'POST service':
          cmd = { type: 'service', ...v.serviceRequest(body, limits) };
          break;
        case 'GET requests/:id':
          cmd = { type: 'getRequest', id: v.requestId(parts[1]) };
          break;
        case 'POST sessions/:id/resume':
          emptyBody();
          cmd = { type: 'resumeSession', session: v.session(parts[1]) };
          break;
        case 'POST simulate':
          cmd = { type: 'simulate', ...v.simulate(body) };
          break;
        default: {
          const known = ['health', 'cluster', 'config', 'nodes', 'workload', 'requests', 'service', 'sessions', 'simulate'].includes(parts[0] ?? '');
          throw new DseError(known ? 'BadRequest' : 'NotFound', known ? `${method} ${path} is not part of the API` : `no API route ${path}`);
        }
      }
    } catch (e) {
      const tooBig = isDseError(e) && e.code === 'LimitExceeded' && e.message.includes('larger than');
      const bodyCut = tooBig && e.message.startsWith('the body');
      sendError(res, e, tooBig ? 413 : undefined, bodyCut ? { connection: 'close' } : {});
      if (bodyCut) res.on('finish', () => req.destroy());
      return;
    }
    const reply = await exec(cmd);
    send(res, replyStatus(reply), reply);
  };

  const http = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      log(`internal error on ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      if (!res.headersSent) sendError(res, new DseError('Internal', 'internal error'));
      else res.end();
    });
  });
  http.requestTimeout = 60_000;
  http.headersTimeout = 20_000;

  // ---------------------------------------------------------------- Socket.IO

  const allowRequest = (req: IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void): void => {
    if (!hostHeaderOk(req)) {
      cb('Unauthorized: wrong Host', false);
      return;
    }
    if (token === null) {
      // Browsers from other sites must not drive a loopback server.
      const origin = req.headers.origin;
      if (origin !== undefined) {
        let ok = false;
        try {
          ok = isLoopback(new URL(origin).hostname);
        } catch {
          ok = false;
        }
        if (!ok) {
          cb('Unauthorized: cross-origin', false);
          return;
        }
      }
    }
    cb(null, true);
  };
  // Browsers: commands are at most `bodyBytesMax`, so a frame of 1 MiB is plenty (and bounds what
  // the server parses before it checks a command's size).
  const io = new IoServer(http, { maxHttpBufferSize: BROWSER_FRAME_BYTES_MAX, serveClient: false, allowRequest });
  // Node processes, on a path of their own: their frames may carry a full checkpoint.
  const nodeIo = new IoServer(http, { path: NODE_SOCKET_PATH, maxHttpBufferSize: 16 * 1024 * 1024, serveClient: false, allowRequest });
  const authMiddleware = (socket: Socket, next: (err?: Error) => void): void => {
    if (token === null) {
      next();
      return;
    }
    const auth = socket.handshake.auth as { token?: unknown } | undefined;
    const header = socket.handshake.headers.authorization;
    const ok = tokenOk(auth?.token) || (typeof header === 'string' && header.startsWith('Bearer ') && tokenOk(header.slice(7))) || tokenOk(cookieToken(socket.handshake.headers.cookie));
    if (!ok) {
      const err = new Error('Unauthorized: this server needs its token in the handshake (io(url, {auth: {token}}))') as Error & { data: unknown };
      err.data = { error: new DseError('Unauthorized', 'missing or wrong token').toBody() };
      next(err);
      return;
    }
    next();
  };
  io.use(authMiddleware);
  nodeIo.use((_socket, next) => next(new Error(`this path serves node processes only, on ${NODE_NAMESPACE}`)));
  const nodeNsp = nodeIo.of(NODE_NAMESPACE);
  nodeNsp.use(authMiddleware);
  cluster.attach(nodeNsp);

  // Browser connections per address (node processes use their own namespace and are not counted):
  // the command rate limit is per address, so that opening more connections does not buy more commands.
  const browsersByAddress = new Map<string, number>();
  io.on('connection', (socket) => {
    const address = socket.handshake.address;
    const open = browsersByAddress.get(address) ?? 0;
    if (open >= BROWSER_CONNECTIONS_PER_ADDRESS) {
      socket.emit('notice', { level: 'warning', message: `more than ${BROWSER_CONNECTIONS_PER_ADDRESS} connections from ${address}: this one is closed` });
      socket.disconnect(true);
      return;
    }
    browsersByAddress.set(address, open + 1);
    socket.on('disconnect', () => {
      const n = (browsersByAddress.get(address) ?? 1) - 1;
      if (n <= 0) browsersByAddress.delete(address);
      else browsersByAddress.set(address, n);
    });
    stream.subscribe(socket);
    socket.on('command', (raw: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      const reply = ack as (r: CommandReply) => void;
      if (!limiter.take(`io:${address}`)) {
        reply({ error: new DseError('LimitExceeded', `more than ${limits.commandsPerSecond} commands a second: slow down`).toBody() });
        return;
      }
      let cmd: Command;
      try {
        if (JSON.stringify(raw ?? null).length > limits.bodyBytesMax) throw new DseError('LimitExceeded', `the command is larger than ${limits.bodyBytesMax} bytes`);
        cmd = v.command(raw, limits, current());
      } catch (e) {
        reply({ error: errorBody(e) });
        return;
      }
      exec(cmd).then(reply, (e: unknown) => reply({ error: errorBody(e) }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.port ?? 8080, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  port = (http.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  try {
    await cluster.start(o.nodes ?? 4);
  } catch (e) {
    await cluster.stop();
    await Promise.all([nodeIo.close(), io.close()]);
    await storage.close();
    throw e;
  }
  if (o.workload !== undefined && o.workload.rate > 0) {
    workload.set(o.workload);
    stream.push({ type: 'workloadChanged', t: cluster.clock.now(), workload: { ...workload.config } });
  }

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      workload.stop();
      stream.stop();
      simChild?.kill('SIGKILL');
      await cluster.stop();
      // Both at once: each waits for the HTTP server to close, which waits for the other's connections.
      await Promise.all([nodeIo.close(), io.close()]);
      http.closeAllConnections();
      await storage.close();
    })();
    return closed;
  };

  return { url, port, cluster, workload, stream, storage, exec, close };
}
