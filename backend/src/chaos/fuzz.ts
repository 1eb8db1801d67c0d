import type { ClusterInfo, Json } from '@dse/shared';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wallNow } from '../live/clock';
import { HttpClient, IoClient } from './api';
import type { FuzzCase, KnownBug } from './fuzz-generate';
import { FIRST_NODES, describeCase, generateCase } from './fuzz-generate';
import { errorCode, httpProblem, rawExchange, replyProblem } from './fuzz-judge';
import { ServerProcess, freePort } from './server-proc';
import { CutWatch } from './verify';

export type { KnownBug } from './fuzz-generate';
export { describeCase, generateCase } from './fuzz-generate';
export { replyProblem } from './fuzz-judge';

/**
 * Seeded property-based fuzzing of every command the server accepts, over HTTP and Socket.IO: valid
 * commands, the same with fields dropped, added, retyped, oversized or nested absurdly deep, random
 * JSON, bodies that are not JSON, unknown routes and methods, raw malformed HTTP, and commands out of
 * order (nodes that do not exist or are down, requests never made). Properties:
 * - every answer is a valid reply (`{ok: true, ...}`) or a typed error `{error: {code, message, definite}}`
 *   whose code is known and whose `definite` matches the code (an `Internal` error is a failure: the
 *   server threw something it did not expect);
 * - the server stays up (the process runs and answers `health`);
 * - the committed state is unchanged: keys written (and committed) before the run, which the fuzzer
 *   never writes, read the same afterwards; the cut never goes back.
 *
 * Command `i` of seed `s` is generated from its own random source, so a failure names the seed and the
 * command's number, and `describeCase(generateCase(s, i))` shows it again. Generation is in
 * fuzz-generate.ts, judging answers in fuzz-judge.ts; this file runs them against a server.
 */

export interface FuzzOptions {
  commands: number;
  seed: number;
  /** Parallel HTTP and Socket.IO clients (each its own rate-limit bucket). */
  workers?: number;
  log: (line: string) => void;
  /** Share of valid commands that change the cluster (kill, config, ...), 0..1; default 0.15. */
  disruptive?: number;
  /**
   * Leave out inputs that trigger a known, reported bug (so that a short run can guard everything
   * else): `deep-values`, put values nested deeper than the storage accepts (backend/test/chaos/bugs.test.ts).
   */
  avoid?: KnownBug[];
}

export interface FuzzFailure {
  index: number;
  what: string;
  problem: string;
}

export interface FuzzResult {
  seed: number;
  commands: number;
  http: number;
  socket: number;
  raw: number;
  ok: number;
  errors: Record<string, number>;
  failures: number;
  failureDetails: FuzzFailure[];
  serverUp: boolean;
  committedUnchanged: boolean;
  /** After the run, a put on every first node commits (nothing the fuzzer sent stopped the cut). */
  cutMoves: boolean;
  sentinels: number;
  cutViolations: number;
  elapsedMs: number;
}

// ---------------------------------------------------------------- the run

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sentinel {
  key: string;
  node: string;
  value: Json;
}

async function committedRead(http: HttpClient, s: Sentinel): Promise<Json | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = await http.request('POST', '/api/requests', { op: 'get', key: s.key, committedOnly: true, node: s.node }, {}, 30_000);
    if ('status' in a && a.status === 200) return ((a.json as { result: { value: Json } }).result ?? { value: null }).value;
    await sleep(500);
  }
  return undefined;
}

function emptyResult(seed: number): FuzzResult {
  return {
    seed,
    commands: 0,
    http: 0,
    socket: 0,
    raw: 0,
    ok: 0,
    errors: {},
    failures: 0,
    failureDetails: [],
    serverUp: false,
    committedUnchanged: false,
    cutMoves: false,
    sentinels: 0,
    cutViolations: 0,
    elapsedMs: 0,
  };
}

/** One fuzz run: a server of its own, the clients that fuzz it, and what they found. */
class FuzzRun {
  readonly result: FuzzResult;
  private readonly o: FuzzOptions;
  private readonly log: (line: string) => void;
  private readonly dataDir: string;
  private readonly port: number;
  private readonly server: ServerProcess;
  private readonly control: HttpClient;
  private readonly cuts = new CutWatch(new Set(['n1', 'n2', 'n3', 'n4']));
  private readonly ios: IoClient[] = [];
  private readonly https: HttpClient[] = [];
  /** The next command to send (workers take them in turn). */
  private next = 0;
  private serverDied = false;
  private lastLog = wallNow();

  constructor(o: FuzzOptions, port: number) {
    this.o = o;
    this.log = o.log;
    this.result = emptyResult(o.seed);
    this.dataDir = mkdtempSync(join(tmpdir(), 'dse-fuzz-'));
    this.port = port;
    this.server = new ServerProcess({ port, dataDir: this.dataDir });
    this.control = new HttpClient(this.server.url, { localAddress: '127.0.0.1', timeoutMs: 30_000 });
  }

  private fail(index: number, what: string, problem: string): void {
    this.result.failures++;
    if (this.result.failureDetails.length < 30) this.result.failureDetails.push({ index, what, problem });
    this.log(`FAIL #${index}: ${problem}\n    ${what}`);
  }

  private count(code: string): void {
    this.result.errors[code] = (this.result.errors[code] ?? 0) + 1;
  }

  private async watchCut(): Promise<ClusterInfo | null> {
    const a = await this.control.request('GET', '/api/cluster');
    if ('status' in a && a.status === 200) {
      const c = a.json as ClusterInfo;
      this.cuts.observe(c.worldLine, c.cut, 'GET /api/cluster');
      return c;
    }
    return null;
  }

  // ------------------------------------------------------------ setup: the server, and committed values the fuzzer never writes

  /** Starts the server and commits the sentinels; returns them with the values read back. */
  async setUp(): Promise<{ sentinels: Sentinel[]; before: Map<string, Json | undefined> }> {
    const { o, control } = this;
    this.log(`fuzz: seed ${o.seed}, ${o.commands} commands; starting the server`);
    await this.server.start(180_000);
    await control.request('POST', '/api/config', { checkpointIntervalMs: 50 });
    for (let end = wallNow() + 120_000; ;) {
      const c = await this.watchCut();
      if (c !== null && c.nodes.every((n) => n.status === 'up')) break;
      if (wallNow() > end) throw new Error('the nodes did not come up');
      await sleep(300);
    }
    const sentinels: Sentinel[] = [];
    for (let i = 0; i < 8; i++) {
      const s: Sentinel = { key: `sentinel.${i}`, node: `n${(i % 4) + 1}`, value: { i, seed: o.seed } };
      const a = await control.request('POST', '/api/requests', { session: 'sentinels', op: 'put', key: s.key, value: s.value, node: s.node });
      if (!('status' in a) || a.status !== 200) throw new Error(`sentinel put failed: ${'status' in a ? a.text : a.transport}`);
      sentinels.push(s);
    }
    const before = new Map<string, Json | undefined>();
    for (let end = wallNow() + 120_000; ;) {
      let all = true;
      for (const s of sentinels) {
        const v = await committedRead(control, s);
        before.set(s.key, v);
        if (JSON.stringify(v) !== JSON.stringify(s.value)) all = false;
      }
      if (all) break;
      if (wallNow() > end) throw new Error('the sentinel values did not commit within 120 s');
      await sleep(500);
    }
    this.result.sentinels = sentinels.length;
    return { sentinels, before };
  }

  // ------------------------------------------------------------ the commands: generated, sent and judged by parallel workers

  async fuzz(workers: number): Promise<void> {
    for (let i = 0; i < workers; i++) {
      this.https.push(new HttpClient(this.server.url, { localAddress: `127.0.0.${60 + i}`, timeoutMs: 40_000, keepAlive: false }));
      this.ios.push(await IoClient.connect(this.server.url));
    }
    await Promise.all(Array.from({ length: workers }, (_, w) => this.worker(w)));
  }

  private async worker(w: number): Promise<void> {
    const { o, result } = this;
    for (;;) {
      const index = this.next++;
      if (index >= o.commands) return;
      const c = generateCase(o.seed, index, o.disruptive ?? 0.15, o.avoid ?? []);
      result.commands++;
      if (wallNow() - this.lastLog > 5000) {
        this.lastLog = wallNow();
        this.log(`  ${index}/${o.commands} commands, ${result.failures} failures`);
        void this.watchCut();
      }
      switch (c.transport) {
        case 'http':
          await this.sendHttp(w, index, c);
          break;
        case 'io':
          await this.sendIo(w, index, c);
          break;
        case 'raw': {
          result.raw++;
          const p = await rawExchange(this.port, c.bytes);
          if (p !== null) this.fail(index, describeCase(c), p);
          break;
        }
      }
      if (!this.server.running) {
        if (!this.serverDied)
          this.fail(
            index,
            describeCase(c),
            `the server process exited (the command, or one just before it, killed it): ${this.server.recentLog().slice(-12).join(' | ')}`,
          );
        this.serverDied = true;
        return;
      }
    }
  }

  private async sendHttp(w: number, index: number, c: Extract<FuzzCase, { transport: 'http' }>): Promise<void> {
    this.result.http++;
    const a = await this.https[w]!.request(c.method, c.path, c.body, c.headers ?? {});
    const { problem, code } = httpProblem(c, a);
    this.count(code);
    if (code === 'ok') this.result.ok++;
    if (problem !== null) this.fail(index, describeCase(c), problem);
  }

  private async sendIo(w: number, index: number, c: Extract<FuzzCase, { transport: 'io' }>): Promise<void> {
    this.result.socket++;
    let io = this.ios[w]!;
    if (!io.connected) {
      // The server may drop a connection that sent something absurd (too large): that is allowed; reconnect.
      io.close();
      io = this.ios[w] = await IoClient.connect(this.server.url);
    }
    try {
      JSON.stringify(c.payload);
    } catch {
      // socket.io-client encodes with JSON.stringify too: this cannot leave the client.
      this.count('clientRefused');
      return;
    }
    if (c.event === 'command' && c.ack) {
      const a = await io.command(c.payload, 40_000);
      if ('transport' in a && a.transport.startsWith('client:')) {
        this.count('clientRefused');
      } else if ('transport' in a) {
        if (io.connected) this.fail(index, describeCase(c), `no Socket.IO answer: ${a.transport}`);
        this.count('dropped');
      } else {
        const p = replyProblem(a.reply);
        const code = errorCode(a.reply);
        this.count(code);
        if (code === 'ok') this.result.ok++;
        if (p !== null) this.fail(index, describeCase(c), p);
      }
    } else {
      try {
        if (c.ack) io.socket.timeout(2000).emit(c.event, c.payload, () => undefined);
        else io.emitRaw(c.event, c.payload);
      } catch {
        // socket.io-client refuses reserved event names itself: nothing reached the server
        this.count('clientRefused');
      }
      await sleep(5);
    }
  }

  // ------------------------------------------------------------ after: the server is up, the committed state unchanged, the cut moves

  async checkAfter(sentinels: Sentinel[], before: Map<string, Json | undefined>): Promise<void> {
    const { result, control } = this;
    // Back to a quiet cluster, then read the sentinels again.
    result.serverUp = this.server.running;
    const h = await control.request('GET', '/api/health');
    if (!('status' in h) || h.status !== 200) {
      result.serverUp = false;
      this.fail(-1, 'GET /api/health', 'the server does not answer after the run');
    }
    if (result.serverUp) {
      await this.quiet();
      let same = true;
      for (const s of sentinels) {
        const v = await committedRead(control, s);
        if (JSON.stringify(v) !== JSON.stringify(before.get(s.key))) {
          same = false;
          this.fail(-1, `committed read of ${s.key} at ${s.node}`, `was ${JSON.stringify(before.get(s.key))}, now ${JSON.stringify(v)}`);
        }
      }
      result.committedUnchanged = same;
      await this.checkCutMoves();
      await this.watchCut();
    }
    result.cutViolations = this.cuts.violations;
    for (const n of this.cuts.notes) this.fail(-1, 'cut', n.message);
  }

  /** No workload, a plain configuration, and the first nodes up again. */
  private async quiet(): Promise<void> {
    const control = this.control;
    await control.request('POST', '/api/workload', { rate: 0 });
    for (let attempt = 0; ; attempt++) {
      const a = await control.request(
        'POST',
        '/api/config',
        { mode: 'speculative', cut: 'exact', messageLoss: 0, networkDelayMs: 0, networkJitterMs: 0, autoRestart: true },
        {},
        120_000,
      );
      if ('status' in a && a.status === 200) break;
      if (attempt >= 10) throw new Error(`could not reset the configuration: ${'status' in a ? a.text : a.transport}`);
      await sleep(1000);
    }
    // Nodes the fuzzer killed come back (autoRestart covers later deaths; restart the ones down now).
    const now = await this.watchCut();
    for (const n of now?.nodes ?? []) if (FIRST_NODES.has(n.id) && n.status === 'down') await control.request('POST', `/api/nodes/${n.id}/restart`);
    await this.watchCut();
  }

  /** Liveness: a put on each first node commits (no input left a node unable to persist). */
  private async checkCutMoves(): Promise<void> {
    const control = this.control;
    const ids: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const a = await control.request('POST', '/api/requests', { session: `after-${i}`, op: 'put', key: `after.${i}`, value: i, node: `n${i}` }, {}, 60_000);
      if ('status' in a && a.status === 200) ids.push((a.json as { id: string }).id);
      else this.fail(-1, `put on n${i} after the run`, `refused: ${'status' in a ? a.text.slice(0, 200) : a.transport}`);
    }
    const undecided = new Set(ids);
    for (const end = wallNow() + 90_000; undecided.size > 0 && wallNow() < end;) {
      for (const id of [...undecided]) {
        const a = await control.request('GET', `/api/requests/${id}`);
        if ('status' in a && a.status === 200 && (a.json as { status: string }).status !== 'speculative') undecided.delete(id);
      }
      if (undecided.size > 0) await sleep(500);
    }
    this.result.cutMoves = undecided.size === 0 && ids.length === 4;
    if (undecided.size > 0) {
      const c = await this.watchCut();
      for (const id of undecided) {
        const a = await control.request('GET', `/api/requests/${id}`);
        this.log(`  undecided: ${'status' in a ? a.text.slice(0, 400) : a.transport}`);
      }
      this.fail(
        -1,
        'puts on n1..n4 after the run',
        `${undecided.size} of them did not commit within 90 s: the cut is stuck (${JSON.stringify(c?.cut)}; persisted ${JSON.stringify(c?.nodes.map((n) => `${n.id}:${n.persistedVersion}/${n.version}`))})`,
      );
    }
  }

  async dispose(): Promise<void> {
    for (const io of this.ios) io.close();
    for (const h of this.https) h.close();
    this.control.close();
    await this.server.stop(10_000).catch(() => undefined);
    this.server.dispose();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const t0 = wallNow();
  const workers = o.workers ?? 8;
  const run = new FuzzRun(o, await freePort());
  try {
    const { sentinels, before } = await run.setUp();
    o.log(`sentinels committed; fuzzing with ${workers} workers`);
    await run.fuzz(workers);
    o.log(`${run.result.commands} commands sent; checking the server and the committed state`);
    await run.checkAfter(sentinels, before);
  } finally {
    await run.dispose();
    run.result.elapsedMs = Math.round(wallNow() - t0);
  }
  return run.result;
}
