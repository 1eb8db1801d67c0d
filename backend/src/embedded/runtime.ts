import type { CutKind, InspectionEvent, Mode, NodeId, RecoveryKind } from '@dse/shared';
import { DseError } from '@dse/shared';
import type { App } from '../core/app';
import { Coordinator } from '../core/coordinator';
import type { WireMessage } from '../core/messages';
import { COORDINATOR } from '../core/messages';
import { DseNode } from '../core/node';
import type { Network, Observer, Storage } from '../core/ports';
import type { Session } from '../core/session';
import { SessionHost } from '../core/session';
import { RealClock, wallNow } from '../live/clock';

/**
 * The embedded deployment: every node, the coordinator and the client sessions in the application's own
 * process, the way DBOS runs inside the application. Same runtime as the live cluster and the simulator
 * (the core, through its ports): a real clock, a network in memory (messages are delivered after the
 * sender's step, never inside it), and real storage (PostgreSQL or PGlite). What it cannot show is a
 * process dying: `crash(node)` stops a node and throws its memory away, which is what recovery sees.
 *
 *   const rt = await createRuntime({ app: servicesApp, nodes: 4, storage });
 *   const wf = new WorkflowClient(rt.session(), { nodes: rt.nodes });
 *   const r = await wf.run('trip-1', steps);   // the answer, at once
 *   await r.commit();                           // durable
 *   await rt.close();
 */
export interface RuntimeOptions {
  app: App;
  /** Node ids, or how many (`n1`, `n2`, …). */
  nodes: readonly NodeId[] | number;
  storage: Storage;
  mode?: Mode;
  cut?: CutKind;
  recovery?: RecoveryKind;
  /** How often nodes close their open version (default 10 ms); an awaited commit does not wait for it. */
  checkpointIntervalMs?: number;
  /** Every inspection event, in order (default: none are kept). */
  onEvent?: (e: InspectionEvent) => void;
  /** Errors the runtime could not handle (a failed assertion); the node or coordinator is restarted. Default: logged to stderr. */
  onError?: (where: string, error: unknown) => void;
}

export interface Runtime {
  readonly nodes: readonly NodeId[];
  readonly host: SessionHost;
  readonly coordinator: Coordinator;
  /** A client session (a new one, or the one named). */
  session(name?: string): Session;
  /** Stops a node as if its process died (its memory is lost); the coordinator recovers the cluster. */
  crash(node: NodeId): void;
  /** Starts a node that crashed again: it restores from storage. */
  restart(node: NodeId): void;
  /** Stops everything (the storage stays open: it is the caller's). */
  close(): Promise<void>;
}

/** The endpoint name of the embedded runtime's session host. */
const CLIENT = 'app';

export async function createRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const ids: NodeId[] = typeof opts.nodes === 'number' ? Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`) : [...opts.nodes];
  if (ids.length === 0) throw new DseError('BadRequest', 'createRuntime: at least one node');
  if (new Set(ids).size !== ids.length) throw new DseError('BadRequest', 'createRuntime: node ids must differ');
  if (ids.includes(COORDINATOR) || ids.includes(CLIENT)) throw new DseError('BadRequest', `createRuntime: ${COORDINATOR} and ${CLIENT} are taken`);
  const mode = opts.mode ?? 'speculative';
  const cutKind = opts.cut ?? 'exact';
  const clock = new RealClock(Math.floor(wallNow()));
  const observer: Observer = { emit: (e) => opts.onEvent?.(e) };
  const onError =
    opts.onError ?? ((where: string, e: unknown) => process.stderr.write(`[dse] ${where}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));

  // The network: a queue drained after the current step. Deliveries run in microtasks (cheap: no
  // event-loop turn per hop), a few hundred at a time, then yield to I/O so that storage callbacks and
  // timers are never starved by a long cascade.
  const endpoints = new Map<string, { receive(m: WireMessage): void }>();
  const queue: [string, WireMessage][] = [];
  let draining = false;
  const drain = (): void => {
    for (let n = 0; n < 512 && queue.length > 0; n++) {
      const [to, m] = queue.shift()!;
      endpoints.get(to)?.receive(m);
    }
    if (queue.length > 0) setImmediate(drain);
    else draining = false;
  };
  const network: Network = {
    send(to, m) {
      queue.push([to, m]);
      if (draining) return;
      draining = true;
      queueMicrotask(drain);
    },
  };

  let closed = false;
  const makeCoordinator = (): Coordinator => {
    const c: Coordinator = new Coordinator(
      {
        clock,
        network,
        storage: opts.storage,
        observer,
        onFatal: (e) => {
          onError('coordinator', e);
          if (closed || coordinator !== c) return;
          // Start a new one from storage, the nodes running on (see Coordinator.start).
          coordinator = makeCoordinator();
          endpoints.set(COORDINATOR, coordinator);
          coordinator.addClient(CLIENT, { announce: true });
          coordinator.start(ids, { resume: true }).catch((err: unknown) => onError('coordinator restart', err));
        },
      },
      { mode, cutKind, recovery: opts.recovery ?? 'precise', pruneIntervalMs: 1000, prepareTimeoutMs: 2000 },
    );
    return c;
  };
  let coordinator = makeCoordinator();
  endpoints.set(COORDINATOR, coordinator);
  const host = new SessionHost(CLIENT, { clock, network, observer }, { retransmitMs: 200 });
  endpoints.set(CLIENT, host);
  coordinator.addClient(CLIENT);
  await coordinator.start(ids);
  host.start(coordinator.worldLine);

  const nodes = new Map<NodeId, DseNode>();
  let incarnation = 0;
  const startNode = (id: NodeId): DseNode => {
    const node: DseNode = new DseNode(
      id,
      opts.app,
      {
        clock,
        network,
        storage: opts.storage,
        observer,
        incarnation: ++incarnation,
        onFatal: (e) => {
          onError(`node ${id}`, e);
          if (closed || nodes.get(id) !== node) return;
          crash(id);
          restart(id);
        },
      },
      { mode, cutKind, checkpointIntervalMs: opts.checkpointIntervalMs ?? 10, retransmitMs: 200 },
    );
    nodes.set(id, node);
    endpoints.set(id, node);
    node.start();
    return node;
  };
  for (const id of ids) startNode(id);

  const crash = (id: NodeId): void => {
    const node = nodes.get(id);
    if (node === undefined || node.status === 'stopped') return;
    node.stop();
    endpoints.delete(id);
    coordinator.nodeFailed(id, 'exit');
  };
  const restart = (id: NodeId): void => {
    if (!ids.includes(id)) throw new DseError('NotFound', `no node ${id}`);
    if (nodes.get(id)?.status !== 'stopped') return;
    startNode(id);
  };

  // Ready when every node restored its state.
  const deadline = Date.now() + 30_000;
  while ([...nodes.values()].some((n) => n.status !== 'up')) {
    if (Date.now() > deadline) throw new DseError('Timeout', 'createRuntime: the nodes did not start within 30 s');
    await new Promise((r) => setTimeout(r, 2));
  }

  return {
    nodes: ids,
    host,
    get coordinator() {
      return coordinator;
    },
    session: (name) => host.session(name),
    crash,
    restart,
    close() {
      closed = true;
      coordinator.stop();
      host.stop();
      for (const n of nodes.values()) n.stop();
      clock.cancelAll();
      return Promise.resolve();
    },
  };
}
