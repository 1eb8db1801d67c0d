import type { ClusterConfig, ClusterInfo, ConfigPatch, InspectionEvent, Json, LiveNodeStatus, NodeId, NodeInfo, WorldLine } from '@dse/shared';
import { DseError } from '@dse/shared';
import type { Namespace } from 'socket.io';
import type { Coordinator } from '../core/coordinator';
import type { Observer } from '../core/ports';
import { readRemovedNode } from '../core/removed';
import { appKey } from '../core/state-keys';
import { SessionHost } from '../core/session';
import { RealClock, wallNow } from './clock';
import type { ClusterContext, ClusterOptions, NodeEntry } from './cluster-context';
import { CoordinatorHost } from './coordinator-host';
import { NodeGateway } from './node-gateway';
import { standingIn } from '../services/membership';
import { ownerOf } from '../services/placement';
import type { RetiredNode } from '../core/removed';
import type { MembershipChangeResult } from './membership';
import { MembershipControl } from './membership';
import { Router } from './router';
import { ProcessSupervisor } from './supervisor';
import type { NodeConfigPush, NodeRunConfig } from './wire';
import { SERVER_ENDPOINT } from './wire';

export type { ClusterOptions } from './cluster-context';
export { eventOfNode, messageOfNode } from './node-gateway';

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  mode: 'speculative',
  cut: 'exact',
  recovery: 'precise',
  checkpointIntervalMs: 100,
  networkDelayMs: 0,
  networkJitterMs: 0,
  messageLoss: 0,
  autoRestart: false,
  autoRestartDelayMs: 500,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 2000,
  observation: 'full',
  held: false,
};

/**
 * The live cluster, in the server process: the coordinator (`CoordinatorHost`), the session host
 * (`server` endpoint), the routing of the server's messages (`Router`), and the node processes,
 * spawned and watched here (`ProcessSupervisor`) or joined from elsewhere over `/node`
 * (`NodeGateway`). This class puts them together and answers for the cluster as a whole: commands,
 * config, and what the API shows.
 */
export class Cluster {
  readonly clock: RealClock;
  readonly host: SessionHost;
  config: ClusterConfig;
  private readonly opts: ClusterOptions;
  private readonly nodes = new Map<NodeId, NodeEntry>();
  private shuttingDown = false;
  private reconfiguring: Promise<void> = Promise.resolve();
  private readonly router: Router;
  private readonly gateway: NodeGateway;
  private readonly supervisor: ProcessSupervisor;
  private readonly coordinators: CoordinatorHost;
  private founders: NodeId[] = [];
  /** Nodes removed after they left quietly (`retire`): their stop was no failure. */
  private readonly leftQuietly = new Set<NodeId>();
  /** Membership changes (add, remove) through the runtime, and the placement the server routes by. */
  readonly membership: MembershipControl;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.config = { ...opts.config };
    this.clock = new RealClock(Math.floor(wallNow()));
    const cx: ClusterContext = {
      opts,
      clock: this.clock,
      nodes: this.nodes,
      config: () => this.config,
      coordinator: () => this.coordinators.current,
      shuttingDown: () => this.shuttingDown,
      founders: () => this.founders,
      remoteNodeAdded: (id) =>
        void this.membership
          .join(id)
          .catch((e: unknown) => this.opts.log(`membership: ${id} joined, but did not become a member: ${e instanceof Error ? e.message : String(e)}`)),
    };
    const observer: Observer = { emit: (e) => this.onServerEvent(e) };
    this.router = new Router(cx, () => this.host);
    this.gateway = new NodeGateway(cx, this.router, (entry, reason) => this.supervisor.onNodeGone(entry, reason));
    this.supervisor = new ProcessSupervisor(cx, () => this.gateway.sendPeers());
    this.coordinators = new CoordinatorHost(cx, observer, (to, m) => this.router.route(to, m, 'control'));
    this.host = new SessionHost(
      SERVER_ENDPOINT,
      { clock: this.clock, network: { send: (to, m) => this.router.route(to, m, 'sessions') }, observer },
      { retransmitMs: 200, queuedRequestsMax: 1000 },
    );
    this.membership = new MembershipControl(
      {
        // Named per server start (as the API's sessions are): a node remembers what a session of an
        // earlier start asked, and would take the same name's first requests for old copies.
        session: (name) => this.host.session(`${name}@${this.bootId}`),
        nodeIds: () => this.nodeIds(),
        status: (id) => this.status(id),
        retire: (id) => this.retire(id),
        readRetired: (id) => this.readRetired(id),
        log: (line) => this.opts.log(line),
        emit: (e) => this.opts.emit(e),
        now: () => this.clock.now(),
      },
      [],
    );
  }

  /** The current coordinator (a new one after a mode or cut change, or a fatal error). */
  get coordinator(): Coordinator {
    return this.coordinators.current;
  }

  get epochMs(): number {
    return this.clock.epochMs;
  }

  /** Names this server start (session ids carry it, see `Requests.hostSessionId`). */
  get bootId(): string {
    return this.clock.epochMs.toString(36);
  }

  /** Starts the coordinator from storage and `initialNodes` node processes (plus members the storage knows). */
  async start(initialNodes: number): Promise<void> {
    // A node removed before (not among the stored record's nodes, but with committed versions in its
    // cut, frozen) is not started again: its state belongs to an older placement.
    const rec = await this.opts.storage.storage.loadCoordinator().catch(() => null);
    const removed = (id: NodeId): boolean => rec !== null && !rec.nodes.includes(id) && ((rec.cut[id] ?? 0) > 0 || (rec.gone ?? []).includes(id));
    const ids = Array.from({ length: initialNodes }, (_, i) => `n${i + 1}`).filter((id) => !removed(id));
    await this.coordinator.start(ids);
    this.coordinator.addClient(SERVER_ENDPOINT);
    this.host.start(this.coordinator.worldLine);
    const members = [...this.coordinator.members.keys()].slice(0, this.opts.limits.nodesMax);
    for (const id of [...this.coordinator.members.keys()]) if (!members.includes(id)) this.coordinator.removeNode(id);
    // The placement of version 0: the members at this start (a node that ever saw a change holds its view in state).
    this.founders = [...members].sort();
    this.membership.view.version = 0;
    this.membership.view.members = [...this.founders];
    this.supervisor.start(members);
    // What the nodes hold (a change made before this server started): asked once they are all up, and
    // not while the cluster is held (nothing may move then). Until then WrongOwner answers teach it.
    const ask = (): void => {
      this.refreshTimer = null;
      if (this.shuttingDown) return;
      const ids = this.nodeIds();
      if (this.config.held || ids.length === 0 || ids.some((n) => this.status(n) !== 'up')) {
        this.refreshTimer = setTimeout(ask, 1000);
        return;
      }
      // Strict, under the changes' lock: a change the server before did not finish is finished first.
      void this.membership
        .exclusive('placement read at start', () => this.membership.refresh(true))
        .catch((e: unknown) => {
          this.opts.log(`membership: the placement read at start failed: ${e instanceof Error ? e.message : String(e)}`);
        });
    };
    this.refreshTimer = setTimeout(ask, 1000);
  }

  private refreshTimer: NodeJS.Timeout | null = null;

  async stop(): Promise<void> {
    this.shuttingDown = true;
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.router.stop();
    this.coordinator.stop();
    this.host.stop();
    await this.supervisor.stop();
  }

  private onServerEvent(e: InspectionEvent): void {
    if (e.type === 'nodeFailed' && e.reason === 'heartbeat') {
      // Never let a node that was declared failed continue with its memory: kill it.
      const entry = this.nodes.get(e.node);
      if (entry !== undefined) this.supervisor.terminate(entry);
    }
    this.opts.emit(e);
  }

  // ------------------------------------------------------------------ node processes

  /** Serves the node processes' namespace: join, frames, storage calls, disconnects. */
  attach(nsp: Namespace): void {
    this.gateway.attach(nsp);
  }

  runConfig(): NodeRunConfig {
    return this.gateway.runConfig();
  }

  /** Events and messages dropped because a node sent them in another's name. */
  get forgedDropped(): number {
    return this.gateway.forgedDropped;
  }

  /** Storage calls this server served for node processes (none when they write to PostgreSQL themselves). */
  get storageCallsServed(): number {
    return this.gateway.storageCallsServed;
  }

  // ------------------------------------------------------------------ commands

  kill(id: NodeId): void {
    this.supervisor.kill(id);
  }

  restart(id: NodeId): void {
    this.supervisor.restart(id);
  }

  /** Starts a new node process and makes it a member: the units it wins are handed to it through the runtime. */
  async addNode(id?: NodeId): Promise<{ node: NodeId } & MembershipChangeResult> {
    // A removed node's id is not used again: its committed state (placement and units of an older
    // version, since handed over or taken over) would come back with it.
    const used = (n: NodeId): boolean => (this.coordinator.cut[n] ?? 0) > 0 && !this.hasNode(n);
    if (id !== undefined && used(id)) throw new DseError('Conflict', `${id} was a member before and has committed state: add a node with a new id`);
    let fresh = id;
    for (let k = 1; fresh === undefined; k++) if (!this.nodes.has(`n${k}`) && !used(`n${k}`)) fresh = `n${k}`;
    // Every member takes part in the change: refused before anything starts when one is not up (a
    // recovery under way is waited out, briefly).
    const members = (): NodeId[] => this.membership.view.members.filter((n) => this.hasNode(n));
    for (const until = Date.now() + 5000; Date.now() < until && members().some((n) => this.status(n) === 'recovering');)
      await new Promise((r) => setTimeout(r, 100));
    const down = members().filter((n) => this.status(n) !== 'up');
    if (down.length > 0)
      throw new DseError(
        'Conflict',
        `cannot add a node while ${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} not up: restart or remove ${down.length === 1 ? 'it' : 'them'} first`,
      );
    return this.membership.exclusive(`add ${fresh}`, async () => {
      const node = this.supervisor.addNode(fresh);
      const r = await this.membership.joinNow(node);
      return { node, ...r };
    });
  }

  /**
   * Removes a node without losing what it holds: a live node is drained first (its units handed over,
   * its running workflows finished), then stopped; a node that is down has its committed state, read
   * from storage, taken over by the nodes that own its units now. Says which.
   */
  async removeNode(id: NodeId): Promise<{ node: NodeId } & MembershipChangeResult> {
    // A node whose removal stopped half-way (retired, but still in the placement) may be removed again.
    if (!this.hasNode(id) && !this.membership.view.members.includes(id)) throw new DseError('NotFound', `no node ${id}`);
    if (this.nodeIds().length <= 1) throw new DseError('Conflict', 'the last node cannot be removed');
    return this.membership.exclusive(`remove ${id}`, () => this.removeNow(id));
  }

  private async removeNow(id: NodeId): Promise<{ node: NodeId } & MembershipChangeResult> {
    const r = await this.membership.leaveNow(id);
    const worldLine = this.coordinator.worldLine;
    const wasUp = this.status(id) !== 'down' && !this.leftQuietly.has(id);
    if (this.hasNode(id)) this.supervisor.removeNode(id);
    // The stop of a live node that did not leave quietly is a failure to the coordinator (a recovery: what
    // depended on versions of it that had not committed rolls back): answered once the others are up on
    // the new world-line.
    const deadline = Date.now() + 10_000;
    const settled = (): boolean =>
      (!wasUp || this.coordinator.worldLine > worldLine) &&
      this.host.worldLine === this.coordinator.worldLine &&
      this.nodeIds().every((n) => this.status(n) !== 'recovering');
    while (Date.now() < deadline && !settled()) await new Promise((res) => setTimeout(res, 50));
    // Answered once the stored coordinator record no longer lists it (saved with the next cut, about a
    // second): a server restarted before that would start the removed node again (chaos C3).
    for (const until = Date.now() + 5000; Date.now() < until;) {
      const rec = await this.opts.storage.storage.loadCoordinator().catch(() => null);
      if (rec !== null && !rec.nodes.includes(id)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return { node: id, ...r };
  }

  /**
   * Removes a node for good, and reads what is left of it: its checkpoint at the cut. A node that is up
   * (drained) leaves first (`DseNode.leave`): once its last version has committed, the coordinator forgets
   * it without a world-line, and its process is stopped. Otherwise (down, or a fault in the way) its stop
   * is a failure: the coordinator first rolls back its versions above the cut (with whatever depends on
   * them), so the cut's entry is final. Then the requests still waiting on it are decided from the replies
   * that checkpoint holds; its app state goes back to the caller, for the nodes that take over its units.
   */
  private async retire(id: NodeId): Promise<RetiredNode> {
    if (this.hasNode(id) && this.status(id) === 'up' && this.config.mode !== 'none') {
      const left = await this.gateway.leave(id);
      for (const end = Date.now() + 10_000; left !== null && Date.now() < end; await new Promise((res) => setTimeout(res, 20))) {
        const r = this.coordinator.retireLeft(id, left.version, left.worldLine);
        if (r === 'refused') break;
        if (r === 'done') {
          this.leftQuietly.add(id);
          this.opts.log(`${id} left at version ${left.version}, committed: removed without a world-line`);
          break;
        }
      }
      if (left !== null && !this.leftQuietly.has(id)) this.opts.log(`${id} left, but its last version did not commit in time: stopped as a failure`);
    }
    if (this.hasNode(id)) this.supervisor.removeNode(id, this.leftQuietly.has(id));
    for (const deadline = Date.now() + 20_000; this.coordinator.members.has(id) || this.coordinator.isRecovering;) {
      if (Date.now() > deadline) throw new DseError('Timeout', `${id}: the coordinator did not complete its removal in 20 s`);
      this.coordinator.removeNode(id);
      await new Promise((res) => setTimeout(res, 50));
    }
    const v = this.coordinator.cut[id] ?? 0;
    const left = await readRemovedNode(this.opts.storage.storage, id, v);
    if (left === null) throw new DseError('StorageUnavailable', `the committed checkpoint ${id}@${v} could not be read`);
    this.host.nodeRemoved(id, left.replies);
    return { state: left.appState, replies: left.sthreadReplies, sent: left.unacknowledged, applied: left.applied };
  }

  /** What `id`, removed for good, left: its checkpoint at its final cut entry, read again. */
  private async readRetired(id: NodeId): Promise<RetiredNode> {
    const v = this.coordinator.cut[id] ?? 0;
    const left = await readRemovedNode(this.opts.storage.storage, id, v);
    if (left === null) throw new DseError('StorageUnavailable', `the committed checkpoint ${id}@${v} could not be read`);
    return { state: left.appState, replies: left.sthreadReplies, sent: left.unacknowledged, applied: left.applied };
  }

  /** Applies a validated patch. A new mode or cut restarts every node in it (a new world-line from the cut). */
  async configure(patch: ConfigPatch): Promise<ClusterConfig> {
    const run = this.reconfiguring.then(() => this.applyConfig(patch));
    this.reconfiguring = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async applyConfig(patch: ConfigPatch): Promise<ClusterConfig> {
    const before = this.config;
    this.config = { ...before, ...patch };
    const push: NodeConfigPush = {};
    if (this.config.checkpointIntervalMs !== before.checkpointIntervalMs) push.checkpointIntervalMs = this.config.checkpointIntervalMs;
    if (this.config.heartbeatIntervalMs !== before.heartbeatIntervalMs) push.heartbeatIntervalMs = this.config.heartbeatIntervalMs;
    for (const k of ['networkDelayMs', 'networkJitterMs', 'messageLoss', 'observation', 'held'] as const) {
      if (this.config[k] !== before[k]) (push as Record<string, unknown>)[k] = this.config[k];
    }
    if (this.config.heartbeatTimeoutMs !== before.heartbeatTimeoutMs) this.supervisor.heartbeatTimeoutChanged();
    if (this.config.recovery !== before.recovery) this.coordinator.setRecovery(this.config.recovery);
    if (this.config.mode !== before.mode || this.config.cut !== before.cut) {
      await this.resetAll(before.mode);
      if (this.config.mode !== before.mode) this.opts.emit({ type: 'modeChanged', t: this.clock.now(), mode: this.config.mode });
    } else if (Object.keys(push).length > 0) {
      this.gateway.pushConfig(push);
    }
    this.opts.emit({ type: 'configChanged', t: this.clock.now(), config: { ...this.config } });
    return { ...this.config };
  }

  /** A new coordinator in the new mode/cut, started from storage; every node starts again with empty memory. */
  private async resetAll(previousMode: ClusterConfig['mode']): Promise<void> {
    await this.coordinators.replace(previousMode);
    this.gateway.resetNodes();
  }

  // ------------------------------------------------------------------ views

  nodeIds(): NodeId[] {
    return [...this.nodes.values()]
      .filter((e) => !e.removed)
      .map((e) => e.id)
      .sort();
  }

  hasNode(id: string): boolean {
    const e = this.nodes.get(id);
    return e !== undefined && !e.removed;
  }

  /** The node that owns a key of the playground's kv app, by the placement the server routes by. */
  ownerOf(key: string): NodeId {
    return ownerOf(`app:${key}`, this.membership.view.members);
  }

  status(id: NodeId): LiveNodeStatus {
    const e = this.nodes.get(id);
    if (e === undefined || e.removed || (e.proc === null && e.conn === null)) return 'down';
    if (e.conn === null || this.coordinator.members.get(id) !== 'up' || e.restoredWorldLine !== this.coordinator.worldLine) return 'recovering';
    return 'up';
  }

  /** What a node that `status` calls `recovering` waits for (see NodeInfo.waitingFor). */
  private waitingFor(id: NodeId): NonNullable<NodeInfo['waitingFor']> {
    const e = this.nodes.get(id);
    if (e === undefined || e.conn === null) return 'connecting';
    if (this.coordinator.members.get(id) !== 'up') return 'coordinator';
    return 'restoring';
  }

  info(lastEvent: number): ClusterInfo {
    const cut = { ...this.coordinator.cut };
    const nodes: NodeInfo[] = this.nodeIds().map((id) => {
      const e = this.nodes.get(id)!;
      const status = this.status(id);
      return {
        id,
        status,
        pid: e.proc !== null || e.conn !== null ? e.pid : null,
        version: e.version,
        persistedVersion: e.persistedVersion,
        committedVersion: cut[id] ?? 0,
        worldLine: e.worldLine,
        origin: e.origin,
        starts: e.starts,
        ...(status === 'recovering' ? { waitingFor: this.waitingFor(id) } : {}),
      };
    });
    return {
      worldLine: this.coordinator.worldLine,
      mode: this.config.mode,
      cutKind: this.config.cut,
      cut,
      nodes,
      storage: this.opts.storage.describe,
      lastEvent,
      epochMs: this.clock.epochMs,
      placement: { version: this.membership.view.version, members: [...this.membership.view.members] },
    };
  }

  /**
   * Reads `key` from the committed state (the checkpoints at the cut), for committed-only gets. A key
   * of the kv app is read where the committed state holds it: `node`'s checkpoint when its committed
   * placement serves the key there, else the owner that placement names (a membership change committed
   * on one node and not yet on another); while the key's hand-off is sent in the cut but not applied at
   * its new owner, the read waits for the cut to take it in (at most `waitMs`, then `Timeout`). A
   * replica (`~<origin>/<key>`) is read at `node`.
   */
  async readCommitted(node: NodeId, key: string, waitMs = 15_000): Promise<{ node: NodeId; value: Json; version: number; worldLine: WorldLine }> {
    const unit = key.startsWith('~') ? null : `app:${key}`;
    const end = wallNow() + waitMs;
    for (let attempt = 0; ; attempt++) {
      const worldLine = this.coordinator.worldLine;
      const cut = { ...this.coordinator.cut };
      let why: string;
      try {
        const r = await this.readAtCut(cut, node, unit, key);
        if ('value' in r) return { ...r, worldLine };
        why = r.why;
      } catch (e) {
        if (attempt >= 3 || wallNow() > end) throw e;
        why = e instanceof Error ? e.message : String(e);
      }
      if (wallNow() > end) throw new DseError('Timeout', `no committed value of ${key} within ${waitMs} ms: ${why}`);
      await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** attempt, 200)));
    }
  }

  /** One committed read at `cut`: follows the committed placement from node to node (each checked once). */
  private async readAtCut(
    cut: Readonly<Record<NodeId, number>>,
    start: NodeId,
    unit: string | null,
    key: string,
  ): Promise<{ node: NodeId; value: Json; version: number } | { why: string }> {
    const asked = new Set<NodeId>();
    for (let node = start; ;) {
      if (asked.has(node)) return { why: `the committed placements of ${[...asked].join(', ')} name each other` };
      asked.add(node);
      if (!this.hasNode(node)) return { why: `the committed placement names ${node}, removed since` };
      const v = cut[node] ?? 0;
      if (this.config.mode === 'none') return { node, value: null, version: v };
      let state: ReadonlyMap<string, Json> = new Map();
      if (v > 0) {
        const cp = await this.opts.storage.storage.loadCheckpoint(node, v);
        // Pruned meanwhile by a newer cut: read again at the current one.
        if (cp === null) return { why: `the checkpoint ${node}@${v} was pruned by a newer cut` };
        state = cp.state;
      }
      if (unit !== null) {
        const at = standingIn((k) => state.get(appKey(k)), node, unit, this.founders);
        if ('hold' in at) return { why: `${node} waits for the hand-off of ${key} in the committed state` };
        if ('owner' in at) {
          node = at.owner;
          continue;
        }
      }
      return { node, value: state.get(appKey(key)) ?? null, version: v };
    }
  }
}
