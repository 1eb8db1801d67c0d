/**
 * One DSE node as its own OS process. Started by the server (`--incarnation` set), or by hand on any
 * host: `npm run node -- --server http://host:8080 --id n5 [--listen ADDRESS]` (token from `DSE_TOKEN`).
 *
 * It connects to the server over one WebSocket (Socket.IO namespace `/node`: the control plane),
 * listens for its peers on a TCP port of its own (the data plane, `links.ts`), joins, and runs a
 * `DseNode` whose ports are real: a wall clock, the links (and the server, for the coordinator and the
 * API's sessions) as network, the server as storage, and an observer that ships inspection events to
 * the server. Until it has joined it tries again, with capped exponential backoff and jitter, when
 * the server cannot be reached or does not answer (it has nothing to lose by waiting). Once joined,
 * it exits when the connection to the server is lost: the server has then declared it failed, and a
 * new process must start with empty memory. It logs JSON lines on stderr (`../log.ts`).
 */
import { parseCommandLine } from '../command-line';
import type { LogFields } from '../log';
import { createLogger, logLevel } from '../log';
import { backoffDelay, JOIN_BACKOFF } from './backoff';
import { createSocket } from 'node:dgram';
import type { InspectionEvent, NodeId } from '@dse/shared';
import { PROTOCOL_VERSION } from '@dse/shared';
import { io } from 'socket.io-client';
import type { WireMessage } from '../core/messages';
import { COORDINATOR } from '../core/messages';
import { DseNode, messageId } from '../core/node';
import { PLACED_APPS, resolveApp } from './apps';
import { withMembership } from '../services/membership';
import { RealClock } from './clock';
import type { PeerAddress } from './links';
import { NodeLinks } from './links';
import type { Storage } from '../core/ports';
import { PostgresStorage } from '../storage/postgres';
import { RpcStorage } from './rpc-storage';
import type { JoinReply, JoinRequest, NodeClientSocket, NodeRunConfig, StorageOp, UpFrame } from './wire';
import { NODE_NAMESPACE, NODE_SOCKET_PATH, SERVER_ENDPOINT } from './wire';

const USAGE = 'usage: npm run node -- --server URL --id ID [--app NAME] [--listen ADDRESS] (the token, if any, in DSE_TOKEN)';

const { values } = parseCommandLine(
  {
    options: {
      server: { type: 'string' },
      id: { type: 'string' },
      app: { type: 'string' },
      incarnation: { type: 'string' },
      listen: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  },
  USAGE,
);
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values.server === undefined || values.id === undefined) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const id = values.id;
const token = process.env.DSE_TOKEN ?? '';

/** The node's world-line and version as it last reported them: in every log line once known. */
let position: { worldLine: number; version: number } | null = null;
let level: ReturnType<typeof logLevel>;
try {
  level = logLevel();
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
const logger = createLogger({ bindings: { node: id, incarnation: values.incarnation ?? null }, level, mixin: () => position ?? {} });
const say = (msg: string, fields: LogFields = {}): void => {
  const { level: at, ...rest } = fields;
  logger[at ?? 'warn'](rest, msg);
};

const socket: NodeClientSocket = io(new URL(NODE_NAMESPACE, values.server).toString(), {
  path: NODE_SOCKET_PATH,
  transports: ['websocket'],
  // Attempts are this process's own (`retryJoin`): it joins once, and never comes back after losing the server.
  reconnection: false,
  auth: token !== '' ? { token } : {},
  timeout: 10_000,
});

let node: DseNode | null = null;
let clock: RealClock | null = null;
let runCfg: NodeRunConfig | null = null;
let heartbeat: NodeJS.Timeout | null = null;

// ------------------------------------------------------------------ upstream: events and messages in frames

let events: InspectionEvent[] = [];
let msgs: [string, WireMessage][] = [];
let calls: [number, StorageOp, unknown[]][] = [];
let flushQueued = false;
let eventTimer: NodeJS.Timeout | null = null;

function flush(): void {
  flushQueued = false;
  if (eventTimer !== null) {
    clearTimeout(eventTimer);
    eventTimer = null;
  }
  if (events.length === 0 && msgs.length === 0 && calls.length === 0) return;
  const frame: UpFrame = {};
  if (events.length > 0) frame.e = events;
  if (msgs.length > 0) frame.m = msgs;
  if (calls.length > 0) frame.s = calls;
  events = [];
  msgs = [];
  calls = [];
  socket.emit('up', frame);
}

function flushSoon(): void {
  if (flushQueued) return;
  flushQueued = true;
  queueMicrotask(flush);
}

/** Message events shipped at observation `summary`: one in this many. */
const SUMMARY_SAMPLE = 16;
let sampled = 0;

/**
 * What the observer ships, by observation level (`NodeRunConfig.observation`): `full`, everything (what
 * the playground draws); `summary`, versions, checkpoints, rollbacks and state, and one message event in
 * `SUMMARY_SAMPLE`; `off`, only rollbacks (the server needs them to know a node finished restoring).
 */
function observed(e: InspectionEvent): boolean {
  const level = runCfg?.observation ?? 'full';
  if (level === 'full') return true;
  if (e.type === 'rollback') return true;
  if (level === 'off') return false;
  switch (e.type) {
    case 'messageSent':
    case 'messageDelivered':
    case 'messageRejected':
    case 'messageLost':
    case 'dependencyRecorded':
      return ++sampled % SUMMARY_SAMPLE === 0;
    default:
      return true;
  }
}

const observer = {
  emit(e: InspectionEvent): void {
    noteForLog(e);
    if (e.type === 'checkpointPersisted' && runCfg?.serverReportsPersisted === true) return; // the server reports it
    if (!observed(e)) return;
    events.push(e);
    if (events.length >= 500) flushSoon();
    else if (eventTimer === null && !flushQueued) eventTimer = setTimeout(flush, runCfg?.eventFlushMs ?? 20);
  },
};

/** Keeps the log's world-line and version current, and logs what an operator wants to see of a node's own events. */
function noteForLog(e: InspectionEvent): void {
  switch (e.type) {
    case 'versionOpened':
      position = { worldLine: e.worldLine, version: e.version };
      return;
    case 'rollback':
      position = { worldLine: e.worldLine, version: e.toVersion };
      say(e.discarded === null ? 'restored' : 'rolled back', { level: 'info', discarded: e.discarded });
      return;
    case 'checkpointFailed':
      say('a checkpoint failed', { worldLine: e.worldLine, version: e.version, code: e.code, definite: e.definite });
      return;
    default:
      return;
  }
}

/**
 * The network: to a peer node, its link (the data plane); to the coordinator and the server's session
 * host, the connection to the server. Messages with a header go through the configured network model
 * first (delay, jitter, loss: the playground's network controls), as they leave this node.
 */
const network = {
  send(to: string, msg: WireMessage): void {
    // The server reports the node's writes itself; a kept version reported again after a recovery it cannot know of.
    if (msg.kind === 'persisted' && msg.again !== true && runCfg?.serverReportsPersisted === true) return;
    const cfg = runCfg;
    if (cfg !== null && 'h' in msg && (cfg.messageLoss > 0 || cfg.networkDelayMs > 0 || cfg.networkJitterMs > 0)) {
      if (cfg.messageLoss > 0 && Math.random() < cfg.messageLoss) {
        lost(to, msg, 'loss');
        return;
      }
      const delay = cfg.networkDelayMs + (cfg.networkJitterMs > 0 ? Math.random() * cfg.networkJitterMs : 0);
      if (delay > 0) {
        setTimeout(() => deliver(to, msg), delay);
        return;
      }
    }
    deliver(to, msg);
  },
};

function deliver(to: string, msg: WireMessage): void {
  if (to === id) {
    // To itself (an sthread calling a step on its own node): after this step, never inside it.
    setImmediate(() => {
      if (node === null) return;
      try {
        node.receive(msg);
      } catch (e) {
        fatal(e);
      }
    });
    return;
  }
  if (links.knows(to)) {
    links.send(to, msg);
    return;
  }
  if (to === COORDINATOR || to === SERVER_ENDPOINT) {
    msgs.push([to, msg]);
    flushSoon();
    return;
  }
  // A node this one has no address for (not joined yet, or removed): the network loses it; the sender
  // resends what matters.
  lost(to, msg, 'down');
}

/** The network lost a message of this node's (configured loss, or no way to its receiver): said in the stream. */
function lost(to: string, msg: WireMessage, reason: 'down' | 'loss'): void {
  if (!('h' in msg)) return;
  observer.emit({ type: 'messageLost', t: clock?.now() ?? 0, id: messageId(msg), kind: msg.kind, from: id, to, reason });
}

const links = new NodeLinks({
  id,
  token: token !== '' ? token : null,
  onMessage: (_from, m) => {
    if (node === null) return;
    try {
      node.receive(m);
    } catch (e) {
      fatal(e);
    }
  },
  log: (line) => say(line),
});

// Storage calls ride in the same frames (and their answers in the server's), one frame per turn.
const rpcStorage = new RpcStorage(
  {
    connected: () => socket.connected,
    send(callId, op, args) {
      calls.push([callId, op, args]);
      flushSoon();
    },
  },
  5000,
);

/**
 * The node's own PostgreSQL pool (its checkpoints go straight to the database, with no hop through the
 * server), when the server says the cluster is on PostgreSQL and this process has `DATABASE_URL`.
 */
let ownStorage: Promise<Storage> | null = null;
function storageFor(cfg: NodeRunConfig): Promise<Storage> {
  const url = process.env.DATABASE_URL;
  if (cfg.storage.kind !== 'postgres' || url === undefined || url === '') return Promise.resolve(rpcStorage);
  const schema = cfg.storage.schema;
  ownStorage ??= PostgresStorage.open({ url, poolMax: 2, ...(schema !== null ? { schema } : {}) }).then(
    (s) => s.storage,
    (e: unknown) => {
      say(`cannot open PostgreSQL myself (${e instanceof Error ? e.message : String(e)}): storage goes through the server`);
      return rpcStorage;
    },
  );
  return ownStorage;
}

function fatal(e: unknown): void {
  say(`stopped on an error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { level: 'error' });
  flush();
  process.exit(1);
}

async function startNode(cfg: NodeRunConfig): Promise<void> {
  const appName = values.app ?? cfg.app;
  const plain = resolveApp(appName);
  if (plain === undefined) {
    say(`unknown app ${appName}`, { level: 'error' });
    process.exit(2);
  }
  // The playground's apps answer only for the units they own, and move them when the members change.
  const app = cfg.founders !== undefined && PLACED_APPS.includes(appName) ? withMembership(plain, { founders: cfg.founders }) : plain;
  runCfg = cfg;
  rpcStorage.timeoutMs = cfg.storageTimeoutMs;
  const storage = await storageFor(cfg);
  if (runCfg !== cfg) return; // a reset came meanwhile: it starts the node
  clock?.cancelAll();
  clock = new RealClock(cfg.epochMs);
  node = new DseNode(
    id,
    app,
    { clock, network, storage, observer, onFatal: fatal },
    {
      mode: cfg.mode,
      cutKind: cfg.cutKind,
      checkpointIntervalMs: cfg.checkpointIntervalMs,
      retransmitMs: cfg.retransmitMs,
      heartbeatMs: null,
      emitStateChanges: true,
    },
  );
  node.setHeld(cfg.held);
  node.start();
  startHeartbeat(cfg.heartbeatIntervalMs);
}

/** Heartbeats are empty frames: the server fails a node it has not heard from for its heartbeat timeout. */
function startHeartbeat(ms: number): void {
  if (heartbeat !== null) clearInterval(heartbeat);
  heartbeat = setInterval(() => {
    flush();
    socket.emit('up', {});
  }, ms);
}

/** The address of this host on the way to `host`: where peers elsewhere can reach this node. */
function localAddressToward(host: string): Promise<string> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.on('error', () => {
      s.close();
      resolve('127.0.0.1');
    });
    s.connect(9, host, () => {
      const a = s.address().address;
      s.close();
      resolve(a);
    });
  });
}

let dataAddress: Promise<PeerAddress> | null = null;
function listenOnce(): Promise<PeerAddress> {
  dataAddress ??= (async () => {
    const serverHost = new URL(values.server!).hostname.replace(/^\[|\]$/g, '');
    const loopback = serverHost === 'localhost' || serverHost === '127.0.0.1' || serverHost === '::1';
    const host = values.listen ?? process.env.DSE_NODE_HOST ?? (loopback ? '127.0.0.1' : await localAddressToward(serverHost));
    return links.listen(host);
  })();
  return dataAddress;
}

socket.on('connect', () => {
  void listenOnce().then(
    (data) => joinWith(data),
    (e: unknown) => {
      say(`cannot listen for peers: ${e instanceof Error ? e.message : String(e)}`, { level: 'error' });
      process.exit(2);
    },
  );
});

// ------------------------------------------------------------------ joining, and trying again

/** Set once the server accepted the join: from then on, losing the server ends this process. */
let joined = false;
/** Failed attempts to join since the last success (the backoff's exponent). */
let attempts = 0;
let retryTimer: NodeJS.Timeout | null = null;

/**
 * An attempt to join failed (no connection, no answer, or a refusal worth waiting out): try again
 * after a capped exponential backoff with jitter, instead of exiting and being respawned at once.
 */
function retryJoin(why: string): void {
  if (joined || retryTimer !== null) return;
  attempts++;
  const delayMs = backoffDelay(attempts, JOIN_BACKOFF);
  say(`cannot join ${values.server}: ${why}; trying again`, { attempt: attempts, retryInMs: delayMs });
  if (socket.connected) socket.disconnect();
  retryTimer = setTimeout(() => {
    retryTimer = null;
    socket.connect();
  }, delayMs);
}

/** Joins sent: an answer to an earlier one (after a reconnection) is not this connection's. */
let joinsSent = 0;

function joinWith(data: PeerAddress): void {
  const join: JoinRequest = { protocol: PROTOCOL_VERSION, id, pid: process.pid, incarnation: values.incarnation ?? null, data };
  const sent = ++joinsSent;
  socket.timeout(15_000).emit('join', join, (err: Error | null, reply: JoinReply) => {
    if (sent !== joinsSent || joined) return;
    if (err !== null) {
      retryJoin('the server did not answer the join');
      return;
    }
    if ('error' in reply) {
      // A malformed join never succeeds; a process the server spawned and now refuses is a stale one
      // (killed, restarted or removed meanwhile): it must not linger. Anything else may pass (a server
      // shutting down, a full cluster, an id still held by a process of the server).
      if (reply.error.code === 'BadRequest' || values.incarnation !== undefined) {
        say(`join refused: ${reply.error.code}: ${reply.error.message}`, { level: 'error' });
        process.exit(2);
      }
      retryJoin(`join refused: ${reply.error.code}: ${reply.error.message}`);
      return;
    }
    joined = true;
    say('joined', { level: 'info', server: values.server, failedAttempts: attempts });
    attempts = 0;
    void startNode(reply.config);
  });
}

socket.on('peers', (table) => {
  if (typeof table !== 'object' || table === null) return;
  const known: Record<NodeId, PeerAddress> = {};
  for (const [n, a] of Object.entries(table)) {
    if (a !== null && typeof a === 'object' && typeof a.host === 'string' && typeof a.port === 'number') known[n] = a;
  }
  links.setPeers(known);
});

socket.on('m', (frame) => {
  // Storage answers settle promises: the node sees them after this frame's messages.
  if (Array.isArray(frame.r)) for (const [callId, reply] of frame.r) rpcStorage.onReply(callId, reply);
  if (node === null || !Array.isArray(frame.m)) return;
  for (const m of frame.m) {
    try {
      node.receive(m);
    } catch (e) {
      // The runtime's own assertion failed: crash, and let recovery restore a consistent state.
      fatal(e);
    }
  }
});

socket.on('cfg', (push) => {
  if (runCfg === null) return;
  if (push.checkpointIntervalMs !== undefined) {
    runCfg = { ...runCfg, checkpointIntervalMs: push.checkpointIntervalMs };
    node?.setCheckpointInterval(push.checkpointIntervalMs);
  }
  if (push.heartbeatIntervalMs !== undefined) {
    runCfg = { ...runCfg, heartbeatIntervalMs: push.heartbeatIntervalMs };
    startHeartbeat(push.heartbeatIntervalMs);
  }
  for (const k of ['networkDelayMs', 'networkJitterMs', 'messageLoss', 'observation', 'held'] as const) {
    if (push[k] !== undefined) runCfg = { ...runCfg, [k]: push[k] };
  }
  if (push.held !== undefined) node?.setHeld(push.held);
});

socket.on('leave', (reply) => {
  const left = node?.leave() ?? null;
  flush();
  reply(left);
});

socket.on('reset', (cfg) => {
  // A new mode or cut: start again with empty memory; the coordinator restores us from the cut.
  node?.stop();
  node = null;
  flush();
  void startNode(cfg);
});

socket.on('connect_error', (e: Error) => {
  // engine.io puts the transport's own error in `description` (an ErrorEvent, or the HTTP status of a refused upgrade).
  const d = (e as Error & { description?: unknown }).description;
  const detail = d instanceof Error ? d.message : typeof d === 'object' && d !== null && 'message' in d ? String(d.message) : d !== undefined ? String(d) : '';
  retryJoin(`cannot connect: ${e.message}${detail !== '' ? ` (${detail})` : ''}`);
});

socket.on('disconnect', (reason: string) => {
  rpcStorage.failAll();
  if (!joined) {
    // Lost while joining (the server restarted, or this process gave up on an answer): nothing to lose yet.
    if (reason !== 'io client disconnect') retryJoin(`disconnected while joining (${reason})`);
    return;
  }
  say(`disconnected (${reason}): exiting`);
  process.exit(3);
});

// A process the server spawned (`--incarnation`) goes with the server: its stdin is a pipe from the
// server, which ends when the server is gone (killed with SIGKILL, say). Without this, a node that has
// not joined would wait for a server that will never come back, and nobody would stop it.
if (values.incarnation !== undefined) {
  const serverGone = (): void => {
    say('the server that started this process is gone: exiting');
    process.exit(3);
  };
  process.stdin.on('error', serverGone);
  process.stdin.on('end', serverGone);
  process.stdin.on('close', serverGone);
  process.stdin.resume();
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
