import type { Mode, RecoveryKind } from '@dse/shared';
import { wallNow } from '../live/clock';
import { APPS } from '../live/apps';
import { Rng } from '../sim/rng';
import { HttpClient } from './api';
import { FaultSchedule, faultKinds } from './faults';
import { checkFinalState } from './final-state';
import { KvLoadClient } from './kv-load';
import { Monitor, waitAllUp } from './monitor';
import type { RunContext } from './run-context';
import { sleep } from './run-context';
import type { RunStorage } from './setup';
import { configure, disposeStorage, prepareStorage } from './setup';
import { ServerProcess, freePort } from './server-proc';
import type { Load } from './service-load';
import { serviceLoad } from './service-load';
import { SessionResumes, isOpen } from './tracked';
import type { ViolationNote } from './verify';

export { unitsOnOneNode } from './final-state';

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

// ---------------------------------------------------------------- the run, phase by phase

/** The parts of a running chaos run. */
interface Rig {
  ctx: RunContext;
  monitor: Monitor;
  /** The run's HTTP client for control requests. */
  control: HttpClient;
  clients: Load[];
  /** Starts the server (again), configures it and waits for its nodes. */
  startServer(): Promise<void>;
  log: (line: string) => void;
}

/** Setup: the server process on the run's storage, the monitor, and the load clients (not started). */
async function setUp(o: ChaosOptions, storage: RunStorage, onCoordinatorRestart: () => void): Promise<Rig> {
  const log = o.log;
  const port = await freePort();
  const onServerLog = (l: string): void => {
    // The live cluster's line when its coordinator stopped on an error and a new one starts from storage.
    if (l.includes('coordinator stopped on an error')) {
      onCoordinatorRestart();
      if (!o.serverLog) log(`  [server] ${l}`);
    }
    if (o.serverLog) log(`  [server] ${l}`);
  };
  const server = new ServerProcess({
    port,
    ...(storage.dataDir !== undefined ? { dataDir: storage.dataDir } : {}),
    ...(storage.serverDbUrl !== undefined ? { databaseUrl: storage.serverDbUrl } : {}),
    onLog: onServerLog,
  });
  const ctx: RunContext = {
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
  const clients: Load[] = Array.from({ length: o.clients }, (_, i) => (scenario === 'kv' ? new KvLoadClient(ctx, i + 1) : serviceLoad(scenario, ctx, i + 1)));
  const startServer = async (): Promise<void> => {
    await server.start(180_000);
    ctx.incarnation = server.starts;
    await configure(ctx, control);
    await monitor.attach();
    if (!(await waitAllUp(monitor, 120_000))) log('not every node came up within 120 s; going on');
    ctx.up = true;
  };
  return { ctx, monitor, control, clients, startServer, log };
}

/**
 * Settle: the faults are over; every node must come up and every request be decided within
 * `settleMs`. Returns the liveness violations (each also a note in `extra`).
 */
async function settle(rig: Rig, faults: FaultSchedule, proxyRestore: () => void, loads: Promise<void>[], extra: ViolationNote[]): Promise<number> {
  const { ctx, monitor, control, clients, log } = rig;
  const o = ctx.o;
  const server = ctx.server;
  let livenessViolations = 0;
  faults.continueStopped();
  proxyRestore();
  if (!server.running) {
    extra.push({ invariant: 'server', message: 'the server process exited on its own during the run' });
    await rig.startServer();
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
  return livenessViolations;
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
  const kinds = faultKinds(o);
  if (o.storage !== 'postgres' && (o.faults ?? []).includes('dbCut'))
    log('database cuts need --storage postgres (PGlite runs inside the server): none this run');

  // ------------------------------------------------------------ setup
  const storage = await prepareStorage(o);
  let coordinatorRestarts = 0;
  const rig = await setUp(o, storage, () => coordinatorRestarts++);
  const { ctx, monitor, control, clients } = rig;
  const server = ctx.server;
  const faults = new FaultSchedule({ ctx, monitor, control, clients, proxy: storage.proxy, startServer: rig.startServer.bind(rig), t0 }, rng, kinds);
  const extra: ViolationNote[] = [];
  let loads: Promise<void>[] = [];
  try {
    log(
      `chaos: seed ${o.seed}, ${o.seconds} s, scenario ${o.scenario}, mode ${o.mode}, storage ${o.storage}${storage.schema !== null ? ` (schema ${storage.schema})` : ` (${storage.dataDir})`}, faults ${kinds.join(', ')}`,
    );
    await rig.startServer();
    log(`server up on ${server.url} (pid ${server.pid}); load: ${o.clients} clients × ${o.rate} ${o.scenario === 'kv' ? 'puts' : `${o.scenario} requests`}/s`);

    // ------------------------------------------------------------ load, and the faults under it
    loads = clients.map((c) => c.run());
    await sleep(2000);
    await faults.run();

    // ------------------------------------------------------------ settle: faults stop, every request gets decided
    log(`faults over after ${((wallNow() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(faults.counts)}; settling`);
    const livenessViolations = await settle(rig, faults, () => storage.proxy?.restore(), loads, extra);
    loads = [];
    await monitor.poll();
    const highest = { ...monitor.cuts.highest };

    // ------------------------------------------------------------ the end: SIGKILL, then the database
    log(`SIGKILL the server; checking the database`);
    monitor.close();
    await server.kill();
    server.killGroups();
    const runningAtEnd = new Set((monitor.cluster?.nodes ?? []).map((n) => n.id));
    for (const n of runningAtEnd) faults.everSeen.add(n);
    const final = await checkFinalState({ o, ctx, monitor, storage, highest, runningAtEnd, everSeen: faults.everSeen, restoredAway: faults.restoredAway });
    extra.push(...final.notes);
    const { verdict } = final;
    return {
      seconds: o.seconds,
      seed: o.seed,
      scenario: o.scenario,
      mode: o.mode,
      recovery: [...monitor.recoveryKinds].sort().join(',') || (o.recovery ?? 'unknown'),
      storage: o.storage,
      ...faults.counts,
      requests: ctx.records.length + ctx.serviceRecords.length,
      committed: verdict.committed,
      rolledBack: verdict.rolledBack,
      refused: verdict.refused,
      unknown: verdict.unknown,
      resumes: ctx.sessions.confirmed,
      lostCommitted: verdict.lostCommitted,
      duplicates: verdict.duplicates,
      orphans: verdict.orphans + final.orphanRows,
      prefixViolations: verdict.prefixViolations,
      cutViolations: monitor.cuts.violations,
      livenessViolations,
      worldLines: Math.max(monitor.highestWorldLine, final.worldLine),
      keptVersions: monitor.keptVersions,
      coordinatorRestarts,
      cutStalls: monitor.cutStalls,
      applicationsSeen: monitor.applications.size,
      serviceViolations: verdict.serviceViolations ?? 0,
      stats: verdict.stats ?? {},
      violations:
        verdict.lostCommitted +
        verdict.duplicates +
        verdict.orphans +
        final.orphanRows +
        verdict.prefixViolations +
        (verdict.serviceViolations ?? 0) +
        monitor.cuts.violations +
        livenessViolations +
        extra.filter((e) => e.invariant === 'server' || e.invariant === 'placement').length,
      violationDetails: [...verdict.notes, ...monitor.cuts.notes, ...extra].slice(0, 40),
      elapsedMs: Math.round(wallNow() - t0),
    };
  } finally {
    ctx.stopping = true;
    ctx.up = false;
    for (const pid of faults.stopped) {
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
    await disposeStorage(storage, o.keepData === true, log);
  }
}
