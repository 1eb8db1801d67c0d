import type { Json, NodeId, RequestInfo } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import type { Session, SpeculativeResult } from '../core/session';
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

interface Tracked {
  info: RequestInfo;
}

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

  get(id: string): RequestInfo {
    const t = this.table.get(id);
    if (t === undefined) throw new DseError('NotFound', `no request ${id} (unknown, or older than the last ${this.opts.keepMax})`);
    return { ...t.info };
  }

  private remember(info: RequestInfo): Tracked {
    const t: Tracked = { info };
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
    const name = id ?? `api.${this.nextId}`;
    if (!this.sessionIds.has(name)) {
      if (this.sessionIds.size >= this.opts.sessionsMax) {
        throw new DseError('LimitExceeded', `this server has ${this.sessionIds.size} API sessions, the most allowed: continue one by naming it`);
      }
      this.sessionIds.add(name);
    }
    return { session: this.cluster.host.session(this.hostSessionId(name)), name };
  }

  /** Sends a request through a session: the reply is its speculative answer (or a definite rollback). */
  send(session: Session, node: NodeId, payload: KvAppOp): { seq: number; answer: Promise<SpeculativeResult> } {
    const seq = (this.sent.get(session.id) ?? 0) + 1;
    this.sent.set(session.id, seq);
    return { seq, answer: session.request(node, payload as unknown as Json) };
  }

  async submit(req: KvRequest): Promise<RequestInfo> {
    const id = `r${this.nextId++}`;
    const node = req.node ?? this.cluster.ownerOf(req.key);
    if (!this.cluster.hasNode(node)) throw new DseError('NotFound', `no node ${node}`);
    if (req.op === 'get' && req.committedOnly === true) {
      const r = await this.cluster.readCommitted(node, req.key);
      const info: RequestInfo = {
        id,
        session: req.session ?? '',
        seq: 0,
        node,
        op: 'get',
        key: req.key,
        status: 'committed',
        result: { key: req.key, value: r.value, version: r.version },
        worldLine: r.worldLine,
        deps: r.version > 0 ? { [node]: r.version } : {},
      };
      this.remember(info);
      return { ...info };
    }
    const { session, name } = this.session(req.session);
    const payload: KvAppOp = req.op === 'put' ? { op: 'put', key: req.key, value: req.value ?? null } : { op: 'get', key: req.key };
    const { seq, answer } = this.send(session, node, payload);
    const tracked = this.remember({
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
    answer.then(
      (a) => {
        tracked.info = { ...tracked.info, result: a.result, worldLine: a.worldLine, deps: a.deps };
        a.commit().then(
          () => {
            tracked.info = { ...tracked.info, status: 'committed' };
          },
          () => {
            tracked.info = { ...tracked.info, status: 'rolled-back' };
          },
        );
      },
      () => {
        tracked.info = { ...tracked.info, status: 'rolled-back', result: null };
      },
    );
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DseError('Timeout', `request ${id}: no answer from ${node} within ${this.opts.answerTimeoutMs} ms (it may be down); ask GET /api/requests/${id} later`)), this.opts.answerTimeoutMs);
    });
    try {
      await Promise.race([answer, timeout]);
    } catch (e) {
      if (isDseError(e) && e.code === 'Timeout') throw Object.assign(e, { requestId: id });
      // Rolled back before it was even answered: a definite outcome.
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
    return { ...tracked.info };
  }
}
