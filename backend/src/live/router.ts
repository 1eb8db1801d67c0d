import type { WireMessage } from '../core/messages';
import { COORDINATOR } from '../core/messages';
import { messageId } from '../core/node';
import type { SessionHost } from '../core/session';
import type { ClusterContext } from './cluster-context';
import { wallNow } from './clock';
import type { DownFrame, NodeConnection, StorageReply } from './wire';
import { SERVER_ENDPOINT } from './wire';

/** At most one cut announcement per destination in this long (see `Router.coalesceCut`). */
export const CUT_COALESCE_MS = 5;

/**
 * Who hands a message to the router: `sessions` (the server's session host, the only sender the
 * network model applies to), `control` (the coordinator, and the server's reports in a node's name),
 * or `node` (a node process, through its connection).
 */
export type Sender = 'sessions' | 'control' | 'node';

/**
 * The server's messages on the control plane: the coordinator and the session host run in this process
 * and hear theirs a turn later; a node hears its own in one frame per connection and turn, which also
 * carries the answers to its storage calls.
 */
export class Router {
  private localQueue: (() => void)[] = [];
  private localScheduled = false;
  /** What goes to each node connection at the end of this turn, in one frame. */
  private readonly downBuffers = new Map<NodeConnection, { m: WireMessage[]; r: [number, StorageReply][] }>();
  /** Cut announcements waiting to go, the newest per destination (see `coalesceCut`). */
  private readonly pendingCuts = new Map<string, WireMessage>();
  private cutTimer: NodeJS.Timeout | null = null;
  private cutsScheduled = false;
  private lastCutFlush = -Infinity;

  constructor(
    private readonly cx: ClusterContext,
    private readonly host: () => SessionHost,
  ) {}

  stop(): void {
    if (this.cutTimer !== null) clearTimeout(this.cutTimer);
  }

  /**
   * The server's own messages (coordinator, session host) and what nodes send it go through here.
   * Messages between nodes do not: they travel over the nodes' links. The session host's messages get
   * the configured delay, jitter and loss (nodes apply it to theirs); control messages never do.
   */
  route(to: string, msg: WireMessage, from: Sender): void {
    if (msg.kind === 'cut' && to !== SERVER_ENDPOINT) {
      // To node connections, coalesced; the session host is in this process and hears it at once
      // (a client awaiting a commit waits for exactly this announcement).
      this.coalesceCut(to, msg);
      return;
    }
    if (from === 'node' && to !== COORDINATOR && to !== SERVER_ENDPOINT) {
      // A node sends its peers its messages itself; the server relays nothing between nodes.
      if ('h' in msg) this.lost(to, msg, 'down');
      return;
    }
    if (from === 'sessions' && 'h' in msg) {
      const c = this.cx.config();
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

  /** Queues a storage call's answer for the connection that asked (it goes with this turn's frame). */
  answer(conn: NodeConnection, callId: number, reply: StorageReply): void {
    this.downBuffer(conn).r.push([callId, reply]);
  }

  /** A node connection closed: what was waiting for it goes nowhere. */
  forget(conn: NodeConnection): void {
    this.downBuffers.delete(conn);
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
      this.runLocal(() => this.cx.coordinator().receive(msg));
      return;
    }
    if (to === SERVER_ENDPOINT) {
      this.runLocal(() => this.host().receive(msg));
      return;
    }
    const conn = this.cx.nodes.get(to)?.conn;
    if (conn === null || conn === undefined) {
      this.lost(to, msg, 'down'); // down: the network loses it
      return;
    }
    this.downBuffer(conn).m.push(msg);
  }

  /** Says in the event stream that the relay lost a message between nodes and sessions (not the coordinator's). */
  private lost(to: string, msg: WireMessage, reason: 'down' | 'loss'): void {
    if (!('h' in msg)) return;
    this.cx.opts.emit({ type: 'messageLost', t: this.cx.clock.now(), id: messageId(msg), kind: msg.kind, from: msg.h.src, to, reason });
  }

  /** The frame going to `conn` at the end of this turn (messages and storage answers together). */
  private downBuffer(conn: NodeConnection): { m: WireMessage[]; r: [number, StorageReply][] } {
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
          this.cx.opts.log(`internal error in the server's runtime: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        }
      }
    });
  }
}
