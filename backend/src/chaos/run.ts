import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterInfo, Cut, InspectionEvent, Json, Mode, NodeId, NumberedEvent, RecoveryKind, WorldLine } from '@dse/shared';
import { unitOfStateKey } from '@dse/shared';
import pg from 'pg';
import { Coordinator } from '../core/coordinator';
import { appKeyOf } from '../core/node';
import { RealClock, wallNow } from '../live/clock';
import { APPS } from '../live/apps';
import { Rng } from '../sim/rng';
import { openStorage } from '../storage/open';
import { dropSchema } from '../storage/postgres';
import type { OpenedStorage } from '../storage/open';
import { HttpClient, IoClient } from './api';
import { TcpProxy } from './proxy';
import { SessionResumes, applyReply, isOpen, pollOpen, sessionRolledBack } from './tracked';
import { ServerProcess, freePort, processesInGroups } from './server-proc';
import type { Load, LoadCtx } from './service-load';
import { serviceLoad, travelCapacity } from './service-load';
import type { Application, PutRecord, ViolationNote } from './verify';
import { CutWatch, RestorePoints, checkKv } from './verify';
import type { ServiceRecord, ServiceVerdict } from './verify-services';
import { checkBroker, checkWal, checkWorkflow } from './verify-services';

/**
 * `npm run chaos`: the live system (server child process, node processes, PGlite or PostgreSQL) under
 * steady load through the HTTP API while a seeded schedule SIGKILLs and SIGSTOPs node processes, cuts
 * the database connection (PostgreSQL, through a TCP proxy) and SIGKILLs the server itself. At the end
 * the server is SIGKILLed once more and the database is checked against what clients were told.
 */

export type Scenario = 'kv' | 'workflow' | 'broker' | 'wal';
export const SCENARIOS: readonly Scenario[] = ['kv', 'workflow', 'broker', 'wal'];
export type FaultKind = 'kill' | 'stop' | 'dbCut' | 'serverRestart' | 'addNode' | 'removeNode';

export interface ChaosOptions {
  seconds: number;
  seed: number;
  scenario: Scenario;
  mode: Exclude<Mode, 'none'>;
  /** How the cluster repairs after a failure (`POST /api/config`); unset: the server's default. */
  recovery?: RecoveryKind;
  storage: 'pglite' | 'postgres';
  /** PostgreSQL to use (a schema of its own is created and dropped); default DATABASE_URL or the local server. */
  databaseUrl?: string;
  /** Load clients, each its own session and source address. */
  clients: number;
  /** Puts a second per client. */
  rate: number;
  /** Pause between faults, ms (drawn uniformly). */
  gapMs: [number, number];
  /** How long a SIGSTOP or a database cut lasts, ms. */
  holdMs: [number, number];
  /** After the faults: how long the cluster gets to decide every request. */
  settleMs: number;
  /** Keep going past `seconds` (up to three times as long) until every fault kind happened once (tests). */
  everyKindOnce?: boolean;
  /** Fault kinds to use (default: every kind the storage allows; `addNode` and `removeNode` only with `membership`). */
  faults?: FaultKind[];
  /**
   * Membership changes among the faults: `POST /api/nodes` adds a node; `DELETE /api/nodes/:id` removes a
   * live one (drained) or one the tool has just SIGKILLed (its committed state restored on the others).
   * The final state is then read from every node ever present, and each unit must be on exactly one.
   */
  membership?: boolean;
  log: (line: string) => void;
  /** Show the server's stderr. */
  serverLog?: boolean;
  keepData?: boolean;
}

export interface ChaosResult {
  seconds: number;
  seed: number;
  scenario: Scenario;
  mode: string;
  /** The recovery kinds the world-line changes reported (`worldLineChanged.recovery`), e.g. `precise`. */
  recovery: string;
  storage: string;
  kills: number;
  stops: number;
  dbCuts: number;
  serverRestarts: number;
  /** Membership changes (with `membership`): nodes added, removed live (drained), removed down (restored). */
  nodesAdded: number;
  nodesDrained: number;
  nodesRestored: number;
  requests: number;
  committed: number;
  rolledBack: number;
  refused: number;
  unknown: number;
  /** Sessions the clients resumed after a `SessionRolledBack` refusal (the server confirmed them). */
  resumes: number;
  lostCommitted: number;
  duplicates: number;
  orphans: number;
  prefixViolations: number;
  cutViolations: number;
  livenessViolations: number;
  worldLines: number;
  /** Uncommitted versions recoveries kept (precise recovery), summed over the `recoveryPlan` events seen. */
  keptVersions: number;
  /** Times a coordinator stopped on an error and a new one started from storage within a server (its log line). */
  coordinatorRestarts: number;
  /** Times the cut stood still for 10 s with every node up (a diagnostic: a stall a server restart ended is no violation). */
  cutStalls: number;
  /** Puts whose application the event stream showed (the exactly-once check covers these). */
  applicationsSeen: number;
  /** Service scenarios: broken service promises besides the above (log order and holes, group offsets, sagas, stock, versions above the cut). */
  serviceViolations: number;
  /** Service scenarios: what the load did and what the committed state holds (appends, publishes, workflows completed …). */
  stats: Record<string, number>;
  violations: number;
  violationDetails: ViolationNote[];
  elapsedMs: number;
}

export const DEFAULT_CHAOS: Omit<ChaosOptions, 'log'> = {
  seconds: 60,
  seed: 1,
  scenario: 'kv',
  mode: 'speculative',
  storage: 'pglite',
  clients: 4,
  rate: 5,
  gapMs: [500, 2500],
  holdMs: [300, 3000],
  settleMs: 90_000,
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The scenarios the live cluster can run: its apps (`backend/src/live/apps.ts`). */
export function scenarioAvailable(s: Scenario): string | null {
  if (s === 'kv') return null;
  // The server's default app: the kv app and every service, driven through POST /api/service.
  if (Object.prototype.hasOwnProperty.call(APPS, 'playground')) return null;
  if (Object.prototype.hasOwnProperty.call(APPS, 'services')) {
    return `the live cluster runs the ${s} service inside its \`services\` app, but the server the chaos tool starts (\`npm start\`) cannot be told to run that app, and the HTTP and Socket.IO API sends only key-value requests (shared/src/api.ts KvRequestBody): the chaos tool has no way to drive ${s} from outside`;
  }
  if (Object.prototype.hasOwnProperty.call(APPS, s)) {
    return `the live cluster has an app named ${s}, but the HTTP API only sends key-value requests (shared/src/api.ts KvRequestBody): the chaos tool cannot drive it`;
  }
  return `the live cluster does not run the ${s} service (backend/src/live/apps.ts has: ${Object.keys(APPS).join(', ')}); only kv can run under chaos`;
}

interface Ctx extends LoadCtx {
  o: ChaosOptions;
  server: ServerProcess;
  incarnation: number;
  up: boolean;
  stopping: boolean;
  /** kv: each put a client sent. */
  records: PutRecord[];
  /** Service scenarios: each service request a client sent. */
  serviceRecords: ServiceRecord[];
  sessions: SessionResumes;
  keyPrefix: string;
}

// ---------------------------------------------------------------- the monitor: cluster polls and the event stream

/** The cut standing still this long with every node up is reported (a log line and an event file; not a violation). */
const STALL_MS = 10_000;
/** Events kept for a stall report: about versions, checkpoints, recoveries and the cut. */
const STALL_EVENTS_MAX = 20_000;
const STALL_EVENT_TYPES: ReadonlySet<InspectionEvent['type']> = new Set([
  'versionOpened',
  'checkpointStarted',
  'checkpointPersisted',
  'checkpointFailed',
  'rollback',
  'worldLineChanged',
  'recoveryPlan',
  'cutAdvanced',
  'nodeFailed',
  'nodeRestarted',
]);

class Monitor {
  cluster: ClusterInfo | null = null;
  readonly cuts = new CutWatch();
  readonly applications = new Map<string, Application[]>();
  /** Each world-line's restore points as its `worldLineChanged` announced them (`kept`, over the cut). */
  readonly restorePoints = new Map<WorldLine, Cut>();
  /** Versions kept by the recoveries seen (`recoveryPlan.kept`), once per world-line. */
  private readonly keptPerWorldLine = new Map<WorldLine, number>();
  readonly recoveryKinds = new Set<RecoveryKind>();
  private readonly nodeWorldLine = new Map<NodeId, WorldLine>();
  private io: IoClient | null = null;
  private lastEvent = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly http: HttpClient;
  private polling = false;
  highestWorldLine = 0;
  /** Times the cut stood still for `STALL_MS` with every node up. */
  cutStalls = 0;
  private cutKey = '';
  private cutMovedAt = 0;
  private stallReported = '';
  private readonly recent: InspectionEvent[] = [];

  constructor(private readonly ctx: Ctx) {
    this.http = new HttpClient(ctx.server.url, { localAddress: '127.0.0.1', timeoutMs: 10_000 });
  }

  async attach(): Promise<void> {
    this.detach();
    this.lastEvent = 0;
    this.cluster = null;
    this.nodeWorldLine.clear();
    try {
      this.io = await IoClient.connect(this.ctx.server.url, { onEvents: (evs) => this.onEvents(evs) });
    } catch (e) {
      this.ctx.o.log(`monitor: the event stream did not connect (${e instanceof Error ? e.message : String(e)}); exactly-once is checked on fewer events`);
    }
    this.timer = setInterval(() => void this.poll(), 400);
    await this.poll();
  }

  detach(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.io?.close();
    this.io = null;
  }

  async poll(): Promise<ClusterInfo | null> {
    if (this.polling) return this.cluster;
    this.polling = true;
    try {
      const a = await this.http.request('GET', '/api/cluster');
      if ('status' in a && a.status === 200) {
        const c = a.json as ClusterInfo;
        this.cluster = c;
        this.cuts.observe(c.worldLine, c.cut, `GET /api/cluster (server start ${this.ctx.incarnation})`);
        if (c.worldLine > this.highestWorldLine) this.highestWorldLine = c.worldLine;
        this.watchStall(c);
      }
    } finally {
      this.polling = false;
    }
    return this.cluster;
  }

  private onEvents(events: readonly NumberedEvent[]): void {
    for (const e of events) {
      if (e.n <= this.lastEvent) continue; // a resync snapshot repeats events already seen
      this.lastEvent = e.n;
      this.onEvent(e);
    }
  }

  /** Reports the cut standing still with every node up (time counts only while all are up). */
  private watchStall(c: ClusterInfo): void {
    const now = wallNow();
    const key = `${this.ctx.incarnation}/${c.worldLine} ${JSON.stringify(c.cut)}`;
    const allUp = c.nodes.length > 0 && c.nodes.every((n) => n.status === 'up');
    if (key !== this.cutKey || !allUp) {
      this.cutKey = key;
      this.cutMovedAt = now;
      return;
    }
    if (now - this.cutMovedAt < STALL_MS || this.stallReported === key) return;
    this.stallReported = key;
    this.cutStalls++;
    const file = join(tmpdir(), `dse-chaos-stall-${this.ctx.o.seed}-${process.pid}-${this.cutStalls}.jsonl`);
    try {
      writeFileSync(file, [JSON.stringify(c), ...this.recent.map((e) => JSON.stringify(e))].join('\n') + '\n');
    } catch {
      // a diagnostic only
    }
    const nodes = c.nodes.map((n) => `${n.id}: version ${n.version}, persisted ${n.persistedVersion}, committed ${n.committedVersion}`).join('; ');
    this.ctx.o.log(
      `  the cut has not moved for ${((now - this.cutMovedAt) / 1000).toFixed(0)} s with every node up (world-line ${c.worldLine}, cut ${JSON.stringify(c.cut)}; ${nodes}); the cluster and the last ${this.recent.length} version, checkpoint, recovery and cut events: ${file}`,
    );
  }

  private onEvent(e: InspectionEvent): void {
    if (STALL_EVENT_TYPES.has(e.type)) {
      this.recent.push(e);
      if (this.recent.length > 2 * STALL_EVENTS_MAX) this.recent.splice(0, this.recent.length - STALL_EVENTS_MAX);
    }
    switch (e.type) {
      case 'versionOpened':
      case 'rollback':
        this.nodeWorldLine.set(e.node, e.worldLine);
        return;
      case 'worldLineChanged':
        // Absent `kept` (a server from before precise recovery): every node restored the cut.
        if (!this.restorePoints.has(e.worldLine)) this.restorePoints.set(e.worldLine, { ...e.cut, ...((e as { kept?: Cut }).kept ?? {}) });
        if (e.recovery !== undefined) this.recoveryKinds.add(e.recovery);
        if (e.worldLine > this.highestWorldLine) this.highestWorldLine = e.worldLine;
        return;
      case 'recoveryPlan':
        this.keptPerWorldLine.set(e.worldLine, e.kept.length);
        return;
      case 'stateChanged': {
        const wl = this.nodeWorldLine.get(e.node);
        if (wl === undefined) return;
        for (const k of Object.keys(e.set)) {
          if (!k.startsWith(this.ctx.keyPrefix)) continue;
          let l = this.applications.get(k);
          if (l === undefined) this.applications.set(k, (l = []));
          l.push(
            this.ctx.o.membership === true
              ? { node: e.node, worldLine: wl, version: e.version, inc: this.ctx.incarnation, t: e.t }
              : { node: e.node, worldLine: wl, version: e.version },
          );
        }
        // With membership changes a key moves: its deletion by a hand-off is part of its history.
        if (this.ctx.o.membership === true) {
          for (const k of e.deleted) {
            if (!k.startsWith(this.ctx.keyPrefix)) continue;
            let l = this.applications.get(k);
            if (l === undefined) this.applications.set(k, (l = []));
            l.push({ node: e.node, worldLine: wl, version: e.version, inc: this.ctx.incarnation, t: e.t, del: true });
          }
        }
        return;
      }
      default:
        return;
    }
  }

  get keptVersions(): number {
    let n = 0;
    for (const k of this.keptPerWorldLine.values()) n += k;
    return n;
  }

  close(): void {
    this.detach();
    this.http.close();
  }
}

// ---------------------------------------------------------------- load: clients putting unique keys through HTTP

class LoadClient implements Load {
  private readonly http: HttpClient;
  private readonly seqs = new Map<string, number>();
  private readonly mine: PutRecord[] = [];

  constructor(
    private readonly ctx: Ctx,
    private readonly index: number,
  ) {
    this.http = new HttpClient(ctx.server.url, { localAddress: `127.0.0.${20 + index}`, timeoutMs: 15_000 });
  }

  async run(): Promise<void> {
    const interval = 1000 / this.ctx.o.rate;
    let pollAt = 0;
    while (!this.ctx.stopping) {
      if (!this.ctx.up) {
        await sleep(100);
        continue;
      }
      const started = wallNow();
      await this.putOnce();
      if (started - pollAt > 300) {
        pollAt = started;
        await this.poll();
      }
      const wait = interval - (wallNow() - started);
      if (wait > 0) await sleep(wait);
    }
  }

  private async putOnce(): Promise<void> {
    const inc = this.ctx.incarnation;
    // Sessions live in the server: a new server incarnation gets new sessions.
    const session = `${this.ctx.keyPrefix}${this.index}-${inc}`;
    const q = (this.seqs.get(session) ?? 0) + 1;
    this.seqs.set(session, q);
    const key = `${session}.${q}`;
    const value: Json = { q, s: session };
    const rec: PutRecord = {
      session,
      q,
      key,
      value,
      incarnation: inc,
      id: null,
      outcome: 'pending',
      answerWorldLine: null,
      resumes: this.ctx.sessions.of(session),
    };
    this.ctx.records.push(rec);
    this.mine.push(rec);
    const a = await this.http.request('POST', '/api/requests', { session, op: 'put', key, value });
    if ('transport' in a) {
      rec.outcome = 'unknown';
      return;
    }
    // An earlier put of the session was rolled back: this one was refused, never sent. Resume and go on.
    if (sessionRolledBack(applyReply(rec, a.status, a.json))) await this.ctx.sessions.resume(this.http, session);
  }

  /** Asks for the outcome of requests of the current server incarnation that are not final. */
  poll(max = 25): Promise<number> {
    return pollOpen(this.ctx, this.http, this.mine, applyReply, max);
  }

  /** The server incarnation ended: whatever was not final is unknown now. */
  orphanIncarnation(inc: number): void {
    for (const r of this.mine) if (r.incarnation === inc && isOpen(r)) r.outcome = 'unknown';
  }

  openCount(): number {
    const inc = this.ctx.incarnation;
    return this.mine.filter((r) => r.incarnation === inc && isOpen(r)).length;
  }

  close(): void {
    this.http.close();
  }
}

// ---------------------------------------------------------------- the run

async function configure(ctx: Ctx, http: HttpClient): Promise<void> {
  const config: Record<string, unknown> = {
    autoRestart: true,
    autoRestartDelayMs: 300,
    heartbeatIntervalMs: 100,
    heartbeatTimeoutMs: 2000,
    checkpointIntervalMs: 50,
  };
  if (ctx.o.mode !== 'speculative') config.mode = ctx.o.mode;
  if (ctx.o.recovery !== undefined) config.recovery = ctx.o.recovery;
  for (let attempt = 0; ; attempt++) {
    const a = await http.request('POST', '/api/config', config, {}, 60_000);
    if ('status' in a && a.status === 200) break;
    if (attempt >= 5) throw new Error(`POST /api/config failed: ${'status' in a ? a.text : a.transport}`);
    await sleep(500);
  }
  // Background load of the built-in workload: chains of puts across nodes (cross-node dependencies).
  await http.request('POST', '/api/workload', { kind: 'mixed', rate: 10 });
}

async function waitAllUp(monitor: Monitor, timeoutMs: number): Promise<boolean> {
  const end = wallNow() + timeoutMs;
  while (wallNow() < end) {
    const c = await monitor.poll();
    if (c !== null && c.nodes.length > 0 && c.nodes.every((n) => n.status === 'up')) return true;
    await sleep(250);
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const t0 = wallNow();
  const unavailable = scenarioAvailable(o.scenario);
  if (unavailable !== null) throw new Error(unavailable);
  const rng = new Rng(o.seed);
  const log = o.log;
  const kinds: FaultKind[] = (
    o.faults ?? ['kill', 'stop', 'dbCut', 'serverRestart', ...(o.membership === true ? (['addNode', 'removeNode'] as const) : [])]
  ).filter((k) => (k !== 'dbCut' || o.storage === 'postgres') && ((k !== 'addNode' && k !== 'removeNode') || o.membership === true));
  if (o.storage !== 'postgres' && (o.faults ?? []).includes('dbCut'))
    log('database cuts need --storage postgres (PGlite runs inside the server): none this run');

  // Storage: a PGlite folder, or a PostgreSQL schema of its own behind the proxy.
  let dataDir: string | undefined;
  let proxy: TcpProxy | null = null;
  let schema: string | null = null;
  let directUrl: string | undefined;
  let serverDbUrl: string | undefined;
  if (o.storage === 'pglite') {
    dataDir = mkdtempSync(join(tmpdir(), 'dse-chaos-'));
  } else {
    directUrl = o.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const u = new URL(directUrl);
    schema = `dse_chaos_${o.seed}_${process.pid}_${Date.now().toString(36)}`;
    const c = new pg.Client({ connectionString: directUrl });
    c.on('error', () => undefined);
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA ${schema}`); // a name built from digits and letters above, not from input
    } finally {
      await c.end();
    }
    proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
    const proxyPort = await proxy.listen();
    const su = new URL(directUrl);
    su.hostname = '127.0.0.1';
    su.port = String(proxyPort);
    su.searchParams.set('options', `-c search_path=${schema}`);
    serverDbUrl = su.toString();
  }

  const port = await freePort();
  let coordinatorRestarts = 0;
  const onServerLog = (l: string): void => {
    // The live cluster's line when its coordinator stopped on an error and a new one starts from storage.
    if (l.includes('coordinator stopped on an error')) {
      coordinatorRestarts++;
      if (!o.serverLog) log(`  [server] ${l}`);
    }
    if (o.serverLog) log(`  [server] ${l}`);
  };
  const server = new ServerProcess({
    port,
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(serverDbUrl !== undefined ? { databaseUrl: serverDbUrl } : {}),
    onLog: onServerLog,
  });
  const ctx: Ctx = {
    o,
    server,
    incarnation: 0,
    up: false,
    stopping: false,
    records: [],
    serviceRecords: [],
    sessions: new SessionResumes(),
    keyPrefix: `ch${o.seed}x`,
    cluster: () => monitor.cluster,
  };
  const monitor = new Monitor(ctx);
  const control = new HttpClient(server.url, { localAddress: '127.0.0.1', timeoutMs: 30_000 });
  const scenario = o.scenario;
  const clients: Load[] = Array.from({ length: o.clients }, (_, i) => (scenario === 'kv' ? new LoadClient(ctx, i + 1) : serviceLoad(scenario, ctx, i + 1)));
  const counts = { kills: 0, stops: 0, dbCuts: 0, serverRestarts: 0, nodesAdded: 0, nodesDrained: 0, nodesRestored: 0 };
  /** Every node id seen in the cluster, and those removed while down (their last committed state was taken over: it stays in storage as it was). */
  const everSeen = new Set<NodeId>();
  const restoredAway = new Set<NodeId>();
  const extra: ViolationNote[] = [];
  let livenessViolations = 0;
  const stopped = new Set<number>();
  const result = (): ChaosResult => ({
    seconds: o.seconds,
    seed: o.seed,
    scenario: o.scenario,
    mode: o.mode,
    recovery: [...monitor.recoveryKinds].sort().join(',') || (o.recovery ?? 'unknown'),
    storage: o.storage,
    ...counts,
    requests: ctx.records.length + ctx.serviceRecords.length,
    committed: 0,
    rolledBack: 0,
    refused: 0,
    unknown: 0,
    resumes: ctx.sessions.confirmed,
    lostCommitted: 0,
    duplicates: 0,
    orphans: 0,
    prefixViolations: 0,
    cutViolations: 0,
    livenessViolations,
    worldLines: monitor.highestWorldLine,
    keptVersions: monitor.keptVersions,
    coordinatorRestarts,
    cutStalls: monitor.cutStalls,
    applicationsSeen: monitor.applications.size,
    serviceViolations: 0,
    stats: {},
    violations: 0,
    violationDetails: [],
    elapsedMs: Math.round(wallNow() - t0),
  });

  const startServer = async (): Promise<void> => {
    await server.start(180_000);
    ctx.incarnation = server.starts;
    await configure(ctx, control);
    await monitor.attach();
    if (!(await waitAllUp(monitor, 120_000))) log('not every node came up within 120 s; going on');
    ctx.up = true;
  };

  let loads: Promise<void>[] = [];
  try {
    log(
      `chaos: seed ${o.seed}, ${o.seconds} s, scenario ${o.scenario}, mode ${o.mode}, storage ${o.storage}${schema !== null ? ` (schema ${schema})` : ` (${dataDir})`}, faults ${kinds.join(', ')}`,
    );
    await startServer();
    log(`server up on ${server.url} (pid ${server.pid}); load: ${o.clients} clients × ${o.rate} ${o.scenario === 'kv' ? 'puts' : `${o.scenario} requests`}/s`);
    loads = clients.map((c) => c.run());
    await sleep(2000);

    // ------------------------------------------------------------ the fault schedule
    const end = wallNow() + o.seconds * 1000;
    let bag: FaultKind[] = [];
    const hard = wallNow() + o.seconds * 3000;
    const countOf = (k: FaultKind): number =>
      k === 'kill'
        ? counts.kills
        : k === 'stop'
          ? counts.stops
          : k === 'dbCut'
            ? counts.dbCuts
            : k === 'serverRestart'
              ? counts.serverRestarts
              : k === 'addNode'
                ? counts.nodesAdded
                : counts.nodesDrained + counts.nodesRestored;
    const more = (): boolean => wallNow() < end || (o.everyKindOnce === true && wallNow() < hard && kinds.some((k) => countOf(k) === 0));
    while (more() && kinds.length > 0) {
      if (bag.length === 0) {
        bag = wallNow() >= end ? kinds.filter((k) => countOf(k) === 0) : [...kinds];
        for (let i = bag.length - 1; i > 0; i--) {
          const j = rng.int(0, i);
          [bag[i], bag[j]] = [bag[j]!, bag[i]!];
        }
      }
      const kind = bag.pop()!;
      const hold = rng.int(o.holdMs[0], o.holdMs[1]);
      const pick = rng.next();
      const c = await monitor.poll();
      for (const n of c?.nodes ?? []) everSeen.add(n.id);
      const upNodes = (c?.nodes ?? []).filter((n) => n.status === 'up' && n.pid !== null && !stopped.has(n.pid));
      const target = upNodes.length > 0 ? upNodes[Math.floor(pick * upNodes.length)]! : null;
      const at = ((wallNow() - t0) / 1000).toFixed(1);
      switch (kind) {
        case 'kill':
          if (target === null) break;
          try {
            process.kill(target.pid!, 'SIGKILL');
            counts.kills++;
            log(`[${at}s] SIGKILL ${target.id} (pid ${target.pid})`);
          } catch {
            // exited meanwhile
          }
          break;
        case 'stop': {
          if (target === null) break;
          const pid = target.pid!;
          try {
            process.kill(pid, 'SIGSTOP');
          } catch {
            break;
          }
          stopped.add(pid);
          counts.stops++;
          log(`[${at}s] SIGSTOP ${target.id} (pid ${pid}) for ${hold} ms`);
          await sleep(hold);
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            // the server killed it (heartbeat)
          }
          stopped.delete(pid);
          break;
        }
        case 'dbCut':
          if (proxy === null) break;
          counts.dbCuts++;
          log(`[${at}s] database connection cut for ${hold} ms`);
          proxy.cutNow();
          await sleep(hold);
          proxy.restore();
          break;
        case 'addNode': {
          const a = await control.request('POST', '/api/nodes', {}, {}, 120_000);
          if ('status' in a && a.status === 200) {
            const r = a.json as { node: NodeId; version: number; members: NodeId[]; how: string };
            counts.nodesAdded++;
            everSeen.add(r.node);
            log(`[${at}s] POST /api/nodes: ${r.node} ${r.how}, placement version ${r.version}, members ${r.members.join(',')}`);
          } else log(`[${at}s] POST /api/nodes: ${'status' in a ? `${a.status} ${a.text.slice(0, 200)}` : a.transport}`);
          break;
        }
        case 'removeNode': {
          const nodesNow = c?.nodes ?? [];
          if (target === null || nodesNow.length <= 2) break;
          // Half the time a node this tool has just SIGKILLed (removed while down, if the server has
          // noticed before its automatic restart), else a live one (drained).
          const kill = rng.next() < 0.5;
          if (kill) {
            try {
              process.kill(target.pid!, 'SIGKILL');
              counts.kills++;
            } catch {
              // exited meanwhile
            }
            const until = wallNow() + 2000;
            while (wallNow() < until) {
              const now = await monitor.poll();
              if (now?.nodes.find((n) => n.id === target.id)?.status !== 'up') break;
              await sleep(20);
            }
          }
          const a = await control.request('DELETE', `/api/nodes/${encodeURIComponent(target.id)}`, undefined, {}, 120_000);
          if ('status' in a && a.status === 200) {
            const r = a.json as { node: NodeId; version: number; members: NodeId[]; how: string };
            if (r.how === 'restored') {
              counts.nodesRestored++;
              restoredAway.add(r.node);
            } else counts.nodesDrained++;
            log(
              `[${at}s] ${kill ? `SIGKILL ${target.id}, then ` : ''}DELETE /api/nodes/${target.id}: ${r.how}, placement version ${r.version}, members ${r.members.join(',')}`,
            );
          } else
            log(
              `[${at}s] ${kill ? `SIGKILL ${target.id}, then ` : ''}DELETE /api/nodes/${target.id}: ${'status' in a ? `${a.status} ${a.text.slice(0, 200)}` : a.transport}`,
            );
          break;
        }
        case 'serverRestart': {
          counts.serverRestarts++;
          log(`[${at}s] SIGKILL the server (pid ${server.pid}), start ${server.starts}`);
          ctx.up = false;
          const inc = ctx.incarnation;
          monitor.detach();
          await server.kill();
          for (const cl of clients) cl.orphanIncarnation(inc);
          // Node processes exit when they lose the server; stopped ones cannot notice: end them.
          for (const pid of processesInGroups(server.groups)) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone
            }
          }
          stopped.clear();
          await sleep(rng.int(100, 1000));
          const t = wallNow();
          await startServer();
          log(`  server back after ${((wallNow() - t) / 1000).toFixed(1)} s (pid ${server.pid}, world-line ${monitor.cluster?.worldLine ?? '?'})`);
          break;
        }
      }
      await sleep(rng.int(o.gapMs[0], o.gapMs[1]));
    }

    // ------------------------------------------------------------ settle: faults stop, every request gets decided
    log(`faults over after ${((wallNow() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(counts)}; settling`);
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    proxy?.restore();
    if (!server.running) {
      extra.push({ invariant: 'server', message: 'the server process exited on its own during the run' });
      await startServer();
    }
    if (!(await waitAllUp(monitor, o.settleMs))) {
      livenessViolations++;
      extra.push({
        invariant: 'liveness',
        message: `not every node was up ${o.settleMs} ms after the faults stopped: ${JSON.stringify(monitor.cluster?.nodes.map((n) => `${n.id}:${n.status}`))}`,
      });
      // What the server knew of each node, for whoever has to find out why.
      log(`  cluster at world-line ${monitor.cluster?.worldLine ?? '?'}: ${JSON.stringify(monitor.cluster?.nodes ?? [])}`);
    }
    ctx.stopping = true;
    await Promise.all(loads);
    loads = [];
    const settleEnd = wallNow() + o.settleMs;
    for (;;) {
      let open = 0;
      for (const cl of clients) open += await cl.poll(100);
      if (open === 0) break;
      if (wallNow() > settleEnd) {
        livenessViolations++;
        extra.push({ invariant: 'liveness', message: `${open} requests still undecided ${o.settleMs} ms after the faults stopped` });
        // What the server says of a few of them (their dependencies) and of the cut, for whoever has to find out why.
        const c = await monitor.poll();
        log(
          `  cluster at world-line ${c?.worldLine ?? '?'}, cut ${JSON.stringify(c?.cut ?? {})}: ${JSON.stringify((c?.nodes ?? []).map((n) => ({ id: n.id, status: n.status, worldLine: n.worldLine, version: n.version, persisted: n.persistedVersion, committed: n.committedVersion })))}`,
        );
        const undecided = [...ctx.records, ...ctx.serviceRecords].filter((r) => r.incarnation === ctx.incarnation && r.id !== null && isOpen(r)).slice(0, 3);
        for (const r of undecided) {
          const a = await control.request('GET', `/api/requests/${r.id}`);
          log(`  undecided ${r.session}#${r.q} (${r.resumes} resumes): ${'status' in a ? a.text : a.transport}`);
        }
        break;
      }
      await sleep(300);
    }
    await monitor.poll();
    const highest = { ...monitor.cuts.highest };

    // ------------------------------------------------------------ the end: SIGKILL, then the database
    log(`SIGKILL the server; checking the database`);
    monitor.close();
    await server.kill();
    server.killGroups();
    const runningAtEnd = new Set((monitor.cluster?.nodes ?? []).map((n) => n.id));
    for (const n of runningAtEnd) everSeen.add(n);
    const db = await readFinalState({
      dataDir,
      directUrl,
      schema,
      members: [...new Set([...Object.keys(highest), ...(o.membership === true ? everSeen : [])])],
    });
    if (o.membership === true) {
      // A node removed while down keeps its last committed state in storage (taken over by the others):
      // not part of the final state. Every other node ever present is; each unit must be on exactly one.
      for (const n of restoredAway) {
        if (runningAtEnd.has(n)) {
          // Removed while down, yet the cluster runs it again (a server restart starts its first nodes): its state counts.
          extra.push({
            invariant: 'placement',
            message: `${n} was removed while down (its committed state taken over by the others), but the cluster runs it again at the end`,
          });
          continue;
        }
        const mine = db.nodes.get(n);
        db.nodes.delete(n);
        for (const k of mine?.keys() ?? []) {
          let elsewhere: Json | undefined;
          for (const m of db.nodes.values()) if (m.has(k)) elsewhere = m.get(k);
          if (elsewhere === undefined) db.state.delete(k);
          else db.state.set(k, elsewhere);
        }
      }
      for (const message of unitsOnOneNode(db.nodes)) extra.push({ invariant: 'placement', message });
      log(
        `  final state read from ${[...db.nodes.keys()].join(', ')}${restoredAway.size > 0 ? ` (removed while down, their state taken over: ${[...restoredAway].join(', ')})` : ''}`,
      );
    }
    log(
      `  a coordinator started on the database adopts world-line ${db.worldLine}, cut ${JSON.stringify(db.cut)} (highest cut announced: ${JSON.stringify(highest)})`,
    );
    for (const n of Object.keys(highest)) {
      if ((db.cut[n] ?? 0) < highest[n]!) {
        monitor.cuts.violations++;
        extra.push({
          invariant: 'cut-safety',
          message: `a restarting coordinator adopts ${n}@${db.cut[n] ?? 0}, below the cut ${n}@${highest[n]} announced before`,
        });
      }
    }
    // Restore points of every world-line: from the events, else from the stored record (it keeps the recent ones).
    const kept = new Map(monitor.restorePoints);
    for (const r of db.recoveryCuts) if (!kept.has(r.worldLine)) kept.set(r.worldLine, { ...r.cut, ...(r.kept ?? {}) });
    kept.set(db.recordWorldLine, { ...db.recordCut, ...(db.recordKept ?? {}) });
    // No row of an ended world-line above what any later world-line (up to the record's) kept: each
    // world-line's start deletes the older rows above its restore points, in the same transaction.
    const rowBounds = new RestorePoints(kept);
    let orphanRows = 0;
    const sample: string[] = [];
    for (const row of db.oldRows) {
      const bound = rowBounds.lowest(row.node, row.worldLine + 1, db.recordWorldLine);
      if (row.version > bound.version) {
        orphanRows++;
        if (sample.length < 5)
          sample.push(`${row.node}@${row.version} (world-line ${row.worldLine}; world-line ${bound.worldLine} kept ${row.node} up to ${bound.version})`);
      }
    }
    if (orphanRows > 0)
      extra.push({
        invariant: 'no-orphans',
        message: `${orphanRows} checkpoint rows of ended world-lines above what a later world-line kept are still in the database: ${sample.join(', ')}`,
      });
    // Surviving, for an application: kept by every later world-line, and in the final state (read at the final cut).
    kept.set(db.worldLine, db.cut);
    const restorePoints = new RestorePoints(kept);

    const final = { nodes: db.nodes, cut: db.cut, prefix: ctx.keyPrefix };
    const verdict: Omit<ServiceVerdict, 'serviceViolations' | 'stats'> & Partial<ServiceVerdict> =
      scenario === 'kv'
        ? checkKv({
            records: ctx.records,
            state: db.state,
            keyPrefix: ctx.keyPrefix,
            applications: monitor.applications,
            restorePoints,
            ...(o.membership === true ? { moves: { removedDown: restoredAway } } : {}),
          })
        : scenario === 'wal'
          ? checkWal(ctx.serviceRecords, final)
          : scenario === 'broker'
            ? checkBroker(ctx.serviceRecords, final)
            : checkWorkflow(ctx.serviceRecords, final, travelCapacity(ctx.keyPrefix));
    const r = result();
    r.serviceViolations = verdict.serviceViolations ?? 0;
    r.stats = verdict.stats ?? {};
    r.committed = verdict.committed;
    r.rolledBack = verdict.rolledBack;
    r.refused = verdict.refused;
    r.unknown = verdict.unknown;
    r.lostCommitted = verdict.lostCommitted;
    r.duplicates = verdict.duplicates;
    r.orphans = verdict.orphans + orphanRows;
    r.prefixViolations = verdict.prefixViolations;
    r.cutViolations = monitor.cuts.violations;
    r.livenessViolations = livenessViolations;
    r.worldLines = Math.max(monitor.highestWorldLine, db.worldLine);
    r.keptVersions = monitor.keptVersions;
    r.coordinatorRestarts = coordinatorRestarts;
    r.cutStalls = monitor.cutStalls;
    r.resumes = ctx.sessions.confirmed;
    r.violationDetails = [...verdict.notes, ...monitor.cuts.notes, ...extra].slice(0, 40);
    r.violations =
      r.lostCommitted +
      r.duplicates +
      r.orphans +
      r.prefixViolations +
      r.serviceViolations +
      r.cutViolations +
      r.livenessViolations +
      extra.filter((e) => e.invariant === 'server' || e.invariant === 'placement').length;
    r.elapsedMs = Math.round(wallNow() - t0);
    return r;
  } finally {
    ctx.stopping = true;
    ctx.up = false;
    for (const pid of stopped) {
      try {
        if (alive(pid)) process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    await Promise.allSettled(loads);
    monitor.close();
    await server.kill().catch(() => undefined);
    server.dispose();
    for (const c of clients) c.close();
    control.close();
    await proxy?.close();
    if (!o.keepData) {
      if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
      if (schema !== null && directUrl !== undefined) {
        await dropSchema(directUrl, schema).catch(() => undefined); // if left behind: named dse_chaos_*
      }
    } else log(`data kept: ${dataDir ?? `schema ${schema}`}`);
  }
}

/** Units (see `unitOfStateKey`) held by more than one node's committed state: one message each. */
export function unitsOnOneNode(nodes: ReadonlyMap<NodeId, ReadonlyMap<string, Json>>): string[] {
  const where = new Map<string, Set<NodeId>>();
  for (const [n, state] of nodes) {
    for (const [k, v] of state) {
      const unit = unitOfStateKey(k, v);
      if (unit === null) continue;
      let s = where.get(unit);
      if (s === undefined) where.set(unit, (s = new Set()));
      s.add(n);
    }
  }
  const out: string[] = [];
  for (const [unit, s] of where) if (s.size > 1) out.push(`unit ${unit} is in the committed state of ${[...s].sort().join(' and ')}`);
  return out;
}

interface FinalState {
  worldLine: WorldLine;
  cut: Cut;
  recoveryCuts: { worldLine: WorldLine; cut: Cut; kept?: Cut }[];
  state: Map<string, Json>;
  /** The same, node by node. */
  nodes: Map<NodeId, Map<string, Json>>;
  /** The stored coordinator record as the killed server left it. */
  recordWorldLine: WorldLine;
  recordCut: Cut;
  /** Its restore points (absent: a record from before precise recovery, the cut). */
  recordKept: Cut | undefined;
  /** Checkpoint rows of world-lines before the record's (read before the final coordinator start fenced them). */
  oldRows: { node: NodeId; version: number; worldLine: WorldLine }[];
}

/**
 * Opens the database the killed server left, lists the rows of ended world-lines (none may lie above
 * what a later world-line kept), then starts a coordinator on it exactly as a restarting server does
 * (it recomputes the cut from the stored rows) and reads every node's committed state at that cut.
 */
async function readFinalState(w: {
  dataDir: string | undefined;
  directUrl: string | undefined;
  schema: string | null;
  members: NodeId[];
}): Promise<FinalState> {
  let opened: OpenedStorage | null = null;
  for (let attempt = 0; opened === null; attempt++) {
    try {
      opened =
        w.dataDir !== undefined
          ? await openStorage({ kind: 'pglite', dataDir: w.dataDir })
          : await openStorage({ kind: 'postgres', databaseUrl: w.directUrl!, schema: w.schema! });
    } catch (e) {
      if (attempt >= 20) throw e;
      await sleep(500); // the killed server's lock, or its processes, going away
    }
  }
  try {
    const storage = opened.storage;
    const rec = await storage.loadCoordinator();
    if (rec === null) throw new Error('the database has no coordinator record');
    const oldRows: { node: NodeId; version: number; worldLine: WorldLine }[] = [];
    for (let wl = 1; wl < rec.worldLine; wl++)
      for (const row of await storage.listCheckpoints(wl)) oldRows.push({ node: row.node, version: row.version, worldLine: wl });
    const clock = new RealClock(Math.floor(wallNow()));
    const coordinator = new Coordinator(
      { clock, network: { send: () => undefined }, storage, observer: { emit: () => undefined } },
      { mode: 'speculative', cutKind: 'exact', heartbeatTimeoutMs: null, pruneIntervalMs: 3_600_000, storageRetryMs: 100 },
    );
    await coordinator.start(w.members);
    coordinator.stop();
    clock.cancelAll();
    const cut = { ...coordinator.cut };
    const state = new Map<string, Json>();
    const nodes = new Map<NodeId, Map<string, Json>>();
    for (const n of Object.keys(cut)) {
      const mine = new Map<string, Json>();
      nodes.set(n, mine);
      if ((cut[n] ?? 0) === 0) continue;
      const cp = await storage.loadCheckpoint(n, cut[n]!);
      if (cp === null) throw new Error(`the committed checkpoint ${n}@${cut[n]} is not in the database`);
      for (const [k, v] of cp.state) {
        const key = appKeyOf(k);
        if (key === null) continue;
        state.set(key, v);
        mine.set(key, v);
      }
    }
    return {
      worldLine: coordinator.worldLine,
      recordWorldLine: rec.worldLine,
      recordCut: rec.cut,
      recordKept: rec.kept,
      cut,
      recoveryCuts: rec.recoveryCuts,
      state,
      nodes,
      oldRows,
    };
  } finally {
    await opened.close();
  }
}
