import type { Cut, Json, NodeId, WorldLine } from '@dse/shared';
import { unitOfStateKey } from '@dse/shared';
import { Coordinator } from '../core/coordinator';
import { appEntries } from '../core/state-keys';
import { RealClock, wallNow } from '../live/clock';
import type { OpenedStorage } from '../storage/open';
import { openStorage } from '../storage/open';
import type { Monitor } from './monitor';
import type { ChaosOptions } from './run';
import type { RunContext } from './run-context';
import { sleep } from './run-context';
import { travelCapacity } from './service-load';
import type { ViolationNote } from './verify';
import { RestorePoints, checkKv } from './verify';
import type { ServiceVerdict } from './verify-services';
import { checkBroker, checkWal, checkWorkflow } from './verify-services';

// The final-state check: the server SIGKILLed, the database read as a restarting server would, and
// compared with what the clients were told.

/** What the final check found. */
export interface FinalVerdict {
  verdict: Omit<ServiceVerdict, 'serviceViolations' | 'stats'> & Partial<ServiceVerdict>;
  /** Checkpoint rows of ended world-lines above what a later world-line kept. */
  orphanRows: number;
  /** Violations found here besides the verdict's (placement, cut safety, orphan rows). */
  notes: ViolationNote[];
  /** The world-line a coordinator started on the database adopts. */
  worldLine: WorldLine;
}

/**
 * Reads the database the killed server left (`readFinalState`) and checks it: a restarting coordinator
 * adopts no lower cut than the highest announced (`highest`), no row of an ended world-line lies above
 * what a later one kept, with membership changes each unit is on exactly one node, and the scenario's
 * checker compares the committed state with what the clients were told.
 */
export async function checkFinalState(w: {
  o: ChaosOptions;
  ctx: RunContext;
  monitor: Monitor;
  storage: { dataDir: string | undefined; directUrl: string | undefined; schema: string | null };
  /** The highest cut announced during the run. */
  highest: Cut;
  /** Nodes the cluster ran at the end. */
  runningAtEnd: ReadonlySet<NodeId>;
  /** Every node ever present. */
  everSeen: ReadonlySet<NodeId>;
  /** Nodes removed while down (their committed state taken over by the others). */
  restoredAway: ReadonlySet<NodeId>;
}): Promise<FinalVerdict> {
  const { o, ctx, monitor, highest, runningAtEnd, everSeen, restoredAway } = w;
  const log = o.log;
  const scenario = o.scenario;
  const extra: ViolationNote[] = [];
  const db = await readFinalState({
    ...w.storage,
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
          : checkWorkflow(ctx.serviceRecords, final, travelCapacity(ctx.keyPrefix), { unitsMove: o.membership === true });
  return { verdict, orphanRows, notes: extra, worldLine: db.worldLine };
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
export async function readFinalState(w: {
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
      for (const [k, v] of appEntries(cp.state)) {
        state.set(k, v);
        mine.set(k, v);
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
