import type { Json, NodeId, Version, WorkloadKind } from '@dse/shared';
import type { PlaygroundModel, StateChange } from './model';
import { versionKey } from './model';

/**
 * The services' state (write-ahead log, key-value store, event broker, workflows and their travel
 * providers) read back from the nodes' app state, which the model follows from `stateChanged` events:
 * each node's current state is its committed base plus its uncommitted changes (minus those of
 * versions the events already told us were rolled back). Pure: the same model gives the same view.
 *
 * Key layout (see backend/src/services): `wal/<log>/n`, `wal/<log>/e/<pos>` = {d, v}; `kv/<key>` =
 * {x, n, v}; `br/<topic>/n`, `br/<topic>/e/<offset>` = {p, s, d, v}, `br/<topic>/p/<producer>` = last
 * seq, `br/<topic>/g/<group>` = offset; `wf/<id>` = workflow record; `tr/s/<item>` = {c, v};
 * `tr/b/<wf>/<step>` = booking. A record's `v` is the node version that wrote it: at or below the
 * node's committed version, it is committed; above, speculative (a recovery may still take it back).
 */

/** What the playground can run: the replicated kv (kinds kv/chain/mixed) or one of the four services. */
export type Scenario = 'kv' | 'wal' | 'kvstore' | 'broker' | 'workflow';
export type PanelService = Exclude<Scenario, 'kv'>;

export const SCENARIOS: readonly { id: Scenario; label: string }[] = [
  { id: 'kv', label: 'replicated kv' },
  { id: 'wal', label: 'write-ahead log' },
  { id: 'kvstore', label: 'key-value store' },
  { id: 'broker', label: 'event broker' },
  { id: 'workflow', label: 'workflows' },
];
export const PANEL_SERVICES: readonly PanelService[] = ['wal', 'kvstore', 'broker', 'workflow'];

/** Requests a second when a scenario is picked while the workload is stopped. */
export const SCENARIO_DEFAULT_RATE = 10;

export function isScenario(s: string | null | undefined): s is Scenario {
  return SCENARIOS.some((x) => x.id === s);
}

/** The scenario a workload kind belongs to (kv, chain and mixed are all the replicated kv). */
export function scenarioOf(kind: string | null | undefined): Scenario {
  if (kind === 'wal' || kind === 'kvstore' || kind === 'broker' || kind === 'workflow') return kind;
  return 'kv';
}

/** The workload to send for `scenario`: the current kind when it already is that scenario, its rate (or a default when stopped). */
export function workloadFor(scenario: Scenario, current: { kind: WorkloadKind; rate: number } | null): { kind: WorkloadKind; rate: number } {
  const rate = current !== null && current.rate > 0 ? current.rate : SCENARIO_DEFAULT_RATE;
  if (scenario === 'kv') return { kind: current !== null && scenarioOf(current.kind) === 'kv' ? current.kind : 'mixed', rate };
  // The four service scenarios are workload kinds of the server by the same names.
  return { kind: scenario, rate };
}

// ------------------------------------------------------------------ views

export interface WalEntryView {
  pos: number;
  data: Json;
  version: Version;
  committed: boolean;
}
export interface WalLogView {
  log: string;
  node: NodeId;
  /** The log's (speculative) length, from `wal/<log>/n`. */
  length: number;
  /** Entries from position 0 whose version is committed: the prefix that never changes. */
  committedLength: number;
  entries: WalEntryView[];
}

export interface KvKeyView {
  key: string;
  node: NodeId;
  /** null: deleted (the record stays as a tombstone). */
  value: Json;
  writes: number;
  version: Version;
  committed: boolean;
}

export interface BrokerEventView {
  offset: number;
  producer: string;
  seq: number;
  data: Json;
  version: Version;
  committed: boolean;
}
export interface ProducerView {
  producer: string;
  lastSeq: number;
  /** Its last seq as committed (null: none committed yet). */
  committedSeq: number | null;
  committed: boolean;
}
export interface GroupView {
  group: string;
  offset: number;
  committedOffset: number | null;
  committed: boolean;
}
export interface TopicView {
  topic: string;
  node: NodeId;
  length: number;
  committedLength: number;
  events: BrokerEventView[];
  producers: ProducerView[];
  groups: GroupView[];
}

export type StepStatus =
  'pending' | 'running' | 'done' | 'booked' | 'declined' | 'sold out' | 'refused' | 'failed' | 'cancelled' | 'compensating' | 'compensated' | 'skipped';
export interface WorkflowStepView {
  index: number;
  name: string;
  /** The travel kind (flight, hotel, car, payment) or the service the step calls. */
  kind: string;
  item: string | null;
  node: NodeId;
  status: StepStatus;
  /** Its compensation ran (in this order among the workflow's compensations, from 1). */
  compensationOrder: number | null;
  /** The booking record's node and whether it is committed (null: no booking record seen). */
  booking: { node: NodeId; committed: boolean; reserved: number; cancelled: number } | null;
}
export type WorkflowStatusName = 'running' | 'compensating' | 'completed' | 'failed';
export interface WorkflowView {
  id: string;
  node: NodeId;
  status: WorkflowStatusName;
  version: Version;
  committed: boolean;
  steps: WorkflowStepView[];
  failedAt: number | null;
  reason: Json;
  /** Steps compensated, in the order their compensations ran. */
  compensated: number[];
  /** The request that started it (its session's caller id and seq), for its path. */
  start: { session: string; seq: number } | null;
}
export interface StockView {
  item: string;
  node: NodeId;
  left: number;
  version: Version;
  committed: boolean;
}

export interface ServicesView {
  wal: WalLogView[];
  kv: KvKeyView[];
  topics: TopicView[];
  workflows: WorkflowView[];
  stock: StockView[];
}

/** How many things each service has (for the panel's tabs). */
export function serviceCounts(v: ServicesView): Record<PanelService, number> {
  return { wal: v.wal.length, kvstore: v.kv.length, broker: v.topics.length, workflow: v.workflows.length };
}

// ------------------------------------------------------------------ derivation

/** What the derivation reads of a node (its `NodeView` and its state in the model's `appState`). */
export interface NodeStateInput {
  id: NodeId;
  removed: boolean;
  committedVersion: Version;
  committedState: Record<string, Json>;
  pendingChanges: readonly StateChange[];
}

interface NodeRead {
  id: NodeId;
  cv: Version;
  base: Record<string, Json>;
  state: Record<string, Json>;
  /** Keys an uncommitted change touched (their current value may still be taken back). */
  touched: Set<string>;
}

function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function isObj(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: Json | undefined, dflt = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}

function str(v: Json | undefined): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * Reads one node: its current state, without the changes of versions the events say were rolled
 * back (a killed node's lost versions are marked at once; its `rollback` event comes only when it
 * restarts).
 */
function readNode(n: NodeStateInput, rolledBack: (node: NodeId, c: StateChange) => boolean): NodeRead {
  const state: Record<string, Json> = { ...n.committedState };
  const touched = new Set<string>();
  for (const c of n.pendingChanges) {
    if (rolledBack(n.id, c)) continue;
    for (const [k, v] of Object.entries(c.set)) {
      state[k] = v;
      touched.add(k);
    }
    for (const k of c.deleted) {
      delete state[k];
      touched.add(k);
    }
  }
  return { id: n.id, cv: n.committedVersion, base: n.committedState, state, touched };
}

/** Every service's state from the model's nodes (removed nodes left out). */
export function deriveServices(model: Pick<PlaygroundModel, 'nodes' | 'versions' | 'appState'>): ServicesView {
  const rolledBack = (node: NodeId, c: StateChange): boolean => model.versions.get(versionKey(node, c.worldLine, c.version))?.state === 'rolled-back';
  const reads = nodeStateInputs(model)
    .filter((n) => !n.removed)
    .map((n) => readNode(n, rolledBack));
  return deriveFromReads(reads);
}

/** Each node of the model as the derivation reads it: its view and its state in the model's `appState`. */
export function nodeStateInputs(model: Pick<PlaygroundModel, 'nodes' | 'appState'>): NodeStateInput[] {
  return [...model.nodes.values()].map((n) => {
    const s = model.appState.stateOf(n.id);
    return { id: n.id, removed: n.removed, committedVersion: n.committedVersion, committedState: s.committed, pendingChanges: s.pending };
  });
}

/** The same, from plain node states (for tests and other callers without a model). */
export function deriveServicesFrom(nodes: readonly NodeStateInput[]): ServicesView {
  return deriveFromReads(nodes.filter((n) => !n.removed).map((n) => readNode(n, () => false)));
}

function deriveFromReads(reads: NodeRead[]): ServicesView {
  reads.sort((a, b) => compareIds(a.id, b.id));
  const wal = new Map<string, WalLogView>();
  const topics = new Map<string, TopicView>();
  const kv: KvKeyView[] = [];
  const wfRecords: { id: string; node: NodeRead; rec: { [k: string]: Json } }[] = [];
  const bookings = new Map<string, { node: NodeRead; b: { [k: string]: Json } }>();
  const stock: StockView[] = [];
  const committedRec = (n: NodeRead, v: Json | undefined): boolean => num(v, Infinity) <= n.cv;

  for (const n of reads) {
    const walOf = (log: string): WalLogView => {
      const k = `${log}\u0000${n.id}`;
      let l = wal.get(k);
      if (l === undefined) wal.set(k, (l = { log, node: n.id, length: 0, committedLength: 0, entries: [] }));
      return l;
    };
    const topicOf = (topic: string): TopicView => {
      const k = `${topic}\u0000${n.id}`;
      let t = topics.get(k);
      if (t === undefined) topics.set(k, (t = { topic, node: n.id, length: 0, committedLength: 0, events: [], producers: [], groups: [] }));
      return t;
    };
    for (const [key, val] of Object.entries(n.state)) {
      const parts = key.split('/');
      switch (parts[0]) {
        case 'wal': {
          if (parts.length === 3 && parts[2] === 'n') walOf(parts[1]!).length = num(val);
          else if (parts.length === 4 && parts[2] === 'e' && isObj(val)) {
            walOf(parts[1]!).entries.push({ pos: Number(parts[3]), data: val.d ?? null, version: num(val.v), committed: committedRec(n, val.v) });
          }
          break;
        }
        case 'kv': {
          if (!isObj(val)) break;
          kv.push({ key: key.slice(3), node: n.id, value: val.x ?? null, writes: num(val.n), version: num(val.v), committed: committedRec(n, val.v) });
          break;
        }
        case 'br': {
          if (parts.length === 3 && parts[2] === 'n') topicOf(parts[1]!).length = num(val);
          else if (parts.length === 4) {
            const t = topicOf(parts[1]!);
            const committed = !n.touched.has(key);
            const before = n.base[key];
            if (parts[2] === 'e' && isObj(val)) {
              t.events.push({
                offset: Number(parts[3]),
                producer: str(val.p) ?? '?',
                seq: num(val.s),
                data: val.d ?? null,
                version: num(val.v),
                committed: committedRec(n, val.v),
              });
            } else if (parts[2] === 'p') {
              t.producers.push({ producer: parts[3]!, lastSeq: num(val), committedSeq: typeof before === 'number' ? before : null, committed });
            } else if (parts[2] === 'g') {
              t.groups.push({ group: parts[3]!, offset: num(val), committedOffset: typeof before === 'number' ? before : null, committed });
            }
          }
          break;
        }
        case 'wf': {
          if (isObj(val)) wfRecords.push({ id: key.slice(3), node: n, rec: val });
          break;
        }
        case 'tr': {
          if (parts[1] === 's' && parts.length === 3 && isObj(val)) {
            stock.push({ item: parts[2]!, node: n.id, left: num(val.c), version: num(val.v), committed: committedRec(n, val.v) });
          } else if (parts[1] === 'b' && parts.length === 4 && isObj(val)) {
            bookings.set(`${parts[2]}/${parts[3]}`, { node: n, b: val });
          }
          break;
        }
        default:
          break;
      }
    }
  }

  const walLogs = [...wal.values()];
  for (const l of walLogs) {
    l.entries.sort((a, b) => a.pos - b.pos);
    let c = 0;
    while (c < l.entries.length && l.entries[c]!.pos === c && l.entries[c]!.committed) c++;
    l.committedLength = c;
  }
  walLogs.sort((a, b) => compareIds(a.log, b.log) || compareIds(a.node, b.node));

  const topicList = [...topics.values()];
  for (const t of topicList) {
    t.events.sort((a, b) => a.offset - b.offset);
    let c = 0;
    while (c < t.events.length && t.events[c]!.offset === c && t.events[c]!.committed) c++;
    t.committedLength = c;
    t.producers.sort((a, b) => compareIds(a.producer, b.producer));
    t.groups.sort((a, b) => compareIds(a.group, b.group));
  }
  topicList.sort((a, b) => compareIds(a.topic, b.topic) || compareIds(a.node, b.node));

  kv.sort((a, b) => compareIds(a.key, b.key) || compareIds(a.node, b.node));
  stock.sort((a, b) => compareIds(a.item, b.item) || compareIds(a.node, b.node));

  const workflows = wfRecords.map(({ id, node, rec }) => workflowView(id, node, rec, bookings, committedRec(node, rec.v)));
  workflows.sort((a, b) => compareIds(a.id, b.id));
  return { wal: walLogs, kv, topics: topicList, workflows, stock };
}

function workflowView(
  id: string,
  node: NodeRead,
  rec: { [k: string]: Json },
  bookings: Map<string, { node: NodeRead; b: { [k: string]: Json } }>,
  committed: boolean,
): WorkflowView {
  const ph = str(rec.ph) ?? 'run';
  const k = num(rec.k);
  const failedAt = typeof rec.f === 'number' ? rec.f : null;
  const cp = Array.isArray(rec.cp) ? rec.cp.filter((x): x is number => typeof x === 'number') : [];
  const out = isObj(rec.out) ? rec.out : null;
  const status: WorkflowStatusName =
    ph === 'done' ? (out !== null && out.status === 'failed' ? 'failed' : 'completed') : ph === 'comp' ? 'compensating' : 'running';
  const rawSteps = Array.isArray(rec.st) ? rec.st : [];
  const steps: WorkflowStepView[] = rawSteps.map((s, i) => {
    const o = isObj(s) ? s : {};
    const d = isObj(o.do) ? o.do : {};
    const bk = bookings.get(`${id}/${i}`);
    const name = str(o.name) ?? `step ${i}`;
    const kind = str(d.svc) === 'travel' ? (name.split(' ')[0] ?? 'travel') : (str(d.svc) ?? 'step');
    const item = str(d.item);
    const order = cp.indexOf(i);
    let st: StepStatus;
    if (order >= 0) st = 'compensated';
    else if (failedAt !== null && i === failedAt) {
      const why = bk !== undefined ? str(bk.b.why) : null;
      st = why === 'declined' ? 'declined' : why === 'sold out' ? 'sold out' : bk !== undefined ? 'refused' : 'failed';
    } else if (failedAt !== null && i > failedAt) st = 'skipped';
    else if (ph === 'comp' && i === k) st = 'compensating';
    else if (bk !== undefined) {
      const b = str(bk.b.st);
      st = b === 'cancelled' ? 'cancelled' : b === 'refused' ? 'refused' : 'booked';
    } else if (ph === 'run' && i === k) st = 'running';
    else if (ph === 'run' && i > k) st = 'pending';
    else st = 'done';
    return {
      index: i,
      name,
      kind,
      item,
      node: str(o.node) ?? '?',
      status: st,
      compensationOrder: order >= 0 ? order + 1 : null,
      booking: bk === undefined ? null : { node: bk.node.id, committed: num(bk.b.v, Infinity) <= bk.node.cv, reserved: num(bk.b.n), cancelled: num(bk.b.cn) },
    };
  });
  const start = typeof rec.c === 'string' && typeof rec.q === 'number' ? { session: rec.c, seq: rec.q } : null;
  return { id, node: node.id, status, version: num(rec.v), committed, steps, failedAt, reason: rec.why ?? null, compensated: cp, start };
}
