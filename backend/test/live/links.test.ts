import { createHash } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import type { InspectionEvent, Json, NodeId } from '@dse/shared';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/core/app';
import type { WireMessage } from '../../src/core/messages';
import { DseNode } from '../../src/core/node';
import type { PeerAddress } from '../../src/live/links';
import { NodeLinks, UNSENT_BYTES_MAX } from '../../src/live/links';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';

/**
 * The data plane between node processes (`links.ts`), over real TCP sockets on 127.0.0.1: delivery and
 * order, frames split and joined by TCP, reconnects, bounds, and what a peer without the token or with
 * bad frames gets (nothing delivered, its connection closed, the process unharmed).
 */

const HOST = '127.0.0.1';

type Got = { from: NodeId; m: WireMessage };
type AppMsg = Extract<WireMessage, { kind: 'app' }>;

/** Everything a test opens, closed after it. */
const open: { links: NodeLinks[]; sockets: Socket[]; servers: Server[] } = { links: [], sockets: [], servers: [] };

afterEach(() => {
  for (const l of open.links) l.close();
  for (const s of open.sockets) s.destroy();
  for (const s of open.servers) s.close();
  open.links = [];
  open.sockets = [];
  open.servers = [];
});

function makeLinks(id: NodeId, token: string | null = null, onMessage?: (from: NodeId, m: WireMessage) => void) {
  const got: Got[] = [];
  const logs: string[] = [];
  const links = new NodeLinks({
    id,
    token,
    onMessage: onMessage ?? ((from, m) => got.push({ from, m })),
    log: (l) => logs.push(l),
  });
  open.links.push(links);
  return { links, got, logs };
}

async function listening(id: NodeId, token: string | null = null, onMessage?: (from: NodeId, m: WireMessage) => void) {
  const l = makeLinks(id, token, onMessage);
  const address = await l.links.listen(HOST);
  return { ...l, address };
}

function app(src: NodeId, seq: number, payload: Json = seq, worldLine = 1): AppMsg {
  return { kind: 'app', h: { src, srcVersion: 1, worldLine, seq }, payload };
}

const seqs = (got: readonly Got[]): number[] => got.map((g) => (g.m as AppMsg).h.seq);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** A length-prefixed frame, as links.ts writes them (JSON codec). */
function rawFrame(v: unknown): Buffer {
  return withLength(Buffer.from(JSON.stringify(v)));
}

function withLength(body: Buffer, length = body.length): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(length, 0);
  return Buffer.concat([head, body]);
}

/** The proof a hello carries (the formula of links.ts, written out again: a raw socket must compute it). */
function proofOf(token: string, from: NodeId): string {
  return createHash('sha256').update(`dse-link\u0000${token}\u0000${from}`).digest('hex');
}

/** A raw TCP connection to a node's links, with a flag for when the node closed it. */
async function rawPeer(to: PeerAddress): Promise<{ s: Socket; closed: () => boolean }> {
  const s = connect({ host: to.host, port: to.port });
  open.sockets.push(s);
  s.setNoDelay(true);
  let closed = false;
  s.on('close', () => (closed = true));
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return { s, closed: () => closed };
}

/** A port nothing listens on (a server opened and closed again): connecting to it is refused. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

// ------------------------------------------------------------------------------------------------

describe('links: delivery', () => {
  it('two nodes exchange messages both ways, each connection in order', async () => {
    const a = await listening('n1');
    const b = await listening('n2');
    a.links.setPeers({ n2: b.address });
    b.links.setPeers({ n1: a.address });
    expect(a.links.knows('n2')).toBe(true);
    expect(a.links.knows('n3')).toBe(false);

    // Several turns (so several frames), interleaved both ways.
    let sentA = 0;
    let sentB = 0;
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 25; i++) a.links.send('n2', app('n1', ++sentA));
      for (let i = 0; i < 5; i++) b.links.send('n1', app('n2', ++sentB));
      await new Promise((r) => setImmediate(r));
    }
    await until('every message', () => b.got.length === sentA && a.got.length === sentB);
    expect(seqs(b.got)).toEqual(Array.from({ length: sentA }, (_, i) => i + 1));
    expect(seqs(a.got)).toEqual(Array.from({ length: sentB }, (_, i) => i + 1));
    expect(b.got.every((g) => g.from === 'n1')).toBe(true);
    expect(a.got.every((g) => g.from === 'n2')).toBe(true);
    // One frame per turn and peer, not one per message.
    expect(b.links.stats.framesReceived).toBeGreaterThan(1);
    expect(b.links.stats.framesReceived).toBeLessThan(sentA);
    expect(a.links.stats.connects).toBe(1);
    expect(b.links.stats.connects).toBe(1);
  });

  it('a large message arrives whole, between small ones, in order', async () => {
    const a = await listening('n1');
    const b = await listening('n2');
    a.links.setPeers({ n2: b.address });
    const big = 'x'.repeat(6 * 1024 * 1024 - 7) + 'the end';
    a.links.send('n2', app('n1', 1, 'before'));
    await new Promise((r) => setImmediate(r));
    a.links.send('n2', app('n1', 2, big));
    await new Promise((r) => setImmediate(r));
    a.links.send('n2', app('n1', 3, 'after'));
    await until('three messages', () => b.got.length === 3, 5000);
    expect(seqs(b.got)).toEqual([1, 2, 3]);
    const payload = (b.got[1]!.m as AppMsg).payload as string;
    expect(payload.length).toBe(big.length);
    expect(payload === big).toBe(true);
    expect(b.links.stats.refusedConnections).toBe(0);
  });

  it('what one turn sends beyond the frame limit goes out in several frames, not one the receiver refuses', async () => {
    const a = await listening('n1');
    const b = await listening('n2');
    a.links.setPeers({ n2: b.address });
    // 20 messages of 1 MiB in one turn: 20 MiB, over the 16 MiB a frame may have.
    const mib = 'y'.repeat(1024 * 1024);
    for (let i = 1; i <= 20; i++) a.links.send('n2', app('n1', i, mib));
    await until('every message', () => b.got.length === 20 || b.links.stats.refusedConnections > 0, 8000);
    expect(b.links.stats.refusedConnections).toBe(0);
    expect(seqs(b.got)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(a.links.stats.framesSent).toBeGreaterThanOrEqual(2);

    // One message alone over the limit can never travel: the sender drops it (and says so) rather than
    // have the receiver close the connection; what follows it still arrives on the same connection.
    a.links.send('n2', app('n1', 21, 'z'.repeat(17 * 1024 * 1024)));
    await new Promise((r) => setImmediate(r));
    a.links.send('n2', app('n1', 22, 'small'));
    await until('the small one', () => b.got.length === 21, 8000);
    expect(seqs(b.got).slice(20)).toEqual([22]);
    expect(a.links.stats.dropped).toBe(1);
    expect(a.logs.some((l) => l.includes('over the 16 MiB'))).toBe(true);
    expect(b.links.stats.refusedConnections).toBe(0);
    expect(a.links.stats.connects).toBe(1);
  });

  it('frames split across TCP chunks (byte by byte) and several frames in one chunk are decoded', async () => {
    const b = await listening('n2');
    const { s } = await rawPeer(b.address);
    const hello = rawFrame({ hello: { from: 'n7', proof: null } });
    const f1 = rawFrame([app('n7', 1, 'one'), app('n7', 2, { two: [2] })]);
    const f2 = rawFrame([app('n7', 3, 'three')]);
    const f3 = rawFrame([app('n7', 4, 'four')]);
    // The hello and the first frame one byte at a time (the length prefix itself split), each byte its own write.
    for (const byte of Buffer.concat([hello, f1])) {
      s.write(Buffer.from([byte]));
      await sleep(1);
    }
    await until('the first frame', () => b.got.length === 2);
    // Then two frames in one write, the second's length prefix cut in the middle by the next write.
    const rest = Buffer.concat([f2, f3]);
    const cut = f2.length + 2;
    s.write(rest.subarray(0, cut));
    await sleep(20);
    expect(b.got.length).toBe(3);
    s.write(rest.subarray(cut));
    await until('every frame', () => b.got.length === 4);
    expect(b.got.map((g) => (g.m as AppMsg).payload)).toEqual(['one', { two: [2] }, 'three', 'four']);
    expect(b.got.every((g) => g.from === 'n7')).toBe(true);
  });
});

describe('links: reconnects and bounds', () => {
  it('a peer that restarts elsewhere gets what is sent after the new address', async () => {
    const a = await listening('n1');
    const b = await listening('n2');
    a.links.setPeers({ n2: b.address });
    a.links.send('n2', app('n1', 1));
    await until('the first message', () => b.got.length === 1);

    // The peer's process dies: its listener and connections are gone.
    b.links.close();
    await sleep(50);
    // Sending meanwhile loses messages (the outbox resends), and does not throw.
    expect(() => a.links.send('n2', app('n1', 2))).not.toThrow();

    // A new process for n2, on another port; the server tells n1 its address.
    const b2 = await listening('n2');
    expect(b2.address.port).not.toBe(b.address.port);
    a.links.setPeers({ n2: b2.address });
    for (let i = 3; i <= 5; i++) a.links.send('n2', app('n1', i));
    await until('the messages after the restart', () => seqs(b2.got).includes(5));
    // Message 2, queued while the old connection was being retried, may reach the new process too (late
    // and harmless); those sent after the new address all do, in order.
    expect(seqs(b2.got).filter((s) => s >= 3)).toEqual([3, 4, 5]);
    expect([
      [2, 3, 4, 5],
      [3, 4, 5],
    ]).toContainEqual(seqs(b2.got));
    expect(seqs(b.got)).toEqual([1]);
    expect(a.links.stats.connects).toBe(2);
  });

  it('a peer that comes back at the same address is reached again after the backoff, without a new peer table', async () => {
    const a = await listening('n1');
    const b = await listening('n2');
    a.links.setPeers({ n2: b.address });
    a.links.send('n2', app('n1', 1));
    await until('the first message', () => b.got.length === 1);
    b.links.close();
    await sleep(30);

    // Something listens at the same port again (a raw server: NodeLinks cannot choose its port).
    const frames: unknown[] = [];
    const server = createServer((s) => {
      open.sockets.push(s);
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const n = buf.readUInt32BE(0);
          frames.push(JSON.parse(buf.subarray(4, 4 + n).toString('utf8')));
          buf = buf.subarray(4 + n);
        }
      });
    });
    open.servers.push(server);
    await new Promise<void>((r) => server.listen(b.address.port, HOST, r));

    let seq = 1;
    const end = Date.now() + 5000;
    while (!frames.some((f) => Array.isArray(f)) && Date.now() < end) {
      a.links.send('n2', app('n1', ++seq));
      await sleep(10);
    }
    expect(frames[0]).toEqual({ hello: { from: 'n1', proof: null } });
    expect(frames.some((f) => Array.isArray(f) && (f as AppMsg[]).every((m) => m.h.src === 'n1'))).toBe(true);
    expect(a.links.stats.connects).toBe(2);
  });

  it('sending to an unknown peer, or to one that refuses connections, does not throw and keeps a bounded queue', async () => {
    const a = await listening('n1');
    // No address at all: each message is dropped at once.
    for (let i = 1; i <= 1000; i++) expect(() => a.links.send('nowhere', app('n1', i))).not.toThrow();
    expect(a.links.stats.dropped).toBe(1000);

    // An address nobody listens at: while the connection is tried, at most 10,000 messages wait
    // (the oldest beyond are dropped); when it fails, those are dropped too.
    a.links.setPeers({ n9: { host: HOST, port: await deadPort() } });
    for (let i = 1; i <= 25_000; i++) a.links.send('n9', app('n1', i));
    expect(a.links.stats.dropped).toBe(1000 + 15_000);
    await until('the refused connection', () => a.links.stats.dropped === 1000 + 25_000);
    // During the backoff, again bounded.
    for (let i = 1; i <= 12_000; i++) a.links.send('n9', app('n1', i));
    expect(a.links.stats.dropped).toBeGreaterThanOrEqual(1000 + 25_000 + 2000);
    expect(a.links.stats.messagesSent).toBe(0);
    expect(a.links.stats.connects).toBe(0);
  });

  it('a peer that accepts but reads nothing does not grow the sender without bound: beyond the unsent limit, batches are dropped', async () => {
    // A listener that takes the connection and never reads from it (a stopped or hung process).
    const server = createServer({ pauseOnConnect: true }, () => undefined);
    await new Promise<void>((r) => server.listen(0, HOST, r));
    open.servers.push(server);
    const a = makeLinks('n1');
    a.links.setPeers({ n9: { host: HOST, port: (server.address() as { port: number }).port } });
    const kb = 'x'.repeat(1024);
    let seq = 0;
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 100; i++) a.links.send('n9', app('n1', ++seq, kb));
      await sleep(1);
    }
    // 30 MB offered; what was written is bounded by the limit plus what the kernel buffers took.
    expect(a.links.stats.connects).toBe(1);
    expect(a.links.stats.dropped).toBeGreaterThan(0);
    expect(a.links.stats.messagesSent * 1024).toBeLessThan(UNSENT_BYTES_MAX + 16 * 1024 * 1024);
  });
});

// ------------------------------------------------------------------------------------------------

/**
 * Duplicates and stale frames at the node: the receiving links hand each message to a real `DseNode`
 * exactly as node-main.ts does (`onMessage: (_from, m) => node.receive(m)`; node-main itself runs
 * at import, so its wiring is written out here), with the simulated scheduler as the node's clock.
 */
describe('links into a DseNode: duplicates and stale world-lines are harmless', () => {
  function nodeBehindLinks() {
    const sched = new Scheduler();
    const sent: [string, WireMessage][] = [];
    const events: InspectionEvent[] = [];
    const ran = { messages: [] as Json[], requests: [] as Json[] };
    const theApp: App = {
      onRequest(ctx, req) {
        ran.requests.push(req.payload);
        ctx.put(`r${req.seq}`, req.payload);
        return { done: req.seq };
      },
      onMessage(ctx, _from, payload) {
        ran.messages.push(payload);
        ctx.put('count', ((ctx.get('count') as number | null) ?? 0) + 1);
      },
    };
    const node = new DseNode(
      'n1',
      theApp,
      {
        clock: new ProcessClock(sched),
        network: { send: (to, m) => sent.push([to, m]) },
        storage: new MemoryStorage(),
        observer: { emit: (e) => events.push(e) },
        onFatal: (e) => {
          throw e;
        },
        incarnation: 1,
      },
      { checkpointIntervalMs: 10, retransmitMs: 30 },
    );
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) await Promise.resolve();
      while (sched.step(sched.now)) for (let i = 0; i < 20; i++) await Promise.resolve();
      for (let i = 0; i < 100; i++) await Promise.resolve();
    };
    return { node, sent, events, ran, settle };
  }

  async function wired(worldLine: number) {
    const n = nodeBehindLinks();
    n.node.start();
    n.node.receive({ kind: 'recover', worldLine, cut: { n1: 0 }, resumeVersion: 1, incarnation: 1 });
    await n.settle();
    let delivered = 0;
    const receiver = await listening('n1', 'tok', (_from, m) => {
      delivered++;
      n.node.receive(m);
    });
    const sender = await listening('n2', 'tok');
    sender.links.setPeers({ n1: receiver.address });
    return { ...n, sender: sender.links, delivered: () => delivered };
  }

  it('the same app message and the same request, twice in one frame and again in a later frame, run once', async () => {
    const w = await wired(1);
    const msg = app('n2', 1, 'hello');
    const req: WireMessage = {
      kind: 'request',
      h: { src: 'n2', srcVersion: 1, worldLine: 1, seq: 1 },
      caller: 'n2.t1',
      deps: {},
      payload: 'req',
      probe: false,
    };
    w.sender.send('n1', msg);
    w.sender.send('n1', msg);
    w.sender.send('n1', req);
    w.sender.send('n1', req);
    await until('the first frame', () => w.delivered() === 4);
    w.sender.send('n1', msg);
    w.sender.send('n1', req);
    await until('the second frame', () => w.delivered() === 6);
    await w.settle();

    expect(w.ran.messages).toEqual(['hello']);
    expect(w.ran.requests).toEqual(['req']);
    expect(w.node.appState().get('count')).toBe(1);
    // Every copy is acknowledged (the sender's outbox must stop resending), every request copy answered the same.
    const acks = w.sent.filter(([to, m]) => to === 'n2' && m.kind === 'ack');
    expect(acks.length).toBe(3);
    const replies = w.sent.filter(([to, m]) => to === 'n2' && m.kind === 'reply').map(([, m]) => m as Extract<WireMessage, { kind: 'reply' }>);
    expect(replies.length).toBeGreaterThanOrEqual(1);
    expect(replies.every((r) => r.caller === 'n2.t1' && r.seq === 1 && r.status === 'ok' && JSON.stringify(r.result) === JSON.stringify({ done: 1 }))).toBe(
      true,
    );
    const dupes = w.events.filter((e) => e.type === 'messageDelivered' && e.duplicate);
    expect(dupes.length).toBeGreaterThanOrEqual(2 + 2);
  });

  it('an app message or a request of an older world-line is not applied, and its sender is told', async () => {
    const w = await wired(2);
    w.sender.send('n1', app('n2', 1, 'stale', 1));
    w.sender.send('n1', { kind: 'request', h: { src: 'n2', srcVersion: 1, worldLine: 1, seq: 1 }, caller: 'n2.t1', deps: {}, payload: 'stale', probe: false });
    await until('both', () => w.delivered() === 2);
    await w.settle();
    expect(w.ran.messages).toEqual([]);
    expect(w.ran.requests).toEqual([]);
    expect(w.sent.filter(([, m]) => m.kind === 'ack' || m.kind === 'reply')).toEqual([]);
    const rejects = w.sent.filter(([to, m]) => to === 'n2' && m.kind === 'reject').map(([, m]) => m as Extract<WireMessage, { kind: 'reject' }>);
    expect(rejects.map((r) => r.rejected).sort()).toEqual(['app', 'request']);
    expect(w.events.filter((e) => e.type === 'messageRejected')).toHaveLength(2);

    // The same message in the current world-line does run (the node is alive and reachable).
    w.sender.send('n1', app('n2', 1, 'current', 2));
    await until('the current one', () => w.delivered() === 3);
    await w.settle();
    expect(w.ran.messages).toEqual(['current']);
  });
});

// ------------------------------------------------------------------------------------------------

describe('links: authentication and bad frames', () => {
  it('with a token, a peer with the wrong token or none is refused and nothing it sends is delivered', async () => {
    const b = await listening('n2', 'right');
    const wrong = await listening('n1', 'wrong');
    const none = await listening('n3', null);
    const good = await listening('n4', 'right');
    for (const p of [wrong, none, good]) p.links.setPeers({ n2: b.address });
    wrong.links.send('n2', app('n1', 1, 'wrong'));
    none.links.send('n2', app('n3', 1, 'none'));
    good.links.send('n2', app('n4', 1, 'good'));
    await until('the good one', () => b.got.length === 1);
    await until('both refusals', () => b.links.stats.refusedConnections >= 2);
    await sleep(50);
    expect(b.got.map((g) => g.from)).toEqual(['n4']);
    expect(b.logs.some((l) => l.includes('in the name of n1 without the cluster'))).toBe(true);
    expect(b.logs.some((l) => l.includes('in the name of n3 without the cluster'))).toBe(true);
  });

  it('a raw socket with a forged hello is closed, and the frames after it in the same write are not delivered', async () => {
    const b = await listening('n2', 'right');
    // Control: the same raw framing with the right proof is delivered (so the refusals below are about the proof).
    const ok = await rawPeer(b.address);
    ok.s.write(Buffer.concat([rawFrame({ hello: { from: 'n1', proof: proofOf('right', 'n1') } }), rawFrame([app('n1', 1, 'genuine')])]));
    await until('the genuine one', () => b.got.length === 1);

    for (const proof of [proofOf('wrong', 'n1'), proofOf('right', 'n5'), 'short', null, 42]) {
      const p = await rawPeer(b.address);
      p.s.write(Buffer.concat([rawFrame({ hello: { from: 'n1', proof } }), rawFrame([app('n1', 2, 'forged')]), rawFrame([app('n1', 3, 'forged')])]));
      await until('the connection closed', p.closed);
    }
    // No hello at all: a batch as the first frame.
    const p = await rawPeer(b.address);
    p.s.write(rawFrame([app('n1', 4, 'forged')]));
    await until('the connection closed', p.closed);

    expect(b.got.map((g) => (g.m as AppMsg).payload)).toEqual(['genuine']);
    expect(ok.closed()).toBe(false);
  });

  it('a bad length, a frame that is not JSON, a frame that is not a batch: that connection closes, and nothing after it is delivered', async () => {
    const b = await listening('n2');
    const hello = rawFrame({ hello: { from: 'n1', proof: null } });
    const after = rawFrame([app('n1', 99, 'after the bad frame')]);
    const bad: [string, Buffer][] = [
      ['over 16 MiB', withLength(Buffer.from('{}'), 0xffffffff)],
      ['does not decode', withLength(Buffer.from('{not json'))],
      ['that is not a batch', rawFrame({ kind: 'app' })],
    ];
    for (const [why, frame] of bad) {
      const p = await rawPeer(b.address);
      p.s.write(Buffer.concat([hello, rawFrame([app('n1', 1, why)]), frame, after]));
      await until(`the connection closed (${why})`, p.closed);
      expect(b.logs.some((l) => l.includes(why))).toBe(true);
    }
    // Garbage as the hello itself.
    const g = await rawPeer(b.address);
    g.s.write(Buffer.concat([withLength(Buffer.from('\u0000\u0001garbage')), after]));
    await until('the connection closed (garbage hello)', g.closed);

    await sleep(30);
    // What came before each bad frame was delivered; what came after it, in the same write, was not.
    expect(b.got.map((x) => (x.m as AppMsg).payload)).toEqual(bad.map(([why]) => why));
    expect(b.links.stats.refusedConnections).toBe(bad.length + 1);

    // The listener is unharmed: a real peer still gets through.
    const a = await listening('n1');
    a.links.setPeers({ n2: b.address });
    a.links.send('n2', app('n1', 100, 'still here'));
    await until('a real peer', () => b.got.length === bad.length + 1);
  });

  it('messages not in the name of the peer that said hello are dropped; flushes pass', async () => {
    const b = await listening('n2');
    const p = await rawPeer(b.address);
    const flush: WireMessage = { kind: 'flush', worldLine: 1, upTo: 3 };
    p.s.write(
      Buffer.concat([
        rawFrame({ hello: { from: 'n1', proof: null } }),
        rawFrame([app('n3', 1, 'in n3’s name'), app('n1', 2, 'own'), flush, { kind: 'persisted', node: 'n1' }, null, 7]),
      ]),
    );
    await until('two messages', () => b.got.length === 2);
    await sleep(30);
    expect(b.got.map((g) => g.m)).toEqual([app('n1', 2, 'own'), flush]);
    expect(b.logs.filter((l) => l.includes('not in its own name'))).toHaveLength(4);
  });
});
