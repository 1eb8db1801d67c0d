import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import type { NodeId } from '@dse/shared';
import type { WireMessage } from '../core/messages';

/**
 * The data plane between node processes: each node listens on a TCP port of its own and sends app
 * messages, acks, sthread requests and replies, and flushes straight to the node they are for, over one
 * connection per peer, without passing through the server. (The server stays the control plane:
 * membership and addresses, the coordinator, the API's sessions, the observer.)
 *
 * Frames: a 4-byte big-endian length, then one encoded batch (`Codec`): everything a node has for a
 * peer in one event-loop turn travels in one frame. A connection opens with a hello frame naming the
 * sender and, when the cluster has a token, proving it knows it; a receiver accepts messages only in
 * the name of the peer that said hello (`h.src`).
 *
 * Links are best effort, like the network the protocol assumes: a frame may be lost when a connection
 * breaks (the sender's outbox resends), arrive twice or late (deduplication and the world-line rule make
 * that harmless). A broken link reconnects on the next send, with capped exponential backoff.
 */

/** How a batch of messages becomes bytes and back. */
export interface Codec {
  readonly name: string;
  encode(v: unknown): Buffer;
  decode(b: Buffer): unknown;
}

export const JSON_CODEC: Codec = {
  name: 'json',
  encode: (v) => Buffer.from(JSON.stringify(v)),
  decode: (b) => JSON.parse(b.toString('utf8')) as unknown,
};

export interface PeerAddress {
  host: string;
  port: number;
}

interface Hello {
  hello: { from: NodeId; proof: string | null };
}

/** A frame larger than this is refused (and the connection closed): a full checkpoint never travels here. */
const FRAME_BYTES_MAX = 16 * 1024 * 1024;
/** Messages waiting for a connection to a peer (beyond, the oldest are dropped: the outbox resends). */
const QUEUE_MAX = 10_000;
/**
 * Bytes written to a peer's socket that it has not taken yet; beyond, new batches are dropped (a
 * peer that reads nothing must not grow this process's memory without bound).
 */
export const UNSENT_BYTES_MAX = 8 * 1024 * 1024;
/** TCP keepalive on links: a peer gone without a reset is noticed by the kernel. */
const KEEPALIVE_MS = 5000;
const BACKOFF_MIN_MS = 20;
const BACKOFF_MAX_MS = 2000;

/** What proves knowledge of the token without sending it: a hash of it and the sender's id. */
function proofOf(token: string, from: NodeId): string {
  return createHash('sha256').update(`dse-link\u0000${token}\u0000${from}`).digest('hex');
}

function sameProof(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Splits a byte stream into frames. */
class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (payload: Buffer) => void) {}

  /** Returns false when a frame is too large (the connection must close). */
  push(chunk: Buffer): boolean {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n > FRAME_BYTES_MAX) return false;
      if (this.buf.length < 4 + n) break;
      const payload = this.buf.subarray(4, 4 + n);
      this.buf = this.buf.subarray(4 + n);
      this.onFrame(payload);
    }
    return true;
  }
}

function frame(codec: Codec, v: unknown): Buffer {
  const body = codec.encode(v);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** An outgoing connection to one peer, with what waits for it. */
interface OutLink {
  socket: Socket | null;
  connecting: boolean;
  address: PeerAddress | null;
  queue: WireMessage[];
  /** Scheduled for the end of this turn. */
  flushing: boolean;
  backoffMs: number;
  retryTimer: NodeJS.Timeout | null;
}

export interface LinkStats {
  framesSent: number;
  messagesSent: number;
  framesReceived: number;
  messagesReceived: number;
  /** Messages dropped: no address for the peer, or a queue over its bound. */
  dropped: number;
  refusedConnections: number;
  connects: number;
}

export interface NodeLinksOptions {
  id: NodeId;
  /** The cluster's token (`DSE_TOKEN`), or null: links then accept any node that says hello. */
  token: string | null;
  codec?: Codec;
  /** A message arrived from peer `from` (already checked to be in its name). */
  onMessage: (from: NodeId, m: WireMessage) => void;
  /** Something worth a line in the node's log (refused connections, bad frames). */
  log: (line: string) => void;
}

/**
 * One node's links: a listening socket for its peers, and one outgoing connection per peer it sends to.
 * Each direction of a pair has its own connection (a node sends on the one it opened, receives on the
 * ones its peers opened), so that neither side ever waits for the other to connect.
 */
export class NodeLinks {
  private readonly codec: Codec;
  private server: Server | null = null;
  private readonly peers = new Map<NodeId, PeerAddress>();
  private readonly out = new Map<NodeId, OutLink>();
  private readonly inbound = new Set<Socket>();
  private closed = false;
  readonly stats: LinkStats = { framesSent: 0, messagesSent: 0, framesReceived: 0, messagesReceived: 0, dropped: 0, refusedConnections: 0, connects: 0 };

  constructor(private readonly opts: NodeLinksOptions) {
    this.codec = opts.codec ?? JSON_CODEC;
  }

  /** Starts listening on `host` (an address other hosts can reach this node at); resolves with the address. */
  listen(host: string): Promise<PeerAddress> {
    return new Promise((resolve, reject) => {
      const server = createServer((s) => this.accept(s));
      server.on('error', reject);
      server.listen(0, host, () => {
        const a = server.address() as AddressInfo;
        resolve({ host, port: a.port });
      });
      this.server = server;
    });
  }

  /** The peers' addresses (from the server, on every membership change). A changed address reconnects. */
  setPeers(table: Readonly<Record<NodeId, PeerAddress>>): void {
    for (const [id, a] of Object.entries(table)) {
      if (id === this.opts.id) continue;
      const old = this.peers.get(id);
      this.peers.set(id, a);
      if (old !== undefined && (old.host !== a.host || old.port !== a.port)) this.reset(id);
    }
    for (const id of [...this.peers.keys()]) {
      if (!(id in table)) {
        this.peers.delete(id);
        this.reset(id);
      }
    }
  }

  /** Whether this node has an address for `id` (else its messages go another way, or nowhere). */
  knows(id: NodeId): boolean {
    return this.peers.has(id);
  }

  send(to: NodeId, m: WireMessage): void {
    if (this.closed) return;
    let link = this.out.get(to);
    if (link === undefined) {
      link = { socket: null, connecting: false, address: null, queue: [], flushing: false, backoffMs: BACKOFF_MIN_MS, retryTimer: null };
      this.out.set(to, link);
    }
    if (link.queue.length >= QUEUE_MAX) {
      link.queue.shift();
      this.stats.dropped++;
    }
    link.queue.push(m);
    if (link.socket !== null && !link.connecting) this.scheduleFlush(to, link);
    else this.open(to, link);
  }

  close(): void {
    this.closed = true;
    this.server?.close();
    for (const [id] of this.out) this.reset(id);
    for (const s of this.inbound) s.destroy();
  }

  // ------------------------------------------------------------------ outgoing

  private scheduleFlush(to: NodeId, link: OutLink): void {
    if (link.flushing) return;
    link.flushing = true;
    queueMicrotask(() => {
      link.flushing = false;
      const s = link.socket;
      if (s === null || link.connecting || link.queue.length === 0) return;
      const batch = link.queue;
      link.queue = [];
      if (s.writableLength > UNSENT_BYTES_MAX) {
        // The peer reads nothing (stopped, hung, cut off without a reset): what it has not taken is
        // enough. The network loses these; senders resend what matters, once the peer reads again.
        this.stats.dropped += batch.length;
        return;
      }
      this.writeBatch(to, s, batch);
    });
  }

  /**
   * Writes `batch` in as few frames as the receiver accepts: a batch whose encoding is over the frame
   * limit is split in halves (else the receiver would refuse the connection and every message in it, and
   * again at each resend). A single message over the limit can never travel: dropped, and said.
   */
  private writeBatch(to: NodeId, s: Socket, batch: WireMessage[]): void {
    const body = this.codec.encode(batch);
    if (body.length > FRAME_BYTES_MAX) {
      if (batch.length === 1) {
        this.stats.dropped++;
        this.opts.log(`link: a message to ${to} of ${body.length} bytes is over the 16 MiB a frame may have: dropped`);
        return;
      }
      const half = Math.ceil(batch.length / 2);
      this.writeBatch(to, s, batch.slice(0, half));
      this.writeBatch(to, s, batch.slice(half));
      return;
    }
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(body.length, 0);
    s.write(Buffer.concat([head, body]));
    this.stats.framesSent++;
    this.stats.messagesSent += batch.length;
  }

  private open(to: NodeId, link: OutLink): void {
    if (link.connecting || link.socket !== null || link.retryTimer !== null) return;
    const address = this.peers.get(to);
    if (address === undefined) {
      // Nobody told us where it is (not joined, or removed): the network loses it.
      this.stats.dropped += link.queue.length;
      link.queue = [];
      return;
    }
    link.connecting = true;
    link.address = address;
    const s = connect({ host: address.host, port: address.port });
    s.setNoDelay(true);
    s.setKeepAlive(true, KEEPALIVE_MS);
    const reader = new FrameReader(() => undefined); // peers never answer on this connection
    s.on('connect', () => {
      if (link.socket !== s) return;
      link.connecting = false;
      link.backoffMs = BACKOFF_MIN_MS;
      this.stats.connects++;
      const hello: Hello = { hello: { from: this.opts.id, proof: this.opts.token === null ? null : proofOf(this.opts.token, this.opts.id) } };
      s.write(frame(this.codec, hello));
      this.scheduleFlush(to, link);
    });
    s.on('data', (c: Buffer) => void reader.push(c));
    const broken = (): void => {
      if (link.socket !== s) return;
      link.socket = null;
      link.connecting = false;
      s.destroy();
      // What was queued is lost (the outbox resends); try again on the next send, not before the backoff.
      this.stats.dropped += link.queue.length;
      link.queue = [];
      if (this.closed) return;
      link.retryTimer = setTimeout(
        () => {
          link.retryTimer = null;
          if (link.queue.length > 0) this.open(to, link);
        },
        link.backoffMs * (0.5 + Math.random()),
      );
      link.backoffMs = Math.min(BACKOFF_MAX_MS, link.backoffMs * 2);
    };
    s.on('error', broken);
    s.on('close', broken);
    link.socket = s;
  }

  /** Drops the connection to `id` (its address changed, or it left); the next send reconnects. */
  private reset(id: NodeId): void {
    const link = this.out.get(id);
    if (link === undefined) return;
    if (link.retryTimer !== null) clearTimeout(link.retryTimer);
    link.retryTimer = null;
    const s = link.socket;
    link.socket = null;
    link.connecting = false;
    link.backoffMs = BACKOFF_MIN_MS;
    s?.destroy();
  }

  // ------------------------------------------------------------------ incoming

  private accept(s: Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    s.setNoDelay(true);
    this.inbound.add(s);
    let from: NodeId | null = null;
    const reader = new FrameReader((payload) => {
      // Refused: the frames that came after the refused one, in the same chunk, are not read.
      if (s.destroyed) return;
      let v: unknown;
      try {
        v = this.codec.decode(payload);
      } catch {
        this.refuse(s, 'a frame that does not decode');
        return;
      }
      if (from === null) {
        const h = (v as Partial<Hello> | null)?.hello;
        if (typeof h !== 'object' || h === null || typeof h.from !== 'string') {
          this.refuse(s, 'a connection without a hello');
          return;
        }
        if (this.opts.token !== null && (typeof h.proof !== 'string' || !sameProof(h.proof, proofOf(this.opts.token, h.from)))) {
          this.refuse(s, `a connection in the name of ${h.from.slice(0, 40)} without the cluster's token`);
          return;
        }
        from = h.from;
        return;
      }
      if (!Array.isArray(v)) {
        this.refuse(s, `a frame from ${from} that is not a batch`);
        return;
      }
      this.stats.framesReceived++;
      for (const m of v as unknown[]) {
        if (!isFromPeer(from, m)) {
          this.opts.log(`link: ${from} sent a message not in its own name: dropped`);
          continue;
        }
        this.stats.messagesReceived++;
        this.opts.onMessage(from, m);
      }
    });
    s.on('data', (c: Buffer) => {
      if (!reader.push(c)) this.refuse(s, 'a frame over 16 MiB');
    });
    s.on('error', () => s.destroy());
    s.on('close', () => this.inbound.delete(s));
  }

  private refuse(s: Socket, why: string): void {
    this.stats.refusedConnections++;
    this.opts.log(`link: refused ${why}`);
    s.destroy();
    this.inbound.delete(s);
  }
}

/** Messages a peer may send over a link: headered ones in its own name, and flushes (they name nobody). */
function isFromPeer(from: NodeId, m: unknown): m is WireMessage {
  if (typeof m !== 'object' || m === null) return false;
  const w = m as { kind?: unknown; h?: { src?: unknown } };
  if (w.kind === 'flush') return true;
  return typeof w.h === 'object' && w.h !== null && w.h.src === from;
}
