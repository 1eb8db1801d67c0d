import type { Mode, NodeId, NumberedEvent } from '@dse/shared';
import { isDseError } from '@dse/shared';
import type { SessionHost } from '../../core/session';
import type { RunningServer } from '../../server/server';
import type { WorkflowStep } from '../../services';
import { KvClient, WorkflowClient } from '../../services';

/**
 * The benchmark's measurements on a running live cluster (real node processes running the services
 * app, the server relaying every message and owning the storage). Latency is measured in this
 * process, which is the server: from the moment a request is handed to the server's session to the
 * moment its answer (or its commit) arrives back, so every hop between node processes is included.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type Tick = (units: number, label?: string) => void;

/**
 * What the measurements run on: a deployment's session host and nodes. The live cluster (node processes,
 * the server) and the embedded runtime (everything in this process) both are one.
 */
export interface BenchTarget {
  readonly host: SessionHost;
  nodeIds(): NodeId[];
}

/** The live cluster of a running server, as a benchmark target. */
export function liveTarget(server: RunningServer): BenchTarget {
  return {
    get host() {
      return server.cluster.host;
    },
    nodeIds: () => server.cluster.nodeIds(),
  };
}

export async function waitFor<T>(what: string, cond: () => T | undefined | null | false, timeoutMs = 60_000, everyMs = 5): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`benchmark: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | null = null;
  return Promise.race([
    p.finally(() => {
      if (timer !== null) clearTimeout(timer);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`benchmark: no answer within ${ms} ms to ${what}`)), ms);
    }),
  ]);
}

let tagCounter = 0;
const runTag = (): string => `${Date.now().toString(36)}${(tagCounter++).toString(36)}`;

export function allUp(server: RunningServer): boolean {
  const nodes = server.cluster.info(0).nodes;
  return nodes.length > 0 && nodes.every((n) => n.status === 'up');
}

/** Switches the cluster's mode (every node starts again in it, on a new world-line) and waits until every node is up. */
export async function setMode(server: RunningServer, mode: Mode): Promise<void> {
  if (server.cluster.config.mode !== mode) await server.cluster.configure({ mode });
  await waitFor(`every node up in ${mode} mode`, () => allUp(server), 120_000, 10);
  // The server's sessions must be on the new world-line too, or their first requests are rolled back.
  // After a mode change the new coordinator does not announce its world-line to the server's session
  // host (it is added as a client after the announcement); the host learns it from the first reply of
  // a newer world-line. So send throwaway requests until it has.
  const host = server.cluster.host;
  for (let i = 0; host.worldLine !== server.cluster.coordinator.worldLine; i++) {
    if (i >= 30)
      throw new Error(`benchmark: the server's sessions stay on world-line ${host.worldLine}, the cluster is on ${server.cluster.coordinator.worldLine}`);
    host
      .session(`bench.sync.${runTag()}`)
      .request(server.cluster.nodeIds()[0]!, { svc: 'kv', op: 'get', key: 'bench-sync' })
      .catch(() => undefined);
    await waitFor('the sessions on the new world-line', () => host.worldLine === server.cluster.coordinator.worldLine, 2000, 5).catch(() => undefined);
  }
  await sleep(200);
}

/** The steps of one benchmark workflow: step k reserves on a node other than the orchestrator's. */
export function benchSteps(id: string, steps: number, orchestrator: NodeId, nodes: readonly NodeId[], offset: number): WorkflowStep[] {
  const others = nodes.filter((n) => n !== orchestrator);
  const targets = others.length > 0 ? others : [...nodes];
  return Array.from({ length: steps }, (_, k) => ({
    name: `step ${k}`,
    node: targets[(offset + k) % targets.length]!,
    do: { svc: 'travel', op: 'reserve', wf: id, step: k, item: `item${k}`, capacity: null },
    undo: { svc: 'travel', op: 'cancel', wf: id, step: k },
  }));
}

export interface WorkflowSamples {
  answerMs: number[];
  commitMs: number[];
  failed: number;
}

/**
 * Runs `n` workflows of `steps` steps one after another in one session (after `warm` unmeasured ones):
 * each is started on an orchestrator node (rotating), runs its steps on the other nodes, and answers
 * with its outcome. Answer latency: request → speculative outcome. Commit latency: request → the
 * outcome committed (collected without holding back the next workflow).
 */
export async function runWorkflows(target: BenchTarget, mode: Mode, steps: number, n: number, warm: number, tick: Tick): Promise<WorkflowSamples> {
  const nodes = target.nodeIds();
  const tag = runTag();
  const wf = new WorkflowClient(target.host.session(`bench.wf.${tag}`), { nodes });
  const answerMs: number[] = [];
  const commitMs: number[] = [];
  const commits: Promise<void>[] = [];
  let failed = 0;
  for (let i = 0; i < warm + n; i++) {
    const id = `b${tag}-${i}`;
    const orch = nodes[i % nodes.length]!;
    const plan = benchSteps(id, steps, orch, nodes, i);
    const t0 = performance.now();
    const r = await withTimeout(wf.run(id, plan, orch), 60_000, `workflow ${id} (${steps} steps, ${mode})`);
    const ta = performance.now() - t0;
    if (r.value.status !== 'completed') failed++;
    if (i < warm) continue;
    answerMs.push(ta);
    if (mode !== 'none') {
      commits.push(
        r.commit().then(
          () => {
            commitMs.push(performance.now() - t0);
          },
          () => {
            failed++;
          },
        ),
      );
    }
    tick(1);
  }
  await withTimeout(Promise.all(commits), 60_000, `the commits of ${n} workflows (${steps} steps, ${mode})`);
  return { answerMs, commitMs, failed };
}

const KEYS = 1000;

function kvOp(kv: KvClient, i: number): Promise<unknown> {
  const key = `k${Math.floor(Math.random() * KEYS)}`;
  return i % 2 === 0 ? kv.put(key, i) : kv.get(key);
}

export interface KvSaturation {
  latencyMs: number[];
  completed: number;
  errors: number;
  seconds: number;
}

/**
 * Closed loop: `sessions` sessions, each sending its next key-value request (half puts, half gets, on
 * 1000 keys) as soon as the previous one is answered, for `warmS + seconds`; completions in the last
 * `seconds` are counted.
 */
export async function kvSaturation(target: BenchTarget, sessions: number, seconds: number, warmS: number, tick: Tick): Promise<KvSaturation> {
  const nodes = target.nodeIds();
  const tag = runTag();
  const t0 = performance.now();
  const from = t0 + warmS * 1000;
  const end = from + seconds * 1000;
  const latencyMs: number[] = [];
  let errors = 0;
  let ticked = 0;
  const loop = async (s: number): Promise<void> => {
    let gen = 0;
    let kv = new KvClient(target.host.session(`bench.kv.${tag}.${s}.${gen}`), { nodes });
    for (let i = 0; ; i++) {
      const start = performance.now();
      if (start >= end) return;
      try {
        await withTimeout(kvOp(kv, i), 30_000, 'a key-value request');
        const done = performance.now();
        if (start >= from && done <= end) latencyMs.push(done - start);
      } catch (e) {
        if (performance.now() >= from) errors++;
        if (!isDseError(e)) throw e;
        kv = new KvClient(target.host.session(`bench.kv.${tag}.${s}.${++gen}`), { nodes });
      }
      if (s === 0) {
        const units = Math.floor((performance.now() - t0) / 100);
        if (units > ticked) {
          tick(units - ticked);
          ticked = units;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: sessions }, (_, s) => loop(s)));
  const total = Math.round((warmS + seconds) * 10);
  if (total > ticked) tick(total - ticked);
  return { latencyMs, completed: latencyMs.length, errors, seconds };
}

export interface KvLoad {
  latencyMs: number[];
  /** Answered before the end of the window (the achieved throughput). */
  completed: number;
  dropped: number;
  seconds: number;
}

/**
 * Open loop: requests arrive at `rate` a second, evenly spaced, spread over a pool of sessions (a
 * session sends one request at a time and queues the rest). Latency is counted from each request's
 * planned arrival time, so a cluster that falls behind shows it (no coordinated omission). Arrivals
 * while `maxOutstanding` requests are unanswered are dropped and counted.
 */
export async function kvLoad(target: BenchTarget, rate: number, seconds: number, tick: Tick, pool = 64, maxOutstanding = 4000): Promise<KvLoad> {
  const nodes = target.nodeIds();
  const tag = runTag();
  const clients = Array.from({ length: pool }, (_, s) => new KvClient(target.host.session(`bench.load.${tag}.${s}`), { nodes }));
  const latencyMs: number[] = [];
  let dropped = 0;
  let inWindow = 0;
  let outstanding = 0;
  let sent = 0;
  let ticked = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const inflight = new Set<Promise<unknown>>();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, end) - start) * rate) / 1000);
      while (sent < due) {
        const planned = start + (sent * 1000) / rate;
        const i = sent++;
        if (outstanding >= maxOutstanding) {
          dropped++;
          continue;
        }
        outstanding++;
        const p = kvOp(clients[i % pool]!, i).then(
          () => {
            const done = performance.now();
            latencyMs.push(done - planned);
            if (done <= end) inWindow++;
          },
          () => undefined,
        );
        const q = p.finally(() => {
          outstanding--;
          inflight.delete(q);
        });
        inflight.add(q);
      }
      const units = Math.floor((now - start) / 100);
      if (units > ticked) {
        tick(Math.min(units, seconds * 10) - ticked);
        ticked = Math.min(units, seconds * 10);
      }
      if (now >= end) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  // Let the requests already sent finish (bounded): their latency counts, not their throughput.
  await Promise.race([Promise.all([...inflight]), sleep(10_000)]);
  if (seconds * 10 > ticked) tick(seconds * 10 - ticked);
  return { latencyMs, completed: inWindow, dropped, seconds };
}

export interface KillSample {
  victim: NodeId;
  detectMs: number;
  worldLineMs: number;
  killToFirstCommitMs: number;
  rolledBackVersions: number;
  /** No commit on the new world-line within the limit: `killToFirstCommitMs` is the limit, a lower bound. */
  stalled: boolean;
}

/**
 * Recovery, `kills` times, in speculative mode under a light key-value load: SIGKILL of a node process
 * (from this process, as an operator would), then the time to its detection, to the new world-line,
 * and to the first commit on the new world-line (the first cut advance); and how many versions the
 * survivors discarded. The killed node is restarted after each kill.
 */
export async function runRecovery(
  server: RunningServer,
  kills: number,
  tick: Tick,
  stallMs = Number(process.env.DSE_BENCH_STALL_MS ?? 30_000),
): Promise<KillSample[]> {
  const cluster = server.cluster;
  const events: NumberedEvent[] = [];
  let recording = false;
  server.stream.onEvent((e) => {
    if (!recording) return;
    if (e.type === 'nodeFailed' || e.type === 'worldLineChanged' || e.type === 'cutAdvanced' || e.type === 'rollback') events.push(e);
  });
  // A light background load, so that there is speculative work to lose. Like any client it sends to the
  // nodes it knows are up: a closed-loop session that sends to a dead node waits for its restart, and
  // if every session did so the survivors would have nothing to commit (the bench restarts the victim
  // only after the first commit). A session stuck on a request for long is replaced.
  let stop = false;
  const nodes = cluster.nodeIds();
  const tag = runTag();
  const upKey = (kv: KvClient): string => {
    let key = `k${Math.floor(Math.random() * KEYS)}`;
    for (let t = 0; t < 50 && cluster.status(kv.nodeOf(key)) !== 'up'; t++) key = `k${Math.floor(Math.random() * KEYS)}`;
    return key;
  };
  const background = Array.from({ length: 8 }, async (_, s) => {
    let gen = 0;
    let kv = new KvClient(cluster.host.session(`bench.rec.${tag}.${s}.${gen}`), { nodes });
    for (let i = 0; !stop; i++) {
      try {
        const key = upKey(kv);
        await withTimeout(i % 2 === 0 ? kv.put(key, i) : kv.get(key), 2000, 'a background request');
      } catch {
        cluster.host.dropSession(`bench.rec.${tag}.${s}.${gen}`);
        kv = new KvClient(cluster.host.session(`bench.rec.${tag}.${s}.${++gen}`), { nodes });
      }
      await sleep(10);
    }
  });
  const out: KillSample[] = [];
  try {
    recording = true;
    for (let k = 0; k < kills; k++) {
      await waitFor('every node up', () => allUp(server), 120_000, 10);
      const before = { ...cluster.coordinator.cut };
      await waitFor('the cut to advance on every node', () => Object.keys(before).every((n) => (cluster.coordinator.cut[n] ?? 0) > before[n]!), 60_000);
      await sleep(100);
      const victim = nodes[k % nodes.length]!;
      const pid = cluster.info(0).nodes.find((n) => n.id === victim)?.pid;
      if (pid === null || pid === undefined) throw new Error(`benchmark: node ${victim} has no process`);
      const w = cluster.coordinator.worldLine;
      events.length = 0;
      const t0 = cluster.clock.now();
      process.kill(pid, 'SIGKILL');
      const find = (pred: (e: NumberedEvent) => boolean): NumberedEvent | undefined => events.find(pred);
      const failed = await waitFor('the kill to be detected', () => find((e) => e.type === 'nodeFailed' && e.node === victim), 60_000, 1);
      const wl = await waitFor('the new world-line', () => find((e) => e.type === 'worldLineChanged' && e.worldLine === w + 1), 60_000, 1);
      // A recovery that does not commit within the limit is recorded as a stall (its time is then a lower bound), not a failed run.
      const cut = await waitFor(
        'the first commit on the new world-line',
        () => find((e) => e.type === 'cutAdvanced' && e.worldLine === w + 1),
        stallMs,
        1,
      ).catch(() => null);
      if (cut === null && process.env.DSE_BENCH_STALL_DUMP !== undefined) {
        const co = cluster.coordinator;
        const c = internals<CoordinatorInternals>(co);
        const graph: Record<string, unknown> = {};
        for (const [n, m] of c.graph ?? []) graph[n] = [...m.entries()].slice(0, 6);
        process.stderr.write(
          `\nSTALL DUMP w=${w} victim=${victim} coordinator wl=${co.worldLine} cut=${JSON.stringify(co.cut)} members=${JSON.stringify([...co.members])} recovering=${String(c.recovering)} wanted=${String(c.recoveryWanted)} waiting=${JSON.stringify([...(c.waiting ?? [])])}\ngraph=${JSON.stringify(graph)}\nevents=${JSON.stringify(events.slice(0, 40))}\nnodes=${JSON.stringify(cluster.info(0).nodes)}\n`,
        );
        for (const sess of cluster.host.allSessions()) {
          if (!sess.id.startsWith(`bench.rec.${tag}`)) continue;
          const x = internals<SessionInternals>(sess);
          const f = x.inFlight ?? null;
          process.stderr.write(
            `session ${sess.id} hostWl=${cluster.host.worldLine} inFlight=${JSON.stringify(f === null ? null : { seq: f.seq, node: f.node, status: f.status, probe: f.probe, wl: f.sentWorldLine })} open=${JSON.stringify((x.requests ?? []).slice(x.firstOpen ?? 0).map((r) => [r.seq, r.node, r.status, r.probe, r.worldLine]))}\n`,
          );
        }
      }
      // Every survivor reports its rollback when it restored; give the reports a moment to arrive.
      await waitFor(
        'the survivors’ rollbacks',
        () => events.filter((e) => e.type === 'rollback' && e.worldLine === w + 1).length >= nodes.length - 1,
        10_000,
        5,
      ).catch(() => undefined);
      let rolledBack = 0;
      for (const e of events) {
        if (e.type === 'rollback' && e.worldLine === w + 1 && e.discarded !== null) rolledBack += e.discarded.to - e.discarded.from + 1;
      }
      out.push({
        victim,
        detectMs: failed.t - t0,
        worldLineMs: wl.t - t0,
        killToFirstCommitMs: cut === null ? stallMs : cut.t - t0,
        rolledBackVersions: rolledBack,
        stalled: cut === null,
      });
      cluster.restart(victim);
      tick(1, `recovery: kill ${k + 1}/${kills}`);
    }
    await waitFor('every node up', () => allUp(server), 120_000, 10);
  } finally {
    recording = false;
    stop = true;
    await Promise.race([Promise.all(background), sleep(5000)]);
  }
  return out;
}

/** The coordinator's private state the stall dump prints. */
interface CoordinatorInternals {
  graph: ReadonlyMap<string, ReadonlyMap<number, unknown>>;
  waiting: ReadonlySet<string>;
  recovering: boolean;
  recoveryWanted: boolean;
}

/** A session's private state the stall dump prints: its requests from the first still open. */
interface SessionInternals {
  inFlight: RequestInternals | null;
  firstOpen: number;
  requests: readonly RequestInternals[];
}

interface RequestInternals {
  seq: number;
  node: string;
  status: string;
  probe: boolean;
  worldLine: number;
  sentWorldLine: number;
}

/**
 * The private state of the coordinator or of a session, for the stall dump (DSE_BENCH_STALL_DUMP) only.
 * core/ keeps it private, may change it, and no API tells it (nor should one, for a benchmark's
 * debugging aid), so this is the one place that looks inside. It needs no assertion: any object may be
 * read as one whose fields are all optional, and what those fields are is taken on trust from `T`.
 * So a field renamed there prints as missing instead of failing the run.
 */
function internals<T extends object>(o: object): Partial<T> {
  return o;
}
