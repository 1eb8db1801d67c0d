import type { InspectionEvent, NodeId } from '@dse/shared';
import { DseError, errorBody, NODE_EVENT_TYPES } from '@dse/shared';
import type { WireMessage } from '../core/messages';
import { COORDINATOR } from '../core/messages';
import type { CheckpointRecord } from '../core/ports';
import { CheckpointGroupWriter } from '../storage/group-commit';
import type { ClusterContext, NodeEntry } from './cluster-context';
import { newEntry } from './cluster-context';
import { wallNow } from './clock';
import type { Router } from './router';
import type { LoadedCheckpointWire } from './rpc-storage';
import type { JoinReply, JoinRequest, LeaveReply, NodeConfigPush, NodeConnection, NodeNamespace, NodeRunConfig, PeerTable, StorageReply } from './wire';
import { parseJoin } from './wire';

/**
 * The node processes' end of the server (namespace `/node`): their joins, their `up` frames (events,
 * messages to the coordinator and the server's sessions, storage calls), the storage the server serves
 * them, and what it tells them (run config, peer tables, config pushes, resets). Whatever a node sends
 * in another's name is dropped here (security F6).
 */
export class NodeGateway {
  private forgedCount = 0;
  private readonly forgedWarned = new WeakSet<NodeConnection>();
  /** Checkpoint writes of every node process, group-committed. */
  private readonly checkpointWriter: CheckpointGroupWriter;
  private served = 0;

  constructor(
    private readonly cx: ClusterContext,
    private readonly router: Router,
    /** A remote node's connection is gone (a spawned process reports its failure by exiting instead). */
    private readonly onRemoteGone: (entry: NodeEntry, reason: 'exit' | 'killed') => void,
  ) {
    this.checkpointWriter = new CheckpointGroupWriter(cx.opts.storage.storage);
  }

  runConfig(): NodeRunConfig {
    const config = this.cx.config();
    const storage = this.cx.opts.storage;
    return {
      app: this.cx.opts.app,
      mode: config.mode,
      cutKind: config.cut,
      checkpointIntervalMs: config.checkpointIntervalMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      epochMs: this.cx.clock.epochMs,
      retransmitMs: 200,
      eventFlushMs: 20,
      storageTimeoutMs: 5000,
      // Nodes that write their checkpoints themselves report them too.
      serverReportsPersisted: config.mode !== 'none' && storage.schema === undefined,
      networkDelayMs: config.networkDelayMs,
      networkJitterMs: config.networkJitterMs,
      messageLoss: config.messageLoss,
      observation: config.observation,
      held: config.held,
      storage: storage.kind === 'postgres' && storage.schema !== undefined ? { kind: 'postgres', schema: storage.schema } : { kind: 'server' },
      founders: [...this.cx.founders()],
    };
  }

  /** Every member's data-plane address, to every node (on each join, exit and removal). */
  sendPeers(): void {
    const table: PeerTable = {};
    for (const e of this.cx.nodes.values()) if (!e.removed) table[e.id] = e.conn !== null ? e.address : null;
    for (const e of this.cx.nodes.values()) e.conn?.emit('peers', table);
  }

  /** Settings a running node changes in place. */
  pushConfig(push: NodeConfigPush): void {
    for (const e of this.cx.nodes.values()) e.conn?.emit('cfg', push);
  }

  /**
   * Asks `id`, drained, to leave (`DseNode.leave`): its last version and world-line, or null when it is
   * not connected, not up, or does not answer in time (a node process is a trust boundary: the answer is checked).
   */
  async leave(id: NodeId, timeoutMs = 5000): Promise<LeaveReply> {
    const conn = this.cx.nodes.get(id)?.conn ?? null;
    if (conn === null) return null;
    const r = await conn
      .timeout(timeoutMs)
      .emitWithAck('leave')
      .catch(() => null);
    const ok = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    return typeof r === 'object' && r !== null && ok((r as { version?: unknown }).version) && ok((r as { worldLine?: unknown }).worldLine) ? r : null;
  }

  /** Every connected node starts again with empty memory in the current setting. */
  resetNodes(): void {
    const cfg = this.runConfig();
    for (const e of this.cx.nodes.values()) {
      if (e.conn === null) continue;
      e.restoredWorldLine = 0;
      e.lastHeard = wallNow();
      e.conn.emit('reset', cfg);
    }
  }

  /** Events and messages dropped because a node sent them in another's name. */
  get forgedDropped(): number {
    return this.forgedCount;
  }

  /** Storage calls this server served for node processes (none when they write to PostgreSQL themselves). */
  get storageCallsServed(): number {
    return this.served;
  }

  /** Serves the node processes' namespace: join, frames, storage calls, disconnects. */
  attach(nsp: NodeNamespace): void {
    nsp.on('connection', (socket) => {
      let joined: NodeEntry | null = null;
      socket.on('join', (raw, ack) => {
        if (typeof ack !== 'function') return;
        let reply: JoinReply;
        if (joined !== null) reply = { error: new DseError('Conflict', 'already joined').toBody() };
        else {
          try {
            const req = parseJoin(raw);
            reply = this.join(socket, req);
            if ('ok' in reply) joined = this.cx.nodes.get(req.id) ?? null;
          } catch (e) {
            reply = { error: errorBody(e) };
          }
        }
        (ack as (r: JoinReply) => void)(reply);
      });
      socket.on('up', (frame) => {
        if (joined === null || joined.conn !== socket) return; // a stale incarnation: not part of the cluster
        this.onFrame(joined, frame);
      });
      socket.on('disconnect', () => {
        this.router.forget(socket);
        if (joined === null || joined.conn !== socket) return;
        const entry = joined;
        entry.conn = null;
        entry.address = null;
        this.sendPeers();
        // A spawned process reports its failure by exiting; a remote one by losing its connection.
        if (entry.origin === 'remote') this.onRemoteGone(entry, entry.killing ? 'killed' : 'exit');
      });
    });
  }

  /** A join checked whole (`parseJoin`): a refused one adds no node and leaves an existing one's connection and count of starts as they were. */
  private join(socket: NodeConnection, r: JoinRequest): JoinReply {
    if (this.cx.shuttingDown()) return { error: new DseError('Conflict', 'the server is shutting down').toBody() };
    const nodes = this.cx.nodes;
    const incarnation = r.incarnation;
    let entry = nodes.get(r.id);
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
        if (nodes.size >= this.cx.opts.limits.nodesMax) {
          return { error: new DseError('LimitExceeded', `join: the cluster has ${nodes.size} nodes, the most allowed`).toBody() };
        }
        entry = newEntry(r.id, 'remote');
        nodes.set(r.id, entry);
        this.cx.coordinator().addNode(r.id);
        this.cx.opts.emit({ type: 'nodeAdded', t: this.cx.clock.now(), node: r.id });
        this.cx.remoteNodeAdded(r.id);
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
      this.cx.opts.emit({ type: 'nodeProcess', t: this.cx.clock.now(), node: r.id, pid: r.pid, state: 'joined', code: null, signal: null });
    }
    entry.conn = socket;
    entry.killing = false;
    entry.lastHeard = wallNow();
    entry.restoredWorldLine = 0;
    entry.address = { host: r.data.host, port: r.data.port };
    // The new address goes to everyone, this node included, once it has its reply.
    setImmediate(() => this.sendPeers());
    return { ok: true, config: this.runConfig() };
  }

  /**
   * One `up` frame (the hot path: every event and message of the node passes here). Decoded with cheap
   * structural checks, each part typed once it passed: what a node sends in another's name is dropped.
   */
  private onFrame(entry: NodeEntry, raw: unknown): void {
    entry.lastHeard = wallNow();
    if (typeof raw !== 'object' || raw === null) return;
    const frame = raw as { e?: unknown; m?: unknown; s?: unknown };
    if (Array.isArray(frame.e)) {
      for (const e of frame.e as unknown[]) {
        if (!isEventLike(e)) continue;
        if (!eventOfNode(entry.id, e)) {
          this.forged(entry, `an event ${JSON.stringify(e.type).slice(0, 40)} not about itself`);
          continue;
        }
        track(entry, e);
        this.cx.opts.emit(e);
      }
    }
    if (Array.isArray(frame.m)) {
      for (const item of frame.m as unknown[]) {
        if (!Array.isArray(item) || typeof item[0] !== 'string') continue;
        const m: unknown = item[1];
        if (!isMessageLike(m)) continue;
        if (!messageOfNode(entry.id, m)) {
          this.forged(entry, `a ${JSON.stringify(m.kind).slice(0, 40)} message not from itself`);
          continue;
        }
        this.router.route(item[0], m, 'node');
      }
    }
    if (Array.isArray(frame.s)) {
      const conn = entry.conn;
      for (const call of frame.s as unknown[]) {
        if (!Array.isArray(call) || typeof call[0] !== 'number' || conn === null) continue;
        const callId = call[0];
        const answer = (r: StorageReply): void => {
          // Answers go only to the connection that asked (a node that reconnected asks again).
          if (conn.connected) this.router.answer(conn, callId, r);
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
    this.cx.opts.log(`node ${entry.id} sent ${what}: dropped (and whatever else it sends in another's name)`);
  }

  private async storageCall(node: NodeId, op: unknown, args: unknown): Promise<unknown> {
    // `op` is a `StorageOp` (`wire.ts`) from a well-behaved node; anything else is refused below.
    this.served++;
    const storage = this.cx.opts.storage.storage;
    const a: unknown[] = Array.isArray(args) ? args : [];
    if (op === 'writeCheckpoints') {
      const records = a[0];
      if (!Array.isArray(records) || !records.every((r) => typeof r === 'object' && r !== null && (r as CheckpointRecord).node === node)) {
        throw new DseError('BadRequest', 'storage: a node writes only its own checkpoints');
      }
      await this.checkpointWriter.write(records as CheckpointRecord[]);
      this.cx.opts.onDurable?.(records as CheckpointRecord[]);
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
    const entry = this.cx.nodes.get(node);
    for (const r of records) {
      const e: InspectionEvent = { type: 'checkpointPersisted', t: this.cx.clock.now(), node, worldLine: r.worldLine, version: r.version, deps: r.deps };
      if (entry !== undefined) track(entry, e);
      this.cx.opts.emit(e);
      this.router.route(
        COORDINATOR,
        { kind: 'persisted', node, worldLine: r.worldLine, version: r.version, prevVersion: r.prevVersion, deps: r.deps },
        'control',
      );
    }
  }
}

/** Updates what the server knows of a node from the events it sent. */
function track(entry: NodeEntry, e: InspectionEvent): void {
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

/** An event as a node's frame carries it, decoded cheaply: an object with a `type` (`eventOfNode` checks which). */
function isEventLike(e: unknown): e is { type: string } {
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string';
}

/** A message as a node's frame carries it: an object with a `kind`; who sent it is checked by `messageOfNode`. */
function isMessageLike(m: unknown): m is WireMessage {
  return typeof m === 'object' && m !== null && typeof (m as { kind?: unknown }).kind === 'string';
}

/**
 * Security F6: whether an inspection event a node process sent is one a node emits, about itself
 * (its own versions, state and checkpoints; messages it sent or received). Anything else would let a
 * process forge another node's story for the browsers. The rest of the event's fields are the node's
 * word: the hot path does not walk them (a trace import checks every field).
 */
export function eventOfNode(id: NodeId, e: object): e is InspectionEvent {
  const ev = e as { type?: unknown; node?: unknown; from?: unknown; to?: unknown };
  if (typeof ev.type !== 'string' || !NODE_EVENT_TYPES.has(ev.type)) return false;
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
