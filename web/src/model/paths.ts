import type { Deps, Json, NodeId, Version, WorldLine } from '@dse/shared';
import { messageIds, requestOfMessageId } from '@dse/shared';
import { resolveVersion, type DepEdge } from './analysis';
import type { MessageView, PlaygroundModel, VersionView } from './model';

/**
 * Where things came from, read from the retained events: what created a dependency edge, and the
 * path of one client request through the cluster (drill-down). Pure functions of the model.
 */

/** The messages that recorded a dependency: delivered into the dependent version, from the version depended on. */
export interface EdgeOrigin {
  /** Direct messages from the depended-on node delivered into the dependent version. */
  messages: MessageView[];
  /** Client requests delivered into the dependent version: a session's dependency set can carry the edge. */
  requests: MessageView[];
}

/** Why `edge.from` depends on `edge.to`: the messages that carried it (empty when no retained message tells). */
export function edgeOrigin(model: PlaygroundModel, edge: DepEdge): EdgeOrigin {
  const from = model.versions.get(edge.from);
  const to = model.versions.get(edge.to);
  const out: EdgeOrigin = { messages: [], requests: [] };
  if (from === undefined || to === undefined || edge.kind === 'prefix') return out;
  const laneIds = new Set(model.laneIds());
  for (const m of model.messages.values()) {
    if (m.to !== from.node || m.deliveredVersion !== from.version || m.deliveredAt === null) continue;
    if (m.deliveredAt < from.openedAt || (from.closedAt !== null && m.deliveredAt > from.closedAt)) continue;
    if (m.from === to.node && m.srcVersion <= to.version && m.kind !== 'ack') out.messages.push(m);
    else if (m.kind === 'request' && !laneIds.has(m.from)) out.requests.push(m);
  }
  // The one at the version itself first: it is the edge's (a dependency keeps the highest version).
  out.messages.sort((a, b) => b.srcVersion - a.srcVersion || a.sentAt - b.sentAt);
  return out;
}

/** "app message a/n2/14 (sent in n2 v18)", "request q/s1/7/1 of session s1". */
export function describeMessage(m: MessageView): string {
  const what =
    m.label !== null ? m.label : m.kind === 'app' ? 'node-to-node message' : m.kind === 'request' ? 'client request' : m.kind === 'reply' ? 'reply' : m.kind;
  return `${what} ${m.id}, ${m.from} → ${m.to}, sent in ${m.from} v${m.srcVersion} (world-line ${m.worldLine})`;
}

/** One line per edge for a tooltip: what created the dependency. */
export function describeEdge(model: PlaygroundModel, edge: DepEdge): string {
  const a = model.versions.get(edge.from);
  const b = model.versions.get(edge.to);
  const name = (v: VersionView | undefined, k: string): string => (v === undefined ? k : `${v.node} v${v.version}`);
  const head = `${name(a, edge.from)} depends on ${name(b, edge.to)}`;
  if (edge.kind === 'prefix') return `${head}: the node's previous version (per node, versions are a prefix)`;
  const o = edgeOrigin(model, edge);
  if (o.messages.length > 0) {
    const first = o.messages[0]!;
    const more = o.messages.length > 1 ? ` (and ${o.messages.length - 1} more message${o.messages.length === 2 ? '' : 's'})` : '';
    return `${head}: created by the ${describeMessage(first)}${more}`;
  }
  if (o.requests.length > 0) {
    const ids = o.requests
      .slice(0, 3)
      .map((m) => m.id)
      .join(', ');
    return `${head}: carried in a client's dependency set (the session had seen ${name(b, edge.to)}); requests received in this version: ${ids}${o.requests.length > 3 ? ' …' : ''}`;
  }
  return `${head}: the message that created it is no longer in the retained history`;
}

// ------------------------------------------------------------------ a request's path

export interface RequestHop {
  message: MessageView;
  /** The version the message was applied in, when it arrived (and is still retained). */
  version: VersionView | null;
}

export interface RequestAnswer {
  t: number;
  status: 'speculative' | 'committed' | 'rolledBack';
  result: Json;
  deps: Deps;
  worldLine: WorldLine;
}

export interface RequestPath {
  session: string;
  seq: number;
  /** The request as sent (each world-line's copy and resends). */
  requests: RequestHop[];
  /** Node-to-node messages sent by the action that applied the request, and where they were applied. */
  forwarded: RequestHop[];
  replies: MessageView[];
  /** Versions the request touched, per node (the one that ran it, and those its messages reached). */
  versions: VersionView[];
  speculative: RequestAnswer | null;
  committed: RequestAnswer | null;
  rolledBack: RequestAnswer | null;
  /** For a rolled-back request: the touched versions that were discarded (the reason is theirs). */
  discarded: VersionView[];
  /**
   * For a workflow's start request: the calls of its steps and compensations, each made by an sthread of
   * the orchestrator (caller `<node>~<workflow>/s<k>` or `/c<k>`), with where each was applied.
   */
  steps: WorkflowStepHop[];
}

export interface WorkflowStepHop extends RequestHop {
  /** `s<k>` (step k) or `c<k>` (its compensation). */
  step: string;
  /** The step's reply, when seen. */
  reply: MessageView | null;
}

/** The calls of workflow `id`'s steps, run by sthreads of `orchestrator` (see `services/workflow.ts`). */
function workflowSteps(model: PlaygroundModel, orchestrator: NodeId, id: string): WorkflowStepHop[] {
  // The steps' sthreads are callers `<orchestrator>~<id>/<step>`; a reply names its request (caller, seq, world-line).
  const prefix = `${orchestrator}~${id}/`;
  const key = (r: { caller: string; seq: number; worldLine: number }): string => messageIds.request(r.caller, r.seq, r.worldLine);
  const out: WorkflowStepHop[] = [];
  const replies = new Map<string, MessageView>();
  for (const m of model.messages.values()) {
    const r = m.kind === 'reply' ? requestOfMessageId(m.id) : null;
    if (r !== null && r.caller.startsWith(prefix)) replies.set(key(r), m);
  }
  for (const m of model.messages.values()) {
    const r = m.kind === 'request' ? requestOfMessageId(m.id) : null;
    if (r === null || !r.caller.startsWith(prefix)) continue;
    const step = r.caller.slice(prefix.length);
    if (!/^[sc]\d+$/.test(step)) continue;
    out.push({ message: m, version: versionOfHop(model, m), step, reply: replies.get(key(r)) ?? null });
  }
  return out.sort((a, b) => a.message.sentAt - b.message.sentAt);
}

function versionOfHop(model: PlaygroundModel, m: MessageView): VersionView | null {
  if (m.deliveredVersion === null) return null;
  const node = model.nodes.get(m.to);
  if (node === undefined) return null;
  return resolveVersion(model, m.to, m.deliveredVersion, Math.max(m.worldLine, 1)) ?? lineageAt(model, m.to, m.deliveredVersion, m.deliveredAt);
}

/** The instance of the node's version `version` open at time `t` (a receiver may be on a newer world-line than the message). */
function lineageAt(model: PlaygroundModel, node: NodeId, version: Version, t: number | null): VersionView | null {
  let best: VersionView | null = null;
  for (const v of model.lane(node)) {
    if (v.version !== version) continue;
    if (t !== null && v.openedAt > t) continue;
    if (best === null || v.openedAt > best.openedAt) best = v;
  }
  return best;
}

/** Everything the retained events tell about request `seq` of `session`. */
export function requestPath(model: PlaygroundModel, session: string, seq: number): RequestPath {
  const qPrefix = `q/${session}/${seq}/`;
  const rPrefix = `r/${session}/${seq}/`;
  const requests: RequestHop[] = [];
  const replies: MessageView[] = [];
  for (const m of model.messages.values()) {
    if (m.kind === 'request' && m.id.startsWith(qPrefix)) requests.push({ message: m, version: versionOfHop(model, m) });
    else if (m.kind === 'reply' && m.id.startsWith(rPrefix)) replies.push(m);
  }
  // The action that applied the request sent its node-to-node messages between the request's
  // delivery and its reply, in the same batch of events: read them from the event list.
  const forwarded: RequestHop[] = [];
  const delivered = new Set(requests.filter((h) => h.message.deliveredAt !== null).map((h) => h.message.id));
  const ev = model.events;
  for (let i = 0; i < ev.length; i++) {
    const e = ev[i]!;
    if (e.type !== 'messageDelivered' || !delivered.has(e.id) || e.duplicate) continue;
    for (let j = i + 1; j < ev.length && j < i + 400; j++) {
      const f = ev[j]!;
      if (f.type === 'messageSent' && f.kind === 'reply' && f.id.startsWith(rPrefix)) break;
      if (f.type === 'messageDelivered' && f.to === e.to && f.kind === 'request') break; // the node's next request
      if (f.type === 'messageSent' && f.kind === 'app' && f.from === e.to && !f.resend) {
        const m = [...model.messages.values()].findLast((x) => x.id === f.id && x.sentAt === f.t);
        if (m !== undefined) forwarded.push({ message: m, version: versionOfHop(model, m) });
      }
    }
  }
  let speculative: RequestAnswer | null = null;
  let committed: RequestAnswer | null = null;
  let rolledBack: RequestAnswer | null = null;
  for (const e of ev) {
    if (e.type !== 'sessionResult' || e.session !== session || e.seq !== seq) continue;
    const a: RequestAnswer = { t: e.t, status: e.status, result: e.result, deps: e.deps, worldLine: e.worldLine };
    if (e.status === 'speculative') speculative ??= a;
    else if (e.status === 'committed') committed ??= a;
    else rolledBack ??= a;
  }
  const seen = new Set<string>();
  const versions: VersionView[] = [];
  for (const h of [...requests, ...forwarded]) {
    if (h.version !== null && !seen.has(h.version.key)) {
      seen.add(h.version.key);
      versions.push(h.version);
    }
  }
  // The answer's dependency set names versions too (what the session had seen).
  if (speculative !== null) {
    for (const [node, v] of Object.entries(speculative.deps)) {
      const x = resolveVersion(model, node, v, speculative.worldLine);
      if (x !== undefined && !seen.has(x.key)) {
        seen.add(x.key);
        versions.push(x);
      }
    }
  }
  // A workflow: its answer names it; its steps are calls of the orchestrator's sthreads.
  const answer = speculative?.result ?? committed?.result ?? null;
  const wfId =
    answer !== null && typeof answer === 'object' && !Array.isArray(answer) && typeof answer.id === 'string' && typeof answer.status === 'string'
      ? answer.id
      : null;
  const orchestrator = requests.find((h) => h.message.deliveredAt !== null)?.message.to ?? null;
  const steps = wfId !== null && orchestrator !== null ? workflowSteps(model, orchestrator, wfId) : [];
  for (const h of steps) {
    if (h.version !== null && !seen.has(h.version.key)) {
      seen.add(h.version.key);
      versions.push(h.version);
    }
  }
  const discarded = versions.filter((v) => v.state === 'rolled-back');
  return { session, seq, requests, forwarded, replies, versions, speculative, committed, rolledBack, discarded, steps };
}

/** Session and seq of a request (or reply) message id, or null. */
export function requestOfMessage(id: string): { session: string; seq: number } | null {
  const r = requestOfMessageId(id);
  return r === null ? null : { session: r.caller, seq: r.seq };
}
