import type { Json, NodeId, RequestInfo, ServiceName, ServiceRequestBody, ServiceRequestInfo } from '@dse/shared';
import { DseError, isDseError, SessionRolledBack } from '@dse/shared';
import type { Session, SpeculativeResult } from '../core/session';
import { followWrongOwner, kvNode, learnPlacement, shardOf, throwIfError, topicNode, walNode } from '../services';
import type { Cluster } from './cluster';
import type { KvAppOp } from './kv-app';

export interface KvRequest {
  session?: string;
  op: 'put' | 'get';
  key: string;
  value?: Json;
  committedOnly?: boolean;
  node?: NodeId;
}

interface Tracked<I extends RequestInfo | ServiceRequestInfo = RequestInfo | ServiceRequestInfo> {
  info: I;
}

/** The payload field a service places its requests by (log, key, topic, workflow id). */
export const SERVICE_PLACEMENT_FIELD: Readonly<Record<ServiceName, string>> = { wal: 'log', kv: 'key', broker: 'topic', wf: 'id' };

/** The node a service request goes to by default, over `nodes` (sorted), exactly as the typed clients place it. */
export function serviceNode(svc: ServiceName, placeBy: string, nodes: readonly NodeId[]): NodeId {
  switch (svc) {
    case 'wal':
      return walNode(placeBy, nodes);
    case 'kv':
      return kvNode(placeBy, nodes);
    case 'broker':
      return topicNode(placeBy, nodes);
    case 'wf':
      return shardOf(`wf:${placeBy}`, nodes);
  }
}

/** Service ops that read only committed state when the API payload says `committed: true` (the server fills `upTo` from the cut). */
const COMMITTED_OPS: Readonly<Partial<Record<ServiceName, readonly string[]>>> = { wal: ['read', 'length'], broker: ['poll'] };

/**
 * Requests to the key-value app from the API: each goes through a session of the server's session
 * host, is answered speculatively, and later committed or rolled back. Recent requests are kept
 * (bounded) for `GET /api/requests/:id`.
 */
export class Requests {
  private readonly table = new Map<string, Tracked>();
  private nextId = 1;
  /** Requests sent per session by this server (the session's next seq is this + 1). */
  private readonly sent = new Map<string, number>();
  private readonly sessionIds = new Set<string>();

  constructor(
    private readonly cluster: Cluster,
    private readonly opts: { keepMax: number; sessionsMax: number; answerTimeoutMs: number },
  ) {}

  get(id: string): RequestInfo | ServiceRequestInfo {
    const t = this.table.get(id);
    if (t === undefined) throw new DseError('NotFound', `no request ${id} (unknown, or older than the last ${this.opts.keepMax})`);
    return { ...t.info };
  }

  private remember<I extends RequestInfo | ServiceRequestInfo>(info: I): Tracked<I> {
    const t: Tracked<I> = { info };
    this.table.set(info.id, t);
    while (this.table.size > this.opts.keepMax) this.table.delete(this.table.keys().next().value!);
    return t;
  }

  /**
   * The session host's id for an API session name. Nodes remember replies per session id and request
   * number in their committed state, and a session's numbering starts again at 1 when the server
   * restarts: so the id carries this server start (`<name>@<boot>`), and a name used again after a
   * restart is a new session, never answered from the old one's replies.
   */
  hostSessionId(name: string): string {
    return `${name}@${this.cluster.bootId}`;
  }

  private session(id: string | undefined): { session: Session; name: string } {
    const name = id ?? this.poolSession();
    if (!this.sessionIds.has(name)) {
      if (this.sessionIds.size >= this.opts.sessionsMax) {
        throw new DseError('LimitExceeded', `this server has ${this.sessionIds.size} API sessions, the most allowed: continue one by naming it`);
      }
      this.sessionIds.add(name);
    }
    return { session: this.cluster.host.session(this.hostSessionId(name)), name };
  }

  /**
   * The session an unnamed request goes through: one of a fixed pool (`api.pool.<i>`), the one with
   * the fewest requests waiting. Each session costs the server a table entry and every node it talks
   * to a caller-table entry in its state for good, so unnamed requests must not each open their own;
   * requests of one pool session are ordered like any session's, which only adds dependencies.
   */
  private poolSession(): string {
    let best = 0;
    for (let i = 1; i < Requests.POOL_SIZE; i++) if ((this.waiting.get(i) ?? 0) < (this.waiting.get(best) ?? 0)) best = i;
    return `api.pool.${best + 1}`;
  }

  /** Unnamed requests share this many sessions. */
  static readonly POOL_SIZE = 16;
  /** Requests sent and not yet answered, per pool session (index from 0). */
  private readonly waiting = new Map<number, number>();

  /**
   * The client acknowledges the rollback of session `name`: it takes requests again. False when it was
   * not rolled back; NotFound when this server has no such session.
   */
  resume(name: string): boolean {
    if (!this.sessionIds.has(name)) throw new DseError('NotFound', `no session ${name} on this server`);
    const s = this.cluster.host.session(this.hostSessionId(name));
    if (s.rolledBackError === null) return false;
    s.resume();
    return true;
  }

  /** Sends a request through a session: the reply is its speculative answer (or a definite rollback). */
  send(session: Session, node: NodeId, payload: KvAppOp | { [k: string]: Json }): { seq: number; answer: Promise<SpeculativeResult> } {
    // A rolled-back session refuses at once (nothing is sent), with the error that says what survived.
    if (session.rolledBackError !== null) {
      const e = session.rolledBackError;
      throw new SessionRolledBack(e.session.replace(/@[^@]*$/, ''), e.rolledBackSeq, e.lastSurvivingSeq);
    }
    const seq = (this.sent.get(session.id) ?? 0) + 1;
    this.sent.set(session.id, seq);
    const answer = this.following(session, node, payload);
    const pool = /^api\.pool\.(\d+)@/.exec(session.id);
    if (pool !== null) {
      const i = Number(pool[1]) - 1;
      this.waiting.set(i, (this.waiting.get(i) ?? 0) + 1);
      const done = (): void => void this.waiting.set(i, (this.waiting.get(i) ?? 1) - 1);
      answer.then(done, done);
    }
    return { seq, answer };
  }

  /**
   * The answer of `node`, or, when it says it does not own the unit (`WrongOwner`: the members changed),
   * of the owner it names: the request is sent there (the next seq of the session) and the server's
   * placement learns the newer members. A committed-only read is told the cut of the node it goes to.
   */
  private async following(session: Session, node: NodeId, payload: { [k: string]: Json }): Promise<SpeculativeResult> {
    return followWrongOwner(
      await session.request(node, payload),
      (r: SpeculativeResult) => r.result,
      (owner) => {
        if ('upTo' in payload) payload = { ...payload, upTo: this.cluster.host.cut[owner] ?? 0 };
        this.sent.set(session.id, (this.sent.get(session.id) ?? 0) + 1);
        return session.request(owner, payload);
      },
      { seen: (w) => learnPlacement(this.cluster.membership.view, w) },
    );
  }

  async submit(req: KvRequest): Promise<RequestInfo> {
    const id = `r${this.nextId++}`;
    const node = req.node ?? this.cluster.ownerOf(req.key);
    if (!this.cluster.hasNode(node)) throw new DseError('NotFound', `no node ${node}`);
    if (req.op === 'get' && req.committedOnly === true) {
      // From the key's owner (a replica, `~<origin>/<key>`, from the node named), as a speculative get would be sent on to it;
      // where the committed placement differs from the server's, the cluster reads where the committed state holds the key.
      const r = await this.cluster.readCommitted(req.key.startsWith('~') ? node : this.cluster.ownerOf(req.key), req.key);
      const from = r.node;
      const info: RequestInfo = {
        id,
        session: req.session ?? '',
        seq: 0,
        node: from,
        op: 'get',
        key: req.key,
        status: 'committed',
        result: { key: req.key, value: r.value, version: r.version },
        worldLine: r.worldLine,
        deps: r.version > 0 ? { [from]: r.version } : {},
      };
      this.remember(info);
      return { ...info };
    }
    const { session, name } = this.session(req.session);
    const payload: KvAppOp = req.op === 'put' ? { op: 'put', key: req.key, value: req.value ?? null } : { op: 'get', key: req.key };
    const { seq, answer } = this.send(session, node, payload);
    const tracked = this.remember<RequestInfo>({
      id,
      session: name,
      seq,
      node,
      op: req.op,
      key: req.key,
      status: 'speculative',
      result: null,
      worldLine: this.cluster.host.worldLine,
      deps: {},
    });
    await this.follow(id, node, tracked, answer);
    return { ...tracked.info };
  }

  /**
   * A request to one of the services (`svc` added to the payload), on the node the service places it
   * on unless `node` is given. `committed: true` in a wal read/length or broker poll payload asks for
   * committed state only: the server replaces it with the cut's version of that node (`upTo`). A
   * service's typed refusal (`{error}`) is thrown as that `DseError` (with the request's id).
   */
  async submitService(req: ServiceRequestBody): Promise<ServiceRequestInfo> {
    const id = `r${this.nextId++}`;
    const payload: { [k: string]: Json } = { ...req.payload, svc: req.svc };
    let node = req.node;
    if (node === undefined) {
      const field = SERVICE_PLACEMENT_FIELD[req.svc];
      const placeBy = req.payload[field];
      if (typeof placeBy !== 'string')
        throw new DseError('BadRequest', `service ${req.svc}: payload.${field} must be a string to place the request (or give node)`);
      const nodes = this.cluster.membership.view.members;
      if (nodes.length === 0) throw new DseError('Conflict', 'the cluster has no nodes');
      node = serviceNode(req.svc, placeBy, nodes);
    }
    if (!this.cluster.hasNode(node)) throw new DseError('NotFound', `no node ${node}`);
    if (payload.committed !== undefined) {
      const op = typeof payload.op === 'string' ? payload.op : '';
      if (!(COMMITTED_OPS[req.svc] ?? []).includes(op))
        throw new DseError(
          'BadRequest',
          `service ${req.svc}: committed is for ${Object.entries(COMMITTED_OPS)
            .map(([s, ops]) => ops.map((o) => `${s} ${o}`).join(', '))
            .join(', ')}`,
        );
      if (payload.committed === true) payload.upTo = this.cluster.host.cut[node] ?? 0;
      delete payload.committed;
    }
    const { session, name } = this.session(req.session);
    const { seq, answer } = this.send(session, node, payload);
    const tracked = this.remember<ServiceRequestInfo>({
      id,
      session: name,
      seq,
      node,
      svc: req.svc,
      status: 'speculative',
      result: null,
      worldLine: this.cluster.host.worldLine,
      deps: {},
    });
    await this.follow(id, node, tracked, answer);
    try {
      throwIfError(tracked.info.result);
    } catch (e) {
      throw Object.assign(e as DseError, { requestId: id });
    }
    return { ...tracked.info };
  }

  /**
   * Keeps `tracked` up to date with the answer and its commit or rollback; waits for the answer (or
   * times out with the id). A request the runtime closed with another error (`NodeRemoved`: it never
   * ran; `Orphaned`: it was under way at a node removed while down, its effects so far committed) is
   * `failed` with that error, and the error is thrown with the request's id: it is not a rollback.
   */
  private async follow(id: string, node: NodeId, tracked: Tracked, answer: Promise<SpeculativeResult>): Promise<void> {
    const closed = (e: unknown): Partial<RequestInfo> =>
      isDseError(e) && !isRollback(e) ? { status: 'failed', error: e.toBody() } : { status: 'rolled-back' };
    answer.then(
      (a) => {
        tracked.info = { ...tracked.info, seq: a.seq, result: a.result, worldLine: a.worldLine, deps: a.deps };
        a.whenCommitted().then(
          () => {
            tracked.info = { ...tracked.info, status: 'committed' };
          },
          (e: unknown) => {
            tracked.info = { ...tracked.info, ...closed(e) };
          },
        );
      },
      (e: unknown) => {
        tracked.info = { ...tracked.info, ...closed(e), result: null };
      },
    );
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new DseError(
              'Timeout',
              `request ${id}: no answer from ${node} within ${this.opts.answerTimeoutMs} ms (it may be down); ask GET /api/requests/${id} later`,
            ),
          ),
        this.opts.answerTimeoutMs,
      );
    });
    try {
      await Promise.race([answer, timeout]);
    } catch (e) {
      if (isDseError(e) && (e.code === 'Timeout' || !isRollback(e))) throw Object.assign(e, { requestId: id });
      // Rolled back before it was even answered: a definite outcome.
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }
}

/** The request did not survive a recovery (or its session refused it after one): reported `rolled-back`. */
function isRollback(e: unknown): boolean {
  return !isDseError(e) || e.code === 'RolledBack' || e.code === 'SessionRolledBack';
}
