import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig, Command, CommandReply, Limits, NumberedEvent, WorkloadConfig } from '@dse/shared';
import { DseError } from '@dse/shared';
import type { CheckpointRecord } from '../core/ports';
import { DEFAULT_APP } from '../live/apps';
import { Cluster, DEFAULT_CLUSTER_CONFIG } from '../live/cluster';
import { Requests } from '../live/requests';
import { Workload } from '../live/workload';
import type { OpenedStorage, StorageKind } from '../storage/open';
import { openStorage } from '../storage/open';
import type { LogFn } from '../log';
import { createLogger, loggerFn } from '../log';
import { createCommands } from './commands';
import { logEvent } from './event-log';
import { createHttpServer } from './http';
import type { RateLimits } from './rate-limit';
import { DEFAULT_RATE_LIMITS, RateLimiter } from './rate-limit';
import { createSecurity, isLoopback } from './security';
import { SimulationRunner } from './simulation';
import { attachSockets } from './sockets';
import { EventStream } from './stream';
import type { SnapshotParts, StreamOptions } from './stream';

export { BROWSER_CONNECTIONS_PER_ADDRESS, BROWSER_FRAME_BYTES_MAX } from './sockets';

export const DEFAULT_LIMITS: Limits = {
  nodesMax: 64,
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
  commandsPerSecond: DEFAULT_RATE_LIMITS.remote,
  historyEventsMax: 10_000,
};

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
  /** `limits.commandsPerSecond`, when given, is the rate for every client (unless `rateLimit` says otherwise). */
  limits?: Partial<Limits>;
  /** Commands a second per client address, on loopback and elsewhere (default `DEFAULT_RATE_LIMITS`; `DSE_RATE_LIMIT`). */
  rateLimit?: Partial<RateLimits>;
  /** The rate limiter's clock, in milliseconds (tests pass their own instead of sleeping). */
  rateLimitClock?: () => number;
  /** The app the node processes run (`playground`, `kv`, `services`; default `playground`). */
  app?: string;
  /**
   * Where the server's log lines go (a message and its fields); default: JSON lines on stderr (pino,
   * `DSE_LOG_LEVEL`), with the node processes' own lines passed on as they are.
   */
  log?: LogFn;
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

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Starts the live cluster's server: storage, coordinator, session host, node processes, the HTTP API,
 * the Socket.IO command channel and event stream, and the node processes' namespace.
 */
export async function startServer(o: ServerOptions = {}): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token === undefined || o.token === '' ? null : o.token;
  if (!isLoopback(host) && token === null) {
    throw new DseError(
      'Unauthorized',
      `refusing to listen on ${host}: an address other than loopback (127.0.0.1, localhost, ::1) needs DSE_TOKEN set, so that only holders of the token can control the cluster`,
    );
  }
  // Lines without a level are the runtime's reports of something gone wrong: warnings.
  const toLogger = o.log === undefined ? loggerFn(createLogger({ bindings: { role: 'server' } })) : null;
  const log: LogFn = o.log ?? ((msg, fields) => toLogger!(msg, { level: 'warn', ...fields }));
  const everyClient = o.limits?.commandsPerSecond;
  const rates: RateLimits = {
    ...DEFAULT_RATE_LIMITS,
    ...(everyClient !== undefined ? { loopback: everyClient, remote: everyClient } : {}),
    ...o.rateLimit,
  };
  // What browsers are told: the rate of a client elsewhere (one on loopback gets `rates.loopback`).
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits, commandsPerSecond: rates.remote };
  const security = createSecurity(token);

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
    emit: (e) => {
      logEvent(log, e);
      stream!.push(e);
    },
    log,
    nodeStderr: o.nodeStderr,
    // The node processes write JSON lines of their own (with their pid, node id, world-line and version).
    ...(o.log === undefined ? { nodeLogLine: (line: string) => process.stderr.write(`${line}\n`) } : {}),
    onDurable: o.onDurable,
  });
  const requests = new Requests(cluster, { keepMax: 10_000, sessionsMax: 10_000, answerTimeoutMs: 10_000 });
  const workload = new Workload(cluster, requests);

  const snapshot = (reason: 'connect' | 'resync', history: NumberedEvent[], notice?: string): SnapshotParts => {
    const s: SnapshotParts = {
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
  stream = new EventStream(
    { historyEventsMax: limits.historyEventsMax, batchMs: 50, unackedBatchesMax: 8, queueEventsMax: 5000, ackTimeoutMs: 10_000, ...o.stream },
    snapshot,
  );
  stream.start();

  const simulation = new SimulationRunner();
  const commands = createCommands({ cluster, workload, requests, stream, simulation, limits, log });
  const limiter = new RateLimiter(rates, o.rateLimitClock);
  const http = createHttpServer({ security, limiter, limits, commands, webDist: o.webDist ?? join(REPO_ROOT, 'web', 'dist'), log });
  const sockets = attachSockets(http, { security, limiter, limits, commands, stream, cluster });

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
    await sockets.close();
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
      simulation.kill();
      await cluster.stop();
      await sockets.close();
      http.closeAllConnections();
      await storage.close();
    })();
    return closed;
  };

  return { url, port, cluster, workload, stream, storage, exec: commands.exec, close };
}
