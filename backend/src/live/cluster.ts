import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig, ClusterInfo, ConfigPatch, InspectionEvent, Json, Limits, LiveNodeStatus, NodeId, NodeInfo, WorldLine } from '@dse/shared';
import { DseError, errorBody } from '@dse/shared';
import type { Namespace, Socket } from 'socket.io';
import { Coordinator } from '../core/coordinator';
import type { WireMessage } from '../core/messages';
import { COORDINATOR } from '../core/messages';
import type { CheckpointRecord, Observer } from '../core/ports';
import { messageId } from '../core/node';
import { SessionHost } from '../core/session';
import { CheckpointGroupWriter } from '../storage/group-commit';
import type { OpenedStorage } from '../storage/open';
import { RealClock, wallNow } from './clock';
import type { LoadedCheckpointWire } from './rpc-storage';
import type { DownFrame, JoinReply, JoinRequest, NodeConfigPush, NodeRunConfig, PeerTable, StorageReply, UpFrame } from './wire';
import { SERVER_ENDPOINT } from './wire';

/** At most one cut announcement per destination in this long (see `Cluster.coalesceCut`). */
export const CUT_COALESCE_MS = 5;

export const NODE_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  mode: 'speculative',
  cut: 'exact',
  recovery: 'precise',
  checkpointIntervalMs: 100,
  networkDelayMs: 0,
  networkJitterMs: 0,
  messageLoss: 0,
  autoRestart: false,
  autoRestartDelayMs: 500,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 2000,
  observation: 'full',
  held: false,
};

export interface ClusterOptions {
  storage: OpenedStorage;
  config: ClusterConfig;
  limits: Limits;
  /** The app node processes run (by name, see `apps.ts`). */
  app: string;
  /** Where spawned node processes connect (known once the server listens). */
  serverUrl: () => string;
  token: string | null;
  /** Every inspection event of the cluster, in order (node events arrive in frames, see `UpFrame`). */
  emit: (e: InspectionEvent) => void;
  log: (line: string) => void;
  /** Show node processes' stderr in the server's (default true). */
  nodeStderr?: boolean;
  /** Called with every batch of checkpoints the storage made durable (a checker's ground truth). */
  onDurable?: (records: readonly CheckpointRecord[]) => void;
}

interface NodeEntry {
  id: NodeId;
  origin: 'local' | 'remote';
  /** The spawned process, while it runs. */
  proc: ChildProcess | null;
  pid: number | null;
  /** The current process's connection, once it joined. */
  conn: Socket | null;
  /** The incarnation the server expects to join (local nodes). */
  incarnation: string | null;
  starts: number;
  /** The server killed the current process (kill, remove, heartbeat): its exit is reported as `killed`. */
  killing: boolean;
  /** Start a new process when the current one exits (restart of a running node). */
  respawn: boolean;
  removed: boolean;
  lastHeard: number;
  restartTimer: NodeJS.Timeout | null;
  // What the node last reported (from its events).
  version: number;
  persistedVersion: number;
  worldLine: WorldLine;
  /** The world-line the node last restored into; `recovering` until it matches the coordinator's. */
  restoredWorldLine: WorldLine;
  /** Where its peers reach the current process (its data-plane listener), once it joined. */
  address: { host: string; port: number } | null;
}

const NODE_MAIN = fileURLToPath(new URL('./node-main.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** FNV-1a, for rendezvous hashing of keys to nodes. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The live cluster, in the server process: the coordinator, the session host (`server` endpoint), the
 * relay every wire message goes through (where network delay, jitter and loss are applied), and the
 * node processes (spawned here, or joined from elsewhere over `/node`).
 *
 * Failure detection: a spawned process's exit is reported to the coordinator at once; a node the
 * server has not heard from for `heartbeatTimeoutMs` (hung, SIGSTOP, network cut) is failed and its
 * process killed, so that a failed node never comes back with its old memory.
 */
export class Cluster {
  readonly clock: RealClock;
  coordinator: Coordinator;
  readonly host: SessionHost;
  config: ClusterConfig;
  private readonly opts: ClusterOptions;
  private readonly nodes = new Map<NodeId, NodeEntry>();
  private readonly observer: Observer;
  private localQueue: (() => void)[] = [];
  private localScheduled = false;
  private monitor: NodeJS.Timeout | null = null;
  private lastMonitorAt = 0;
  private shuttingDown = false;
  private reconfiguring: Promise<void> = Promise.resolve();
  /** What goes to each node connection at the end of this turn, in one frame. */
  private readonly downBuffers = new Map<Socket, { m: WireMessage[]; r: [number, StorageReply][] }>();
  /** Cut announcements waiting to go, the newest per destination (see `coalesceCut`). */
  private readonly pendingCuts = new Map<string, WireMessage>();
  private forgedCount = 0;
  private readonly forgedWarned = new WeakSet<Socket>();
  private cutTimer: NodeJS.Timeout | null = null;
  private cutsScheduled = false;
  private lastCutFlush = -Infinity;
  /** Checkpoint writes of every node process, group-committed. */
  private readonly checkpointWriter: CheckpointGroupWriter;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.config = { ...opts.config };
    this.clock = new RealClock(Math.floor(wallNow()));
    this.observer = { emit: (e) => this.onServerEvent(e) };
    this.checkpointWriter = new CheckpointGroupWriter(opts.storage.storage);
    this.coordinator = this.makeCoordinator();
    this.host = new SessionHost(SERVER_ENDPOINT, { clock: this.clock, network: { send: (to, m) => this.route(to, m) }, observer: this.observer }, { retransmitMs: 200, queuedRequestsMax: 1000 });
  }

  get epochMs(): number {
    return this.clock.epochMs;
  }

  /** Names this server start (session ids carry it, see `Requests.hostSessionId`). */
  get bootId(): string {
    return this.clock.epochMs.toString(36);
  }

  private makeCoordinator(): Coordinator {
    const c: Coordinator = new Coordinator(
      {
        clock: this.clock,
        network: { send: (to, m) => this.route(to, m, true) },
        storage: this.opts.storage.storage,
        observer: this.observer,
        onFatal: (e) => this.restartCoordinator(c, e),
      },
      {
        mode: this.config.mode,
        cutKind: this.config.cut,
        recovery: this.config.recovery,
        heartbeatTimeoutMs: null,
        pruneIntervalMs: 1000,
        storageRetryMs: 50,
        // A live node that has not answered a recovery's prepare by then is as good as failed.
        prepareTimeoutMs: this.config.heartbeatTimeoutMs,
      },
    );
    return c;
  }

  /**
   * The coordinator stopped on an error (a failed assertion, a storage refusal): a new one starts from
   * storage while the node processes run on. It asks every node for its state and starts a new
   * world-line; what the old one announced as committed is in storage, nothing committed is lost.
   */
  private restartCoordinator(failed: Coordinator, error: unknown): void {
    if (this.shuttingDown || this.coordinator !== failed) return;
    this.opts.log(`coordinator stopped on an error, starting a new one from storage: ${error instanceof Error ? error.message : String(error)}`);
    const next = this.makeCoordinator();
    this.coordinator = next;
    const ids = [...this.nodes.keys()].filter((id) => !this.nodes.get(id)!.removed);
    next.addClient(SERVER_ENDPOINT, { announce: true });
    next.start(ids, { resume: true }).then(
      () => {
        for (const id of [...next.members.keys()]) if (!this.nodes.has(id)) next.removeNode(id);
      },
      (e: unknown) => {
        this.opts.log(`the new coordinator could not start: ${e instanceof Error ? e.message : String(e)}; trying again`);
        setTimeout(() => this.restartCoordinator(next, e), 500);
      },
    );
  }

  /** Starts the coordinator from storage and `initialNodes` node processes (plus members the storage knows). */
  async start(initialNodes: number): Promise<void> {
    const ids = Array.from({ length: initialNodes }, (_, i) => `n${i + 1}`);
    await this.coordinator.start(ids);
    this.coordinator.addClient(SERVER_ENDPOINT);
    this.host.start(this.coordinator.worldLine);
    const members = [...this.coordinator.members.keys()].slice(0, this.opts.limits.nodesMax);
    for (const id of [...this.coordinator.members.keys()]) if (!members.includes(id)) this.coordinator.removeNode(id);
    for (const id of members) {
      this.nodes.set(id, this.newEntry(id, 'local'));
      this.spawnNode(id);
    }
    this.lastMonitorAt = wallNow();
    this.monitor = setInterval(() => this.checkHeartbeats(), Math.max(20, Math.floor(this.config.heartbeatTimeoutMs / 4)));
  }

  async stop(): Promise<void> {
    this.shuttingDown = true;
    if (this.monitor !== null) clearInterval(this.monitor);
    if (this.cutTimer !== null) clearTimeout(this.cutTimer);
    this.coordinator.stop();
    this.host.stop();
    const exits: Promise<void>[] = [];
    for (const e of this.nodes.values()) {
      if (e.restartTimer !== null) clearTimeout(e.restartTimer);
      e.conn?.disconnect(true);
      const p = e.proc;
      if (p !== null && p.exitCode === null && p.signalCode === null) {
        exits.push(
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              p.kill('SIGKILL');
            }, 2000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGKILL');
          }),
        );
      }
    }
    await Promise.all(exits);
  }

  private newEntry(id: NodeId, origin: 'local' | 'remote'): NodeEntry {
    return {
      id,
      origin,
      proc: null,
      pid: null,
      conn: null,
      incarnation: null,
      starts: 0,
      killing: false,
      respawn: false,
      removed: false,
      lastHeard: wallNow(),
      restartTimer: null,
      version: 0,
      persistedVersion: 0,
      worldLine: 0,
      restoredWorldLine: 0,
      address: null,
    };
  }

  // ------------------------------------------------------------------ events

  private onServerEvent(e: InspectionEvent): void {
    if (e.type === 'nodeFailed' && e.reason === 'heartbeat') {
      // Never let a node that was declared failed continue with its memory: kill it.
      const entry = this.nodes.get(e.node);
      if (entry !== undefined) this.terminate(entry);
    }
    this.opts.emit(e);
  }

  /** Updates what the server knows of a node from the events it sent. */
  private track(entry: NodeEntry, e: InspectionEvent): void {
    switch (e.type) {
      case 'versionOpened':
        entry.version = e.version;
        entry.worldLine = e.worldLine;
        return;
      case 'checkpointPersisted':
        if (e.worldLine === entry.worldLine && e.version > entry.persistedVersion) entry.persistedVersion = e.version;
        return;
      case 'rollback':
        entry.restoredWorldLine = e.worldLine;
        entry.worldLine = e.worldLine;
        // A fresh process restored its restore point from storage; a running one kept what it had
        // persisted up to it (precise recovery may keep versions not yet persisted).
        entry.persistedVersion = entry.persistedVersion === 0 ? e.toVersion : Math.min(entry.persistedVersion, e.toVersion);
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------------ the relay

  /**
   * The server's own messages (coordinator, session host) and what nodes send it go through here.
   * Messages between nodes do not: they travel over the nodes' links. The session host's messages get
   * the configured delay, jitter and loss (nodes apply it to theirs); control messages never do.
   */
  private route(to: string, msg: WireMessage, fromCoordinator = false, fromNode = false): void {
    if (msg.kind === 'cut' && to !== SERVER_ENDPOINT) {
      // To node connections, coalesced; the session host is in this process and hears it at once
      // (a client awaiting a commit waits for exactly this announcement).
      this.coalesceCut(to, msg);
      return;
    }
    if (fromNode && to !== COORDINATOR && to !== SERVER_ENDPOINT) {
      // A node sends its peers its messages itself; the server relays nothing between nodes.
      if ('h' in msg) this.lost(to, msg, 'down');
      return;
    }
    if (!fromCoordinator && !fromNode && 'h' in msg) {
      const c = this.config;
      if (c.messageLoss > 0 && Math.random() < c.messageLoss) {
        this.lost(to, msg, 'loss');
        return;
      }
      const delay = c.networkDelayMs + (c.networkJitterMs > 0 ? Math.random() * c.networkJitterMs : 0);
      if (delay > 0) {
        setTimeout(() => this.deliver(to, msg), delay);
        return;
      }
    }
    this.deliver(to, msg);
  }

  /**
   * The coordinator announces its cut on every change, to every node and session host: with frequent
   * checkpoints, hundreds of small frames a second, all through this event loop. Cuts only grow within a
   * world-line and every announcement carries the whole cut, so only the newest one per destination
   * needs to go: the first after a quiet spell goes at the end of the turn, later ones at most every
   * `CUT_COALESCE_MS`; the newest is always sent. A cut held back while a new world-line is announced
   * arrives after it, where receivers ignore a cut of an older world-line.
   */
  private coalesceCut(to: string, msg: WireMessage): void {
    this.pendingCuts.set(to, msg);
    if (this.cutsScheduled) return;
    this.cutsScheduled = true;
    const wait = this.lastCutFlush + CUT_COALESCE_MS - wallNow();
    if (wait <= 0) queueMicrotask(() => this.flushCuts());
    else this.cutTimer = setTimeout(() => this.flushCuts(), wait);
  }

  private flushCuts(): void {
    this.cutTimer = null;
    this.cutsScheduled = false;
    this.lastCutFlush = wallNow();
    const cuts = [...this.pendingCuts];
    this.pendingCuts.clear();
    for (const [to, msg] of cuts) this.deliver(to, msg);
  }

  private deliver(to: string, msg: WireMessage): void {
    if (to === COORDINATOR) {
      this.runLocal(() => this.coordinator.receive(msg));
      return;
    }
    if (to === SERVER_ENDPOINT) {
      this.runLocal(() => this.host.receive(msg));
      return;
    }
    const conn = this.nodes.get(to)?.conn;
    if (conn === null || conn === undefined) {
      this.lost(to, msg, 'down'); // down: the network loses it
      return;
    }
    this.downBuffer(conn).m.push(msg);
  }

  /** Says in the event stream that the relay lost a message between nodes and sessions (not the coordinator's). */
  private lost(to: string, msg: WireMessage, reason: 'down' | 'loss'): void {
    if (!('h' in msg)) return;
    this.emitServer({ type: 'messageLost', t: this.clock.now(), id: messageId(msg), kind: msg.kind, from: msg.h.src, to, reason });
  }

  /** The frame going to `conn` at the end of this turn (messages and storage answers together). */
  private downBuffer(conn: Socket): { m: WireMessage[]; r: [number, StorageReply][] } {
    let buf = this.downBuffers.get(conn);
    if (buf === undefined) {
      buf = { m: [], r: [] };
      this.downBuffers.set(conn, buf);
      queueMicrotask(() => {
        const b = this.downBuffers.get(conn);
        this.downBuffers.delete(conn);
        if (b === undefined || !conn.connected || (b.m.length === 0 && b.r.length === 0)) return;
        const frame: DownFrame = {};
        if (b.m.length > 0) frame.m = b.m;
        if (b.r.length > 0) frame.r = b.r;
        conn.emit('m', frame);
      });
    }
    return buf;
  }

  /** Deliveries inside the server run later, never inside the sender's call (no re-entrance). */
  private runLocal(fn: () => void): void {
    this.localQueue.push(fn);
    if (this.localScheduled) return;
    this.localScheduled = true;
    setImmediate(() => {
      this.localScheduled = false;
      const q = this.localQueue;
      this.localQueue = [];
      for (const f of q) {
        try {
          f();
        } catch (e) {
          this.opts.log(`internal error in the server's runtime: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        }
      }
    });
  }

  // ------------------------------------------------------------------ node connections (namespace /node)

  runConfig(): NodeRunConfig {
    return {
      app: this.opts.app,
      mode: this.config.mode,
      cutKind: this.config.cut,
      checkpointIntervalMs: this.config.checkpointIntervalMs,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      epochMs: this.clock.epochMs,
      retransmitMs: 200,
      eventFlushMs: 20,
      storageTimeoutMs: 5000,
      // Nodes that write their checkpoints themselves report them too.
      serverReportsPersisted: this.config.mode !== 'none' && this.opts.storage.schema === undefined,
      networkDelayMs: this.config.networkDelayMs,
      networkJitterMs: this.config.networkJitterMs,
      messageLoss: this.config.messageLoss,
      observation: this.config.observation,
      held: this.config.held,
      storage: this.opts.storage.kind === 'postgres' && this.opts.storage.schema !== undefined ? { kind: 'postgres', schema: this.opts.storage.schema } : { kind: 'server' },
    };
  }

  /** Every member's data-plane address, to every node (on each join, exit and removal). */
  private sendPeers(): void {
    const table: PeerTable = {};
    for (const e of this.nodes.values()) if (!e.removed) table[e.id] = e.conn !== null ? e.address : null;
    for (const e of this.nodes.values()) e.conn?.emit('peers', table);
  }

  /** Serves the node processes' namespace: join, frames, storage calls, disconnects. */
  attach(nsp: Namespace): void {
    nsp.on('connection', (socket: Socket) => {
      let joined: NodeEntry | null = null;
      socket.on('join', (req: unknown, ack: unknown) => {
        if (typeof ack !== 'function') return;
        const reply = joined !== null ? { error: new DseError('Conflict', 'already joined').toBody() } : this.join(socket, req);
        if ('ok' in reply) joined = this.nodes.get((req as JoinRequest).id) ?? null;
        (ack as (r: JoinReply) => void)(reply);
      });
      socket.on('up', (frame: unknown) => {
        if (joined === null || joined.conn !== socket) return; // a stale incarnation: not part of the cluster
        this.onFrame(joined, frame);
      });
      socket.on('st', (op: unknown, args: unknown, ack: unknown) => {
        if (typeof ack !== 'function') return;
        const reply = (r: StorageReply): void => (ack as (r: StorageReply) => void)(r);
        if (joined === null || joined.conn !== socket) {
          reply({ error: new DseError('Unauthorized', 'storage: this connection is not a current node').toBody() });
          return;
        }
        this.storageCall(joined.id, op, args).then(
          (value) => reply({ ok: true, value }),
          (e: unknown) => reply({ error: errorBody(e) }),
        );
      });
      socket.on('disconnect', () => {
        this.downBuffers.delete(socket);
        if (joined === null || joined.conn !== socket) return;
        const entry = joined;
        entry.conn = null;
        entry.address = null;
        this.sendPeers();
        // A spawned process reports its failure by exiting; a remote one by losing its connection.
        if (entry.origin === 'remote') this.onNodeGone(entry, entry.killing ? 'killed' : 'exit');
      });
    });
  }

  private join(socket: Socket, raw: unknown): JoinReply {
    if (this.shuttingDown) return { error: new DseError('Conflict', 'the server is shutting down').toBody() };
    const r = raw as Partial<JoinRequest> | null;
    if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || !NODE_ID_PATTERN.test(r.id) || typeof r.pid !== 'number') {
      return { error: new DseError('BadRequest', 'join: {id, pid, incarnation} with an id of letters, digits, _ and -').toBody() };
    }
    const incarnation = typeof r.incarnation === 'string' ? r.incarnation : null;
    let entry = this.nodes.get(r.id);
    if (incarnation !== null) {
      // A process this server spawned: only the one it expects.
      if (entry === undefined || entry.removed || entry.incarnation !== incarnation || entry.proc === null) {
        return { error: new DseError('Conflict', `join: ${r.id} incarnation ${incarnation} is not the current one`).toBody() };
      }
    } else {
      // A node started by hand, possibly on another host.
      if (entry !== undefined && entry.origin === 'local' && entry.proc !== null) {
        return { error: new DseError('Conflict', `join: ${r.id} runs as a process of this server`).toBody() };
      }
      if (entry === undefined) {
        if (this.nodes.size >= this.opts.limits.nodesMax) {
          return { error: new DseError('LimitExceeded', `join: the cluster has ${this.nodes.size} nodes, the most allowed`).toBody() };
        }
        entry = this.newEntry(r.id, 'remote');
        this.nodes.set(r.id, entry);
        this.coordinator.addNode(r.id);
        this.emitServer({ type: 'nodeAdded', t: this.clock.now(), node: r.id });
      }
      if (entry.conn !== null) {
        // A new process for this id replaces the old one, which must not go on with its memory.
        const old = entry.conn;
        entry.conn = null;
        old.disconnect(true);
      }
      entry.origin = 'remote';
      entry.pid = r.pid;
      entry.starts++;
      entry.removed = false;
      this.emitServer({ type: 'nodeProcess', t: this.clock.now(), node: r.id, pid: r.pid, state: 'joined', code: null, signal: null });
    }
    const data = (r as { data?: unknown }).data as { host?: unknown; port?: unknown } | undefined;
    if (typeof data !== 'object' || data === null || typeof data.host !== 'string' || typeof data.port !== 'number' || !Number.isInteger(data.port) || data.port <= 0 || data.port > 65535) {
      return { error: new DseError('BadRequest', 'join: data must be {host, port}, where peers reach this node').toBody() };
    }
    entry.conn = socket;
    entry.killing = false;
    entry.lastHeard = wallNow();
    entry.restoredWorldLine = 0;
    entry.address = { host: data.host, port: data.port };
    // The new address goes to everyone, this node included, once it has its reply.
    setImmediate(() => this.sendPeers());
    return { ok: true, config: this.runConfig() };
  }

  private onFrame(entry: NodeEntry, raw: unknown): void {
    entry.lastHeard = wallNow();
    const frame = raw as UpFrame | null;
    if (typeof frame !== 'object' || frame === null) return;
    if (Array.isArray(frame.e)) {
      for (const e of frame.e) {
        if (typeof e !== 'object' || e === null || typeof (e as { type?: unknown }).type !== 'string') continue;
        if (!eventOfNode(entry.id, e)) {
          this.forged(entry, `an event ${JSON.stringify((e as { type: string }).type).slice(0, 40)} not about itself`);
          continue;
        }
        this.track(entry, e);
        this.opts.emit(e);
      }
    }
    if (Array.isArray(frame.m)) {
      for (const item of frame.m) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'object' || item[1] === null) continue;
        if (!messageOfNode(entry.id, item[1] as WireMessage)) {
          this.forged(entry, `a ${JSON.stringify((item[1] as { kind?: unknown }).kind ?? null).slice(0, 40)} message not from itself`);
          continue;
        }
        this.route(item[0], item[1] as WireMessage, false, true);
      }
    }
    if (Array.isArray(frame.s)) {
      const conn = entry.conn;
      for (const call of frame.s) {
        if (!Array.isArray(call) || typeof call[0] !== 'number' || conn === null) continue;
        const callId = call[0];
        const answer = (r: StorageReply): void => {
          // Answers go only to the connection that asked (a node that reconnected asks again).
          if (conn.connected) this.downBuffer(conn).r.push([callId, r]);
        };
        this.storageCall(entry.id, call[1], call[2]).then(
          (value) => answer({ ok: true, value }),
          (e: unknown) => answer({ error: errorBody(e) }),
        );
      }
    }
  }

  /** A node sent something in another's name (security F6): dropped, and said once per connection. */
  private forged(entry: NodeEntry, what: string): void {
    this.forgedCount++;
    if (entry.conn === null || this.forgedWarned.has(entry.conn)) return;
    this.forgedWarned.add(entry.conn);
    this.opts.log(`node ${entry.id} sent ${what}: dropped (and whatever else it sends in another's name)`);
  }

  /** Events and messages dropped because a node sent them in another's name. */
  get forgedDropped(): number {
    return this.forgedCount;
  }

  /** Storage calls this server served for node processes (none when they write to PostgreSQL themselves). */
  storageCallsServed = 0;

  private async storageCall(node: NodeId, op: unknown, args: unknown): Promise<unknown> {
    this.storageCallsServed++;
    const storage = this.opts.storage.storage;
    const a = Array.isArray(args) ? args : [];
    if (op === 'writeCheckpoints') {
      const records = a[0];
      if (!Array.isArray(records) || !records.every((r) => typeof r === 'object' && r !== null && (r as CheckpointRecord).node === node)) {
        throw new DseError('BadRequest', 'storage: a node writes only its own checkpoints');
      }
      await this.checkpointWriter.write(records as CheckpointRecord[]);
      this.opts.onDurable?.(records as CheckpointRecord[]);
      this.reportPersisted(node, records as CheckpointRecord[]);
      return null;
    }
    if (op === 'loadCheckpoint') {
      if (a[0] !== node || typeof a[1] !== 'number') throw new DseError('BadRequest', 'storage: a node loads only its own checkpoints');
      const cp = await storage.loadCheckpoint(node, a[1]);
      if (cp === null) return null;
      const wire: LoadedCheckpointWire = { ...cp, state: [...cp.state] };
      return wire;
    }
    throw new DseError('BadRequest', `storage: ${String(op)} is not a node's operation`);
  }

  /**
   * A node's checkpoints are durable: the event and the coordinator's `persisted`, from here rather than
   * from the node (see `NodeRunConfig.serverReportsPersisted`), in the order the node would send them.
   */
  private reportPersisted(node: NodeId, records: readonly CheckpointRecord[]): void {
    const entry = this.nodes.get(node);
    for (const r of records) {
      const e: InspectionEvent = { type: 'checkpointPersisted', t: this.clock.now(), node, worldLine: r.worldLine, version: r.version, deps: r.deps };
      if (entry !== undefined) this.track(entry, e);
      this.opts.emit(e);
      this.route(COORDINATOR, { kind: 'persisted', node, worldLine: r.worldLine, version: r.version, prevVersion: r.prevVersion, deps: r.deps }, true);
    }
  }

  // ------------------------------------------------------------------ processes

  private spawnNode(id: NodeId): void {
    const entry = this.nodes.get(id);
    if (entry === undefined || entry.removed || this.shuttingDown || entry.proc !== null) return;
    entry.origin = 'local';
    entry.starts++;
    entry.incarnation = `${id}.${entry.starts}.${Math.floor(wallNow())}`;
    entry.killing = false;
    entry.respawn = false;
    entry.restoredWorldLine = 0;
    entry.version = 0;
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (this.opts.token !== null) env.DSE_TOKEN = this.opts.token;
    else delete env.DSE_TOKEN;
    // On PostgreSQL, the nodes this server spawns write their checkpoints themselves (see NodeRunConfig.storage).
    if (this.opts.storage.url !== undefined && this.opts.storage.schema !== undefined) env.DATABASE_URL = this.opts.storage.url;
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_MAIN, '--server', this.opts.serverUrl(), '--id', id, '--incarnation', entry.incarnation], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    entry.proc = child;
    entry.pid = child.pid ?? null;
    entry.lastHeard = wallNow();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (this.opts.nodeStderr === false) return;
      for (const line of chunk.split('\n')) if (line.trim() !== '') this.opts.log(line.startsWith('[node') ? line : `[node ${id}] ${line}`);
    });
    child.on('error', (err) => {
      this.opts.log(`[node ${id}] could not start: ${err.message}`);
    });
    child.on('exit', (code, signal) => this.onExit(entry, child, code, signal));
    this.emitServer({ type: 'nodeProcess', t: this.clock.now(), node: id, pid: entry.pid, state: 'spawned', code: null, signal: null });
  }

  private onExit(entry: NodeEntry, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (entry.proc !== child) return;
    entry.proc = null;
    entry.pid = null;
    const conn = entry.conn;
    entry.conn = null;
    entry.address = null;
    conn?.disconnect(true);
    this.sendPeers();
    this.emitServer({ type: 'nodeProcess', t: this.clock.now(), node: entry.id, pid: child.pid ?? null, state: 'exited', code, signal });
    this.onNodeGone(entry, entry.killing ? 'killed' : 'exit');
  }

  /** The node's process (or connection) is gone: tell the coordinator, and restart if asked to. */
  private onNodeGone(entry: NodeEntry, reason: 'exit' | 'killed'): void {
    entry.killing = false;
    if (this.shuttingDown) return;
    this.coordinator.nodeFailed(entry.id, reason);
    if (entry.removed) {
      this.finishRemove(entry);
      return;
    }
    if (entry.origin !== 'local') return;
    if (entry.respawn) {
      this.spawnNode(entry.id);
    } else if (this.config.autoRestart) {
      if (entry.restartTimer !== null) clearTimeout(entry.restartTimer);
      entry.restartTimer = setTimeout(() => {
        entry.restartTimer = null;
        if (entry.proc === null && entry.conn === null) this.spawnNode(entry.id);
      }, this.config.autoRestartDelayMs);
    }
  }

  /** Kills the node's process (SIGKILL) or, for a remote node, cuts its connection (its process then exits). */
  private terminate(entry: NodeEntry): void {
    if (entry.proc !== null) {
      entry.killing = true;
      entry.proc.kill('SIGKILL');
    } else if (entry.conn !== null) {
      entry.killing = true;
      entry.conn.disconnect(true);
    }
  }

  private checkHeartbeats(): void {
    const now = wallNow();
    const interval = Math.max(20, Math.floor(this.config.heartbeatTimeoutMs / 4));
    const late = now - this.lastMonitorAt > interval + this.config.heartbeatTimeoutMs / 2;
    this.lastMonitorAt = now;
    // After a stall of the server itself, frames are still queued unread: judge no one this round.
    if (late) {
      for (const e of this.nodes.values()) e.lastHeard = Math.max(e.lastHeard, now - interval);
      return;
    }
    for (const e of this.nodes.values()) {
      if (now - e.lastHeard <= this.config.heartbeatTimeoutMs) continue;
      if (this.coordinator.members.get(e.id) === 'up' || (e.conn !== null && e.proc !== null)) {
        e.lastHeard = now; // once
        if (this.coordinator.members.get(e.id) === 'up') this.coordinator.nodeFailed(e.id, 'heartbeat');
        else this.terminate(e);
      }
    }
  }

  // ------------------------------------------------------------------ commands

  private entryOrThrow(id: unknown): NodeEntry {
    const e = typeof id === 'string' ? this.nodes.get(id) : undefined;
    if (e === undefined || e.removed) throw new DseError('NotFound', `no node ${String(id)}`);
    return e;
  }

  kill(id: NodeId): void {
    const e = this.entryOrThrow(id);
    if (e.proc === null && e.conn === null) throw new DseError('Conflict', `node ${id} is down already`);
    this.terminate(e);
  }

  restart(id: NodeId): void {
    const e = this.entryOrThrow(id);
    if (e.origin === 'remote') throw new DseError('Conflict', `node ${id} joined from another host: restart it there`);
    if (e.proc !== null) {
      // A crash and a restart: the new process starts with empty memory and recovers from storage.
      e.respawn = true;
      this.terminate(e);
      return;
    }
    if (e.restartTimer !== null) {
      clearTimeout(e.restartTimer);
      e.restartTimer = null;
    }
    this.spawnNode(id);
  }

  addNode(id?: NodeId): NodeId {
    const live = [...this.nodes.values()].filter((e) => !e.removed).length;
    if (live >= this.opts.limits.nodesMax) throw new DseError('LimitExceeded', `the cluster has ${live} nodes, the most allowed (${this.opts.limits.nodesMax})`);
    let nid = id;
    if (nid === undefined) {
      for (let k = 1; ; k++) {
        if (!this.nodes.has(`n${k}`)) {
          nid = `n${k}`;
          break;
        }
      }
    } else if (this.nodes.has(nid)) {
      throw new DseError('Conflict', `node ${nid} exists already${this.nodes.get(nid)!.removed ? ' (being removed)' : ''}`);
    }
    this.nodes.set(nid, this.newEntry(nid, 'local'));
    this.coordinator.addNode(nid);
    this.emitServer({ type: 'nodeAdded', t: this.clock.now(), node: nid });
    this.spawnNode(nid);
    return nid;
  }

  removeNode(id: NodeId): void {
    const e = this.entryOrThrow(id);
    const live = [...this.nodes.values()].filter((x) => !x.removed).length;
    if (live <= 1) throw new DseError('Conflict', 'the last node cannot be removed');
    e.removed = true;
    if (e.restartTimer !== null) clearTimeout(e.restartTimer);
    if (e.proc !== null || e.conn !== null) this.terminate(e);
    else this.finishRemove(e);
  }

  private finishRemove(e: NodeEntry): void {
    if (this.nodes.get(e.id) !== e) return;
    this.nodes.delete(e.id);
    this.coordinator.removeNode(e.id);
    this.sendPeers();
    this.emitServer({ type: 'nodeRemoved', t: this.clock.now(), node: e.id });
  }

  /** Applies a validated patch. A new mode or cut restarts every node in it (a new world-line from the cut). */
  async configure(patch: ConfigPatch): Promise<ClusterConfig> {
    const run = this.reconfiguring.then(() => this.applyConfig(patch));
    this.reconfiguring = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async applyConfig(patch: ConfigPatch): Promise<ClusterConfig> {
    const before = this.config;
    this.config = { ...before, ...patch };
    const push: NodeConfigPush = {};
    if (this.config.checkpointIntervalMs !== before.checkpointIntervalMs) push.checkpointIntervalMs = this.config.checkpointIntervalMs;
    if (this.config.heartbeatIntervalMs !== before.heartbeatIntervalMs) push.heartbeatIntervalMs = this.config.heartbeatIntervalMs;
    for (const k of ['networkDelayMs', 'networkJitterMs', 'messageLoss', 'observation', 'held'] as const) {
      if (this.config[k] !== before[k]) (push as Record<string, unknown>)[k] = this.config[k];
    }
    if (this.config.heartbeatTimeoutMs !== before.heartbeatTimeoutMs && this.monitor !== null) {
      clearInterval(this.monitor);
      this.monitor = setInterval(() => this.checkHeartbeats(), Math.max(20, Math.floor(this.config.heartbeatTimeoutMs / 4)));
    }
    if (this.config.recovery !== before.recovery) this.coordinator.setRecovery(this.config.recovery);
    if (this.config.mode !== before.mode || this.config.cut !== before.cut) {
      await this.resetAll(before.mode);
      if (this.config.mode !== before.mode) this.emitServer({ type: 'modeChanged', t: this.clock.now(), mode: this.config.mode });
    } else if (Object.keys(push).length > 0) {
      for (const e of this.nodes.values()) e.conn?.emit('cfg', push);
    }
    this.emitServer({ type: 'configChanged', t: this.clock.now(), config: { ...this.config } });
    return { ...this.config };
  }

  /** A new coordinator in the new mode/cut, started from storage; every node starts again with empty memory. */
  private async resetAll(previousMode: ClusterConfig['mode']): Promise<void> {
    const old = this.coordinator;
    old.stop();
    // The coordinator saves its cut only now and then; what it announced as committed must survive
    // the switch, so its current cut is saved first (the new coordinator starts from the saved record).
    // In `none` mode nothing is in storage, so its cut is not saved.
    if (previousMode !== 'none') {
      const storage = this.opts.storage.storage;
      const rec = await storage.loadCoordinator();
      if (rec !== null && rec.worldLine === old.worldLine) {
        const cut = { ...rec.cut };
        for (const [n, v] of Object.entries(old.cut)) if ((cut[n] ?? 0) < v) cut[n] = v;
        const kept = { ...(rec.kept ?? cut) };
        for (const [n, v] of Object.entries(cut)) if ((kept[n] ?? 0) < v) kept[n] = v;
        await storage.saveCoordinator({ ...rec, cut, kept, nodes: [...old.members.keys()] });
      }
    }
    const next = this.makeCoordinator();
    this.coordinator = next;
    const ids = [...this.nodes.keys()].filter((id) => !this.nodes.get(id)!.removed);
    await next.start(ids, { reason: 'modeChange' });
    for (const id of [...next.members.keys()]) if (!this.nodes.has(id)) next.removeNode(id);
    next.addClient(SERVER_ENDPOINT, { announce: true });
    const cfg = this.runConfig();
    for (const e of this.nodes.values()) {
      if (e.conn === null) continue;
      e.restoredWorldLine = 0;
      e.lastHeard = wallNow();
      e.conn.emit('reset', cfg);
    }
  }

  private emitServer(e: InspectionEvent): void {
    this.opts.emit(e);
  }

  // ------------------------------------------------------------------ views

  nodeIds(): NodeId[] {
    return [...this.nodes.values()].filter((e) => !e.removed).map((e) => e.id).sort();
  }

  hasNode(id: string): boolean {
    const e = this.nodes.get(id);
    return e !== undefined && !e.removed;
  }

  /** The key's node: rendezvous hashing over the cluster's nodes (adding a node moves few keys). */
  ownerOf(key: string): NodeId {
    let best: NodeId | null = null;
    let bestH = -1;
    for (const id of this.nodeIds()) {
      const h = hash32(`${key}\u0000${id}`);
      if (h > bestH) {
        best = id;
        bestH = h;
      }
    }
    if (best === null) throw new DseError('Conflict', 'the cluster has no nodes');
    return best;
  }

  status(id: NodeId): LiveNodeStatus {
    const e = this.nodes.get(id);
    if (e === undefined || e.removed || (e.proc === null && e.conn === null)) return 'down';
    if (e.conn === null || this.coordinator.members.get(id) !== 'up' || e.restoredWorldLine !== this.coordinator.worldLine) return 'recovering';
    return 'up';
  }

  /** What a node that `status` calls `recovering` waits for (see NodeInfo.waitingFor). */
  private waitingFor(id: NodeId): NonNullable<NodeInfo['waitingFor']> {
    const e = this.nodes.get(id);
    if (e === undefined || e.conn === null) return 'connecting';
    if (this.coordinator.members.get(id) !== 'up') return 'coordinator';
    return 'restoring';
  }

  info(lastEvent: number): ClusterInfo {
    const cut = { ...this.coordinator.cut };
    const nodes: NodeInfo[] = this.nodeIds().map((id) => {
      const e = this.nodes.get(id)!;
      const status = this.status(id);
      return {
        id,
        status,
        pid: e.proc !== null || e.conn !== null ? e.pid : null,
        version: e.version,
        persistedVersion: e.persistedVersion,
        committedVersion: cut[id] ?? 0,
        worldLine: e.worldLine,
        origin: e.origin,
        starts: e.starts,
        ...(status === 'recovering' ? { waitingFor: this.waitingFor(id) } : {}),
      };
    });
    return {
      worldLine: this.coordinator.worldLine,
      mode: this.config.mode,
      cutKind: this.config.cut,
      cut,
      nodes,
      storage: this.opts.storage.describe,
      lastEvent,
      epochMs: this.clock.epochMs,
    };
  }

  /** Reads `key` from `node`'s committed checkpoint (the cut version), for committed-only gets. */
  async readCommitted(node: NodeId, key: string): Promise<{ value: Json; version: number; worldLine: WorldLine }> {
    for (let attempt = 0; ; attempt++) {
      const worldLine = this.coordinator.worldLine;
      const v = this.coordinator.cut[node] ?? 0;
      if (v === 0 || this.config.mode === 'none') return { value: null, version: v, worldLine };
      try {
        const cp = await this.opts.storage.storage.loadCheckpoint(node, v);
        if (cp !== null) return { value: cp.state.get(`a:${key}`) ?? null, version: v, worldLine };
      } catch (e) {
        if (attempt >= 3) throw e;
      }
      // Pruned meanwhile by a newer cut: read again at the current one.
      if (attempt >= 3) throw new DseError('StorageUnavailable', `the committed checkpoint ${node}@${v} could not be read`);
    }
  }
}

/** Event types a node process emits, each about the node itself (the server emits every other type). */
const NODE_EVENT_TYPES: ReadonlySet<string> = new Set([
  'versionOpened',
  'messageSent',
  'messageDelivered',
  'messageRejected',
  'dependencyRecorded',
  'checkpointStarted',
  'checkpointPersisted',
  'checkpointFailed',
  'rollback',
  'stateChanged',
  'messageLost',
]);

/**
 * Security F6: whether an inspection event a node process sent is one a node emits, about itself
 * (its own versions, state and checkpoints; messages it sent or received). Anything else would let a
 * process forge another node's story for the browsers.
 */
export function eventOfNode(id: NodeId, e: object): boolean {
  const ev = e as { type: string; node?: unknown; from?: unknown; to?: unknown };
  if (!NODE_EVENT_TYPES.has(ev.type)) return false;
  if (ev.type === 'messageSent' || ev.type === 'messageLost') return ev.from === id;
  if (ev.type === 'messageDelivered' || ev.type === 'messageRejected') return ev.to === id;
  return ev.node === id;
}

/**
 * Security F6: whether a message a node process sent is sent in its own name. Messages between nodes
 * and to sessions carry their sender in `h.src`; reports to the coordinator name the node; the
 * coordinator's own messages (cuts, world-lines, recover orders) never come from a node.
 */
export function messageOfNode(id: NodeId, m: WireMessage): boolean {
  if (typeof m !== 'object' || m === null) return false;
  if ('h' in m) return typeof m.h === 'object' && m.h !== null && m.h.src === id;
  switch (m.kind) {
    case 'persisted':
    case 'prepared':
    case 'hello':
    case 'heartbeat':
      return m.node === id;
    case 'sync':
      return m.from === id && m.role === 'node';
    case 'flush':
      // Commit on demand: a node asks another to persist versions its own depend on. It names nobody.
      return true;
    default:
      return false;
  }
}
