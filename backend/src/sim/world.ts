import type { CutKind, InspectionEvent, Mode, NodeId, RecoveryKind } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import { Coordinator } from '../core/coordinator';
import type { WireMessage } from '../core/messages';
import { COORDINATOR } from '../core/messages';
import type { RetiredNode } from '../core/removed';
import { readRemovedNode } from '../core/removed';
import { DseNode } from '../core/node';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Network, Storage } from '../core/ports';
import { SessionHost } from '../core/session';
import type { PlacementView } from '../services/common';
import { withMembership } from '../services/membership';
import { MemoryStorage } from '../storage/memory';
import type { NodeView, Violation } from './checker';
import { Checker } from './checker';
import type { MembershipBug, ServiceBug } from './bugs';
import { MEMBERSHIP_BUGS, plantMembershipBug, plantServiceBug, SERVICE_BUGS } from './bugs';
import type { MembershipChangeKind } from './membership';
import { checkPlacement, MembershipActor } from './membership';
import { Rng } from './rng';
import type { Scenario, ScenarioName } from './scenario';
import { scenarioByName } from './scenarios';
import { ProcessClock, Scheduler } from './scheduler';

/**
 * Bugs a test plants through the ports, to show the checker catches each: the runtime's (through the
 * network and the storage) and the services' (through the app's action context, see `bugs.ts`).
 *
 * - `cut-ignores-deps`: the coordinator never sees dependencies (persisted reports lose them);
 * - `no-world-line-check`: messages from a rolled-back world-line are applied;
 * - `no-dedup`: dedup tables are not persisted;
 * - `announce-before-save`: the storage acknowledges a new world-line's record before it lands, so the
 *   coordinator announces a world-line that a crash can lose;
 * - `prune-before-save`: the cut's save is acknowledged but not stored, and the coordinator prunes below
 *   a cut that storage does not hold;
 * - `restart-trusts-saved-cut`: a restarted coordinator finds no rows to rebuild from and trusts the cut
 *   it saved last, below the one it announced;
 * - `durable-early-release`: the storage acknowledges a checkpoint before it is durable, so durable mode
 *   releases messages of versions not yet persisted;
 * - `duplicate-null-answer`: a repeated request is answered with a null result;
 * - `survive-without-probe`: a session takes its answers as having survived a recovery without asking
 *   (its news of the new world-line claims every version was kept).
 */
export type PlantedBug =
  | 'cut-ignores-deps'
  | 'no-world-line-check'
  | 'no-dedup'
  | 'announce-before-save'
  | 'prune-before-save'
  | 'restart-trusts-saved-cut'
  | 'durable-early-release'
  | 'duplicate-null-answer'
  | 'survive-without-probe'
  | ServiceBug
  | MembershipBug;
export const RUNTIME_BUGS: readonly PlantedBug[] = [
  'cut-ignores-deps',
  'no-world-line-check',
  'no-dedup',
  'announce-before-save',
  'prune-before-save',
  'restart-trusts-saved-cut',
  'durable-early-release',
  'duplicate-null-answer',
  'survive-without-probe',
];
export const PLANTED_BUGS: readonly PlantedBug[] = [...RUNTIME_BUGS, ...SERVICE_BUGS, ...MEMBERSHIP_BUGS];

export interface SimOptions {
  seed: number;
  mode: Mode;
  cutKind: CutKind;
  recovery: RecoveryKind;
  faults: boolean;
  /** With faults: the coordinator crashes too (its memory lost; it restarts from storage). Default on. */
  coordinatorCrashes?: boolean;
  nodes: number;
  sessions: number;
  requestsPerSession: number;
  /** Crashes per run when faults are on (at least this many, a few more at random). */
  crashesMin: number;
  checkpointIntervalMs: number;
  /** The app, workload and extra invariants; default `kvtest`, the simulator's own test app. */
  scenario?: ScenarioName | Scenario;
  plantedBug?: PlantedBug;
  /**
   * Membership changes (service scenarios only): the nodes run `withMembership(app)` with all nodes but
   * the last as founders, the clients route by one shared placement and follow `WrongOwner`, and a seeded
   * membership actor adds a node, drains a live one or removes a crashed one (see `membership.ts`),
   * `membershipChanges` times (default 1–3), alongside the crashes. Invariant `placement` at the end.
   */
  membership?: boolean;
  membershipChanges?: number;
  /** The kinds of change the actor draws from during the workload (default add and drain: see `DURING_WORKLOAD`). */
  membershipKinds?: readonly MembershipChangeKind[];
  /** Once the workload has settled, a member is killed and removed, its committed state taken over from storage (default on with membership). */
  membershipFinalRemoval?: boolean;
  /** A storage other than the in-memory one (the PGlite runs); the simulator still adds its faults. */
  storage?: Storage;
  /** Called with every inspection event (the playground's simulation mode). */
  onEvent?: (e: InspectionEvent) => void;
  /** Nodes emit `stateChanged` events (the playground's replays show each node's state); default off. */
  emitStateChanges?: boolean;
  /** Measures the coordinator's CPU per message it handles (the scale benchmark); the counts are added to it. */
  coordinatorMeter?: CoordinatorMeter;
  /** The coordinator recomputes the cut from the whole graph on every report (the way before its cut index; for benchmarks). */
  coordinatorWithoutCutIndex?: boolean;
}

/**
 * The coordinator's time in its `receive` calls (the simulator is single-threaded, and time spent waiting
 * is virtual): persisted reports, those that changed the cut (their time includes handing the new cut to
 * the simulated network, one message per live node and client), and the rest. Each report's time is kept
 * too: on a shared machine a call now and then waits for a CPU, and the median is what the code costs.
 */
export interface CoordinatorMeter {
  reports: number;
  reportMs: number;
  cutChanges: number;
  cutChangeMs: number;
  otherMessages: number;
  otherMs: number;
  /** µs of each report that changed the cut, and of each that did not. */
  cutChangeUs: number[];
  otherReportUs: number[];
}

export function emptyCoordinatorMeter(): CoordinatorMeter {
  return { reports: 0, reportMs: 0, cutChanges: 0, cutChangeMs: 0, otherMessages: 0, otherMs: 0, cutChangeUs: [], otherReportUs: [] };
}

/** How often (virtual ms) the simulated supervisor checks that the nodes the coordinator thinks up still run. */
const HEARTBEAT_CHECK_MS = 200;

export const DEFAULT_SIM_OPTIONS: Omit<SimOptions, 'seed'> = {
  mode: 'speculative',
  cutKind: 'exact',
  recovery: 'precise',
  faults: true,
  nodes: 4,
  sessions: 8,
  requestsPerSession: 26,
  crashesMin: 2,
  checkpointIntervalMs: 10,
};

/** How long a drained node's last version may take to commit before it is stopped as a failure instead (virtual ms). */
const LEAVE_WAIT_MS = 2000;

export interface SimResult {
  seed: number;
  violations: Violation[];
  trace: string[];
  requests: number;
  committed: number;
  rolledBack: number;
  kills: number;
  rollbacks: number;
  worldLines: number;
  messages: number;
  checkpoints: number;
  /** Closed uncommitted versions that survived recoveries, and closed versions rolled back (lost ones included). */
  versionsKept: number;
  versionsRolledBack: number;
  coordinatorRestarts: number;
  virtualMs: number;
  /** The membership changes made (`v<version> <kind> <node>`), with `membership` on. */
  membershipChanges: string[];
  /** Drained nodes stopped without a world-line (`DseNode.leave`); the others were removed as failures. */
  quietLeaves: number;
  /** Changes the control plane stopped half-way through, and nodes it brought forward once started again. */
  interruptedChanges: number;
  nodesBroughtForward: number;
}

/** Counts of several seeds' results, summed (the CLI's totals, the simulation tests' checks). */
export interface SimTotals {
  seeds: number;
  violations: number;
  requests: number;
  committed: number;
  rolledBack: number;
  kills: number;
  rollbacks: number;
  worldLines: number;
  messages: number;
  checkpoints: number;
  versionsKept: number;
  versionsRolledBack: number;
  coordinatorRestarts: number;
  membershipChanges: number;
  quietLeaves: number;
  interruptedChanges: number;
  nodesBroughtForward: number;
}

export function emptyTotals(): SimTotals {
  return {
    seeds: 0,
    violations: 0,
    requests: 0,
    committed: 0,
    rolledBack: 0,
    kills: 0,
    rollbacks: 0,
    worldLines: 0,
    messages: 0,
    checkpoints: 0,
    versionsKept: 0,
    versionsRolledBack: 0,
    coordinatorRestarts: 0,
    membershipChanges: 0,
    quietLeaves: 0,
    interruptedChanges: 0,
    nodesBroughtForward: 0,
  };
}

/** Adds one seed's result to `t`; returns `t`. */
export function addResult(t: SimTotals, r: SimResult): SimTotals {
  t.seeds++;
  t.violations += r.violations.length;
  t.requests += r.requests;
  t.committed += r.committed;
  t.rolledBack += r.rolledBack;
  t.kills += r.kills;
  t.rollbacks += r.rollbacks;
  t.worldLines += r.worldLines;
  t.messages += r.messages;
  t.checkpoints += r.checkpoints;
  t.versionsKept += r.versionsKept;
  t.versionsRolledBack += r.versionsRolledBack;
  t.coordinatorRestarts += r.coordinatorRestarts;
  t.membershipChanges += r.membershipChanges.length;
  t.quietLeaves += r.quietLeaves;
  t.interruptedChanges += r.interruptedChanges;
  t.nodesBroughtForward += r.nodesBroughtForward;
  return t;
}

/** One line per violation of a seed's run: `seed S: invariant: message`. */
export function formatViolations(r: SimResult): string[] {
  return r.violations.map((v) => `seed ${r.seed}: ${v.invariant}: ${v.message}`);
}

/** Storage as the simulator sees it: slow, sometimes failing, and reporting what it made durable. */
class SimStorage implements Storage {
  constructor(
    private readonly inner: Storage,
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly faults: boolean,
    private readonly onDurable: (records: readonly CheckpointRecord[]) => void,
    private readonly bug: PlantedBug | undefined,
  ) {}

  private latency(): number {
    const base = 0.5 + this.rng.next() * 3;
    return this.faults && this.rng.chance(0.05) ? base + this.rng.next() * 40 : base;
  }

  /** Runs `op` after a delay; with faults, sometimes fails before it, sometimes after it (indefinite). */
  private timed<T>(op: () => Promise<T>, mayFail: boolean): Promise<T> {
    const failBefore = mayFail && this.faults && this.rng.chance(0.02);
    const failAfter = mayFail && this.faults && !failBefore && this.rng.chance(0.02);
    const delay = this.latency();
    return new Promise<T>((resolve, reject) => {
      this.sched.after(delay, () => {
        if (failBefore) {
          reject(new DseError('StorageUnavailable', 'simulated storage failure'));
          return;
        }
        op().then((v) => (failAfter ? reject(new DseError('StorageUnavailable', 'simulated failure after the write')) : resolve(v)), reject);
      });
    });
  }

  /** A planted bug: the storage says done at once, and does it later (if at all). */
  private early(op: () => Promise<void>): Promise<void> {
    this.sched.after(5 + this.rng.next() * 20, () => void op().catch(() => undefined));
    return Promise.resolve();
  }

  writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void> {
    // The planted 'no-dedup' bug: dedup tables are left out of what is persisted.
    const written =
      this.bug === 'no-dedup'
        ? records.map((r) => ({ ...r, changes: { set: r.changes.set.filter(([k]) => !k.startsWith('r:dd:')), del: r.changes.del } }))
        : records;
    const write = (): Promise<void> => this.inner.writeCheckpoints(written).then(() => this.onDurable(written));
    if (this.bug === 'durable-early-release') return this.early(write);
    return this.timed(write, true);
  }
  loadCheckpoint(node: NodeId, version: number): Promise<LoadedCheckpoint | null> {
    return this.timed(() => this.inner.loadCheckpoint(node, version), true);
  }
  listCheckpoints(worldLine: number): Promise<CheckpointMeta[]> {
    if (process.env.DSE_DEBUG)
      void this.inner
        .listCheckpoints(worldLine)
        .then((rows) =>
          console.log(`t=${this.sched.now} rows ${JSON.stringify(rows.filter((r) => r.node === 'n1').map((r) => [r.version, r.worldLine, r.prevVersion]))}`),
        );
    if (this.bug === 'restart-trusts-saved-cut') return this.timed(() => Promise.resolve([]), true);
    return this.timed(() => this.inner.listCheckpoints(worldLine), true);
  }
  loadCoordinator(): Promise<CoordinatorRecord | null> {
    return this.timed(
      () =>
        this.inner.loadCoordinator().then((r) => {
          if (process.env.DSE_DEBUG) console.log(`t=${this.sched.now} loaded ${JSON.stringify(r).slice(0, 200)}`);
          return r;
        }),
      false,
    );
  }
  saveCoordinator(record: CoordinatorRecord): Promise<void> {
    if (process.env.DSE_DEBUG) console.log(`t=${this.sched.now} saveCoordinator ${JSON.stringify(record).slice(0, 200)}`);
    if (this.bug === 'announce-before-save' && record.starts === true) return this.early(() => this.inner.saveCoordinator(record));
    if (this.bug === 'prune-before-save' && record.starts !== true) return this.timed(() => Promise.resolve(), true);
    return this.timed(() => this.inner.saveCoordinator(record), true);
  }
  prune(node: NodeId, version: number): Promise<void> {
    return this.timed(() => this.inner.prune(node, version), true);
  }
}

type Endpoint = { receive(msg: WireMessage): void };

/** Runs one seeded simulation and checks it. */
export async function runSeed(opts: SimOptions): Promise<SimResult> {
  const sched = new Scheduler();
  const rng = new Rng(opts.seed);
  // The faults aimed at a drained node's leave draw from their own sequence: the rest of a seed's run stays as it was.
  const leaveRng = new Rng(opts.seed * 7919 + 17);
  // Likewise the control plane's stops half-way through a change.
  const controlRng = new Rng(opts.seed * 104729 + 31);
  const nodeIds: NodeId[] = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
  const nodes = new Map<NodeId, DseNode>();
  const clocks = new Map<NodeId, ProcessClock>();
  let kills = 0;
  let leaves = 0;
  let rollbacks = 0;
  let messages = 0;
  let checkpoints = 0;

  const inspect = (id: NodeId): NodeView | undefined => {
    const n = nodes.get(id);
    if (n === undefined) return undefined;
    return { status: n.status, version: n.version, appState: n.appState(), outboxVersions: n.outboxVersions() };
  };
  const scenario = typeof opts.scenario === 'object' ? opts.scenario : scenarioByName(opts.scenario ?? 'kvtest');
  const run = scenario.createRun();
  const membershipOn = opts.membership === true && scenario.name !== 'kvtest';
  /** With membership: the first members; the last node joins later, if the actor adds it. */
  const founders = membershipOn ? nodeIds.slice(0, Math.max(1, nodeIds.length - 1)) : nodeIds;
  const app = membershipOn
    ? plantMembershipBug(withMembership(plantServiceBug(scenario.app, opts.plantedBug), { founders }), opts.plantedBug)
    : plantServiceBug(scenario.app, opts.plantedBug);
  /** Nodes taken out of the runtime for good (removed while down), and those being taken out (never restarted). */
  const removed = new Set<NodeId>();
  const removing = new Set<NodeId>();
  const runtimeNodes = (): NodeId[] => nodeIds.filter((n) => !removed.has(n));
  const checker = new Checker(inspect, opts.mode === 'none', 20, run.checks);
  if (opts.mode === 'durable') checker.expectDurableSync();
  let coordinatorCrashAfterWorldLine: (() => void) | null = null;
  const observer = {
    emit(e: InspectionEvent): void {
      if (e.type === 'rollback' && e.discarded !== null) rollbacks++;
      else if (e.type === 'checkpointPersisted') checkpoints++;
      checker.onEvent(e);
      opts.onEvent?.(e);
      if (e.type === 'worldLineChanged') coordinatorCrashAfterWorldLine?.();
    },
  };

  const faults = opts.faults;
  const endpoints = new Map<string, Endpoint>();
  const isControl = (m: WireMessage): boolean => !('h' in m);
  /** Replies already sent, for the planted `duplicate-null-answer`. */
  const repliesSent = new Set<string>();
  const plant = (from: string, to: string, msg: WireMessage): WireMessage => {
    switch (opts.plantedBug) {
      case 'cut-ignores-deps':
        return msg.kind === 'persisted' ? { ...msg, deps: {} } : msg;
      case 'duplicate-null-answer': {
        if (msg.kind !== 'reply' || msg.status !== 'ok') return msg;
        const key = `${from}/${msg.caller}/${msg.seq}`;
        if (!repliesSent.has(key)) {
          repliesSent.add(key);
          return msg;
        }
        return { ...msg, result: null };
      }
      case 'survive-without-probe':
        if (msg.kind !== 'worldLine' || to !== 'client') return msg;
        return { ...msg, recoveryCuts: msg.recoveryCuts.map((r) => ({ ...r, kept: Object.fromEntries(nodeIds.map((n) => [n, Number.MAX_SAFE_INTEGER])) })) };
      default:
        return msg;
    }
  };
  const meter = opts.coordinatorMeter;
  const measured = (target: Endpoint, d: WireMessage): void => {
    const cutBefore = coordinator.cut;
    const t0 = performance.now();
    target.receive(d);
    const ms = performance.now() - t0;
    if (d.kind !== 'persisted') {
      meter!.otherMessages++;
      meter!.otherMs += ms;
      return;
    }
    meter!.reports++;
    meter!.reportMs += ms;
    if (coordinator.cut !== cutBefore) {
      meter!.cutChanges++;
      meter!.cutChangeMs += ms;
      meter!.cutChangeUs.push(ms * 1000);
    } else meter!.otherReportUs.push(ms * 1000);
  };
  const network = (from: string): Network => ({
    send(to: string, msg: WireMessage): void {
      // The host reports writes itself: a node's own first report does not leave its process.
      if (hostReports && msg.kind === 'persisted' && msg.again !== true && from !== 'server') return;
      messages++;
      const m = plant(from, to, msg);
      const control = isControl(m);
      if (faults && !control && rng.chance(0.01)) return; // lost
      const copies = faults && !control && rng.chance(0.03) ? 2 : 1; // duplicated
      for (let c = 0; c < copies; c++) {
        // Mostly 0.2–2 ms, sometimes much later: messages overtake each other.
        let delay = 0.2 + rng.next() * 1.8;
        if (faults && rng.chance(0.05)) delay += rng.next() * 30;
        sched.after(delay, () => {
          const target = endpoints.get(to);
          if (process.env.DSE_DEBUG && (m.kind === 'hello' || m.kind === 'prepare' || m.kind === 'recover' || m.kind === 'prepared'))
            console.log(`t=${sched.now} ${m.kind} ${from}->${to} ${target === undefined ? 'DROPPED' : ''} ${JSON.stringify(m).slice(0, 120)}`);
          if (target === undefined) return;
          let d = m;
          if (opts.plantedBug === 'no-world-line-check' && 'h' in d) {
            const node = nodes.get(to);
            if (node !== undefined && d.h.worldLine < node.worldLine) d = { ...d, h: { ...d.h, worldLine: node.worldLine } };
          }
          try {
            if (meter !== undefined && to === COORDINATOR) measured(target, d);
            else target.receive(d);
          } catch (e) {
            // The runtime's own assertions caught an inconsistency: a violation, and the run goes on.
            checker.fail('internal', `${to} threw on a ${d.kind} message: ${e instanceof Error ? e.message : String(e)}`, sched.now);
          }
        });
      }
    },
  });

  const memory = new MemoryStorage();
  const storage = new SimStorage(opts.storage ?? memory, sched, rng, faults, (r) => checker.onDurable(r), opts.plantedBug);
  // Half the seeds run as the live cluster does: the host (the server, which writes the checkpoints)
  // reports each write to the coordinator itself, and a node sends only its reports of kept versions
  // after a recovery (`again`); the other half as nodes that write and report for themselves.
  const hostReports = opts.mode !== 'none' && rng.chance(0.5);
  const reportingStorage = (): Storage =>
    !hostReports
      ? storage
      : {
          writeCheckpoints: (records) =>
            storage.writeCheckpoints(records).then(() => {
              for (const r of records)
                network('server').send(COORDINATOR, {
                  kind: 'persisted',
                  node: r.node,
                  worldLine: r.worldLine,
                  version: r.version,
                  prevVersion: r.prevVersion,
                  deps: r.deps,
                });
            }),
          loadCheckpoint: (node, version) => storage.loadCheckpoint(node, version),
          listCheckpoints: (worldLine) => storage.listCheckpoints(worldLine),
          loadCoordinator: () => storage.loadCoordinator(),
          saveCoordinator: (record) => storage.saveCoordinator(record),
          prune: (node, version) => storage.prune(node, version),
        };

  // The coordinator: it may crash (its memory lost) and start again from storage, as the live server's does.
  let coordClock = new ProcessClock(sched);
  let coordinatorRestarts = 0;
  let coordinatorDown = false;
  /** The current coordinator has started (loaded from storage, recovered): a removal may be told to it. */
  let coordinatorReady = true;
  const makeCoordinator = (): Coordinator =>
    new Coordinator(
      {
        clock: coordClock,
        network: network(COORDINATOR),
        storage,
        observer,
        onFatal: (e) => {
          // Losing a race to a dead coordinator's late save (StaleWorldLine, StaleCut) is an operating
          // error: the coordinator starts again from storage. Anything else is a bug.
          if (!isDseError(e) || (e.code !== 'StaleWorldLine' && e.code !== 'StaleCut')) {
            checker.fail('internal', `the coordinator stopped on an error: ${e instanceof Error ? e.message : String(e)}`, sched.now);
          }
          crashCoordinator();
        },
      },
      // DSE_CHECK_CUT=1: the coordinator checks its cut index against the whole graph on every report.
      {
        mode: opts.mode,
        cutKind: opts.cutKind,
        recovery: opts.recovery,
        pruneIntervalMs: 50,
        prepareTimeoutMs: 80,
        checkCut: process.env.DSE_CHECK_CUT === '1',
        cutIndex: opts.coordinatorWithoutCutIndex !== true,
      },
    );
  let coordinator = makeCoordinator();
  endpoints.set(COORDINATOR, coordinator);
  const host = new SessionHost(
    'client',
    { clock: new ProcessClock(sched), network: network('client'), observer },
    { retransmitMs: 30, closedRequestsKept: Infinity },
  );
  endpoints.set('client', host);
  coordinator.addClient('client');

  const startCoordinator = (): void => {
    coordClock = new ProcessClock(sched);
    coordinator = makeCoordinator();
    endpoints.set(COORDINATOR, coordinator);
    coordinatorDown = false;
    const c = coordinator;
    c.addClient('client', { announce: true });
    coordinatorReady = false;
    c.start(runtimeNodes(), { resume: true }).then(
      // A record saved before a removal names the removed node: forgotten again.
      () => {
        // Resolved by a crash too (a stopped coordinator's start gives up quietly).
        if (c !== coordinator || coordinatorDown) return;
        for (const n of removed) c.removeNode(n);
        // The exits it missed while down (a supervisor knows which processes run): a node whose process
        // is gone is down, even if a hello it sent before dying arrived late.
        for (const n of runtimeNodes()) if (!endpoints.has(n) && c.members.get(n) === 'up') c.nodeFailed(n, 'exit');
        coordinatorReady = true;
      },
      (e: unknown) => {
        if (c !== coordinator) return;
        if (!isDseError(e) || (e.code !== 'StaleWorldLine' && e.code !== 'StaleCut')) {
          checker.fail('internal', `the coordinator failed to start: ${e instanceof Error ? e.message : String(e)}`, sched.now);
        }
        crashCoordinator();
      },
    );
  };
  function crashCoordinator(): void {
    if (coordinatorDown) return;
    if (process.env.DSE_DEBUG) console.log(`t=${sched.now} crash coordinator`);
    coordinatorDown = true;
    coordinatorRestarts++;
    coordinator.stop();
    coordClock.cancelAll();
    endpoints.delete(COORDINATOR);
    sched.after(5 + rng.next() * 30, startCoordinator);
  }

  let incarnations = 0;
  const startNode = (id: NodeId): void => {
    const clock = new ProcessClock(sched);
    const incarnation = ++incarnations;
    if (process.env.DSE_DEBUG) console.log(`t=${sched.now} start ${id} #${incarnation}`);
    const onFatal = (e: unknown): void => {
      checker.fail('internal', `${id} stopped on an error: ${e instanceof Error ? e.message : String(e)}`, sched.now);
      crash(id);
    };
    const node = new DseNode(
      id,
      app,
      { clock, network: network(id), storage: reportingStorage(), observer, onFatal, incarnation },
      {
        mode: opts.mode,
        cutKind: opts.cutKind,
        checkpointIntervalMs: opts.checkpointIntervalMs,
        retransmitMs: 30,
        storageRetryMs: 5,
        emitStateChanges: opts.emitStateChanges === true,
      },
    );
    nodes.set(id, node);
    clocks.set(id, clock);
    endpoints.set(id, node);
    node.start();
  };

  const crash = (id: NodeId): void => {
    const node = nodes.get(id);
    if (node === undefined || endpoints.get(id) !== node) return;
    kills++;
    if (process.env.DSE_DEBUG) console.log(`t=${sched.now} crash ${id}`);
    node.stop();
    checker.onCrash(id);
    clocks.get(id)!.cancelAll();
    endpoints.delete(id);
    // The coordinator sees the process exit a little later; not once a new process of the node has
    // started (that one says hello itself), or the exit of the old one would fail the new one.
    sched.after(1 + rng.next() * 5, () => {
      if (nodes.get(id) === node && !coordinatorDown) coordinator.nodeFailed(id, 'exit');
    });
  };

  // Drive the scheduler; microtasks (promise reactions) run between steps, deterministically.
  let settled = false;
  const drive = async (until: () => boolean, limitMs: number): Promise<void> => {
    const end = sched.now + limitMs;
    while (!until()) {
      if (sched.step(end)) {
        await Promise.resolve();
        await Promise.resolve();
        continue;
      }
      // Nothing due before `end`: let pending promise reactions run, then stop if still nothing moves.
      await new Promise<void>((r) => setImmediate(r));
      if (until()) break;
      if (!sched.step(end)) break;
    }
  };

  const started = coordinator.start(nodeIds).then(() => (settled = true));
  await drive(() => settled, 1000);
  await started;
  host.start(coordinator.worldLine);
  for (const id of nodeIds) startNode(id);
  // The supervisor's heartbeat check (the live cluster's `heartbeatTimeoutMs`): a node whose process is gone
  // is down, even when a hello it sent before dying arrived after its exit was reported (else a removal of
  // it, which waits for the coordinator to see it down, waits forever).
  const supervise = (): void => {
    if (!coordinatorDown && coordinatorReady)
      for (const n of runtimeNodes()) if (!endpoints.has(n) && coordinator.members.get(n) === 'up') coordinator.nodeFailed(n, 'heartbeat');
    sched.after(HEARTBEAT_CHECK_MS, supervise);
  };
  sched.after(HEARTBEAT_CHECK_MS, supervise);

  // Faults: crashes at random times during the workload, each followed by a restart.
  let faultsOn = faults;
  const workloadMs = scenario.workloadMs(opts.requestsPerSession);
  if (faults) {
    const crashes = opts.crashesMin + rng.int(0, 2);
    for (let k = 0; k < crashes; k++) {
      const at = 20 + rng.next() * workloadMs;
      sched.at(at, () => {
        if (!faultsOn) return;
        const up = runtimeNodes().filter((id) => !removing.has(id) && nodes.get(id)?.status !== 'stopped' && nodes.get(id)?.status !== undefined);
        if (up.length === 0) return;
        const victim = rng.pick(up);
        crash(victim);
        // Unless the end of the workload restarted it already: two live processes of one node would be a zombie.
        sched.after(5 + rng.next() * 60, () => {
          if (nodes.get(victim)?.status === 'stopped' && !removing.has(victim)) startNode(victim);
        });
      });
    }
    if (opts.coordinatorCrashes !== false && opts.mode !== 'none') {
      // The coordinator crashes once or twice at random times, and sometimes just after it announced a
      // new world-line (while the prunes and saves that follow are in flight).
      const coordinatorCrashes = 1 + rng.int(0, 1);
      for (let k = 0; k < coordinatorCrashes; k++) {
        sched.after(20 + rng.next() * workloadMs, () => {
          if (faultsOn) crashCoordinator();
        });
      }
      let afterWorldLine = 1;
      coordinatorCrashAfterWorldLine = () => {
        if (!faultsOn || afterWorldLine <= 0 || !rng.chance(0.3)) return;
        afterWorldLine--;
        sched.after(rng.next() * 3, () => {
          if (faultsOn) crashCoordinator();
        });
      };
    }
  }

  // Workload: the scenario's sessions, each sending its requests one after another.
  const sleep = (ms: number): Promise<void> => new Promise((r) => sched.after(ms, r));
  const clientView: PlacementView | undefined = membershipOn ? { version: 0, members: [...founders] } : undefined;
  let actor: MembershipActor | null = null;
  let actorDone = true;
  if (membershipOn) {
    actor = new MembershipActor(
      {
        rng,
        host,
        nodeIds,
        sleep,
        now: () => sched.now,
        isUp: (id) => nodes.get(id)?.status === 'up',
        killAndRemove: (id) => killAndRemove(id),
        leaveAndRemove: (id) => leaveAndRemove(id),
        readRetired: (id) => readRetired(id),
        plantedNoCompletion: opts.plantedBug === 'membership-interrupted-not-completed',
        interruptAfter: (n) => (faultsOn && n >= 2 && controlRng.chance(0.15) ? 1 + controlRng.int(0, n - 2) : null),
        fail: (m) => checker.fail('liveness', m, sched.now),
        note: (m) => checker.note(sched.now, m),
      },
      founders,
      clientView!,
      opts.membershipKinds,
    );
  }
  /**
   * Kills `id` for good; once the coordinator has recovered from it and removed it (rolling back its
   * versions above the cut, with what depends on them), reads its committed state at the cut: the app
   * state goes to its heirs, and the replies it holds decide the requests still waiting on it.
   */
  const killAndRemove = async (id: NodeId): Promise<RetiredNode> => {
    removing.add(id);
    crash(id);
    const coordinatorSettled = (): boolean => !coordinatorDown && coordinatorReady && !coordinator.isRecovering && coordinator.members.get(id) === 'down';
    while (!coordinatorSettled()) await sleep(2);
    coordinator.removeNode(id);
    return whatIsLeft(id);
  };
  /**
   * Stops `id`, drained, without a failure: it leaves (takes no input any more), and once its last version
   * has committed the coordinator forgets it without a world-line; then its process stops. Faults may hit
   * it meanwhile (a crash, another node's failure, a coordinator restart): then it is removed as a failure
   * (`killAndRemove`), as the live server does.
   */
  const leaveAndRemove = async (id: NodeId): Promise<RetiredNode> => {
    const node = nodes.get(id);
    const left = node !== undefined && endpoints.get(id) === node ? node.leave() : null;
    if (left !== null && faultsOn && leaveRng.chance(0.3)) {
      // Sometimes another node crashes while this one leaves: its hand-off applies roll back, and the leave
      // either completes (its last version committed all the same) or gives way to a removal as a failure.
      const others = runtimeNodes().filter((n) => n !== id && !removing.has(n) && nodes.get(n)?.status === 'up');
      if (others.length > 0) {
        const victim = leaveRng.pick(others);
        sched.after(leaveRng.next() * 15, () => {
          if (!faultsOn) return;
          crash(victim);
          sched.after(5 + leaveRng.next() * 60, () => {
            if (nodes.get(victim)?.status === 'stopped' && !removing.has(victim)) startNode(victim);
          });
        });
      }
    }
    for (const end = sched.now + LEAVE_WAIT_MS; left !== null && sched.now < end; await sleep(2)) {
      if (coordinatorDown || !coordinatorReady) continue;
      const r = coordinator.retireLeft(id, opts.plantedBug === 'membership-leave-before-commit' ? 0 : left.version, left.worldLine);
      if (r === 'refused') break;
      if (r === 'wait') continue;
      leaves++;
      checker.note(sched.now, `${id} left at version ${left.version}, committed: removed without a world-line`);
      removing.add(id);
      crash(id);
      return whatIsLeft(id);
    }
    return killAndRemove(id);
  };
  /** What `id`, removed for good, left: its checkpoint at its final cut entry (read again, after a storage failure too). */
  const readRetired = async (id: NodeId): Promise<RetiredNode> => {
    for (;;) {
      try {
        const left = await readRemovedNode(storage, id, coordinator.cut[id] ?? 0);
        if (left === null) {
          checker.fail('durability', `the committed checkpoint of ${id} at ${coordinator.cut[id] ?? 0} is not in storage`, sched.now);
          return { state: {}, replies: [], sent: [], applied: {} };
        }
        return { state: left.appState, replies: left.sthreadReplies, sent: left.unacknowledged, applied: left.applied };
      } catch {
        await sleep(5);
      }
    }
  };
  /** Once the coordinator has forgotten `id` (its cut entry final), what is left of it at the cut. */
  const whatIsLeft = async (id: NodeId): Promise<RetiredNode> => {
    // Complete once a world-line has rolled back what it kept above the cut: its cut entry is final then.
    while (coordinatorDown || !coordinatorReady || coordinator.isRecovering || coordinator.members.has(id)) {
      if (!coordinatorDown && coordinatorReady && !coordinator.isRecovering && coordinator.members.has(id)) coordinator.removeNode(id);
      await sleep(2);
    }
    removed.add(id);
    const version = coordinator.cut[id] ?? 0;
    for (;;) {
      try {
        const left = await readRemovedNode(storage, id, version);
        if (left === null) {
          checker.fail('durability', `the committed checkpoint ${id}@${version} is not in storage`, sched.now);
          return { state: {}, replies: [], sent: [], applied: {} };
        }
        host.nodeRemoved(id, left.replies);
        return { state: left.appState, replies: left.sthreadReplies, sent: left.unacknowledged, applied: left.applied };
      } catch {
        await sleep(5); // a simulated storage failure: read again
      }
    }
  };
  const sessions = run.start({
    rng,
    nodes: founders,
    host,
    mode: opts.mode,
    sessions: opts.sessions,
    requestsPerSession: opts.requestsPerSession,
    sleep,
    ...(actor !== null ? { placement: clientView!, members: () => actor.members } : {}),
  });
  if (actor !== null) {
    actorDone = false;
    const count = opts.membershipChanges ?? 1 + rng.int(0, 2);
    actor
      .run(count, workloadMs, () => faultsOn || !faults)
      .then(
        () => (actorDone = true),
        (e: unknown) => {
          checker.fail('internal', `membership actor: ${e instanceof Error ? e.message : String(e)}`, sched.now);
          actorDone = true;
        },
      );
  }

  await drive(() => run.done(), 10_000);
  // Faults stop; every node comes back; the run must settle: every request decided.
  faultsOn = false;
  const allBack = (): boolean => !coordinatorDown;
  await drive(allBack, 1000);
  // (Not one being removed: it stays down for good.)
  for (const id of runtimeNodes()) {
    if (nodes.get(id)?.status === 'stopped' && !removing.has(id)) startNode(id);
  }
  // A membership change under way is finished (they start only while faults are on).
  await drive(() => actorDone, 10_000);
  const allDecided = (): boolean => sessions.every((s) => s.openRequests === 0);
  await drive(allDecided, 10_000);
  // A little longer, so that the last versions commit and the cut covers them.
  await drive(() => false, 100);
  // The final states are read from every node: let a recovery still under way finish first.
  const allUp = (): boolean =>
    !coordinator.isRecovering && runtimeNodes().every((id) => nodes.get(id)?.status === 'up' && nodes.get(id)!.worldLine === coordinator.worldLine);
  await drive(allUp, 10_000);
  if (actor !== null && opts.membershipFinalRemoval !== false) {
    // A member dies for good and is removed: the others take over its committed state, read from storage.
    actorDone = false;
    actor.removeOneCrashed().then(
      () => (actorDone = true),
      (e: unknown) => {
        checker.fail('internal', `membership actor: ${e instanceof Error ? e.message : String(e)}`, sched.now);
        actorDone = true;
      },
    );
    await drive(() => actorDone, 10_000);
    await drive(() => false, 50);
    await drive(allUp, 10_000);
  }

  const outcomes = sessions.flatMap((s) => s.history());
  const liveness = opts.mode !== 'none' || !faults;
  checker.finish(sched.now, outcomes, runtimeNodes(), liveness);
  if (actor !== null) {
    if (!actorDone) checker.fail('liveness', 'a membership change is still under way after the run settled', sched.now);
    const views = new Map<NodeId, NodeView>();
    for (const id of runtimeNodes()) {
      const v = inspect(id);
      if (v !== undefined) views.set(id, v);
    }
    checkPlacement(checker, sched.now, views, actor.view);
  }
  for (const id of runtimeNodes()) {
    const n = nodes.get(id);
    if (liveness && (n?.status !== 'up' || n.worldLine !== coordinator.worldLine))
      checker.fail(
        'liveness',
        `${id} is ${n?.status ?? 'missing'} in world-line ${n?.worldLine ?? 0} (the coordinator's is ${coordinator.worldLine}) after the run settled`,
        sched.now,
      );
  }
  for (const n of nodes.values()) {
    for (const e of n.sthreadErrors) checker.violations.push({ invariant: 'liveness', message: `sthread error on ${n.id}: ${String(e)}`, t: sched.now });
  }
  coordinator.stop();
  host.stop();
  for (const n of nodes.values()) n.stop();

  return {
    seed: opts.seed,
    violations: checker.violations,
    trace: checker.recentTrace(),
    requests: outcomes.length,
    committed: outcomes.filter((o) => o.status === 'committed').length,
    rolledBack: outcomes.filter((o) => o.status === 'rolledBack').length,
    kills,
    rollbacks,
    worldLines: coordinator.worldLine,
    messages,
    checkpoints,
    versionsKept: checker.versionsKept,
    versionsRolledBack: checker.versionsRolledBack,
    coordinatorRestarts,
    virtualMs: sched.now,
    membershipChanges: actor?.changes ?? [],
    quietLeaves: leaves,
    interruptedChanges: actor?.restarts ?? 0,
    nodesBroughtForward: actor?.completed ?? 0,
  };
}

export { isDseError };
