import { memo, useEffect, useMemo, useState } from 'react';
import type { Json } from '@dse/shared';
import type { PlaygroundModel } from '../model/model';
import { Derived } from '../live/derived';
import type {
  BrokerEventView,
  GroupView,
  KvKeyView,
  Scenario,
  PanelService,
  ServicesView,
  StepStatus,
  TopicView,
  WalLogView,
  WorkflowView,
} from '../model/services';
import { deriveServices, SCENARIOS, PANEL_SERVICES, serviceCounts } from '../model/services';

/**
 * The services' state, read back from the nodes' app state (see model/services.ts): what the
 * write-ahead logs, the key-value store, the broker's topics and the workflows hold right now, each
 * record marked committed (solid, ✓) or speculative (orange, dashed, "spec": a recovery may still
 * take it back). After a kill the rolled-back records disappear, because the node states lose them.
 *
 * Stable test ids (and data attributes):
 * - `service-panel` (data-service: the service shown); `service-tab-<wal|kvstore|broker|workflow>`;
 * - `wal-log` (data-log, data-node, data-length, data-committed-length), `wal-entry` (data-pos, data-state);
 * - `kv-key` (data-key, data-node, data-version: the writer's version, data-state);
 * - `broker-topic` (data-topic, data-length, data-committed-length), `broker-event` (data-offset, data-state), `broker-group` (data-group,
 *   data-offset: the marker in the event list), `broker-producer` (data-producer);
 * - `workflow-<id>` (data-workflow: the id, data-status: running/compensating/completed/failed, data-state), `workflow-step`
 *   (data-status: booked/declined/cancelled/compensated/…), `stock-item` (data-item, data-state),
 *   `workflow-summary` (data-total, data-finished-committed: workflows completed or failed, committed).
 * `data-state` is `committed` or `speculative`.
 */

const SERVICE_LABEL: Record<PanelService, string> = { wal: 'write-ahead log', kvstore: 'key-value store', broker: 'event broker', workflow: 'workflows' };
/** How many of the newest entries a log or topic lists; how many keys and workflows. */
const ENTRIES_SHOWN = 40;
const KEYS_SHOWN = 60;
const WORKFLOWS_SHOWN = 16;
/**
 * The derivation runs at most this often (a busy cluster changes node state with every event), and
 * never takes more than a tenth of the time: a state of 20k keys costs some 30 ms to read back.
 */
const DERIVE_EVERY_MS = 250;
const DERIVE_SHARE_MAX = 0.1;

type RecState = 'committed' | 'speculative';
const stateOf = (committed: boolean): RecState => (committed ? 'committed' : 'speculative');

function fmt(v: Json, max = 48): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** The second cue besides colour: a tick or the word "spec". */
function Badge({ committed }: { committed: boolean }) {
  return committed ? (
    <span className="svc-badge committed" title="committed: no failure can take it back">
      ✓
    </span>
  ) : (
    <span className="svc-badge speculative" title="speculative: a recovery may still take it back">
      spec
    </span>
  );
}

function useServices(model: PlaygroundModel, rev: number): ServicesView {
  const [derived] = useState(() => new Derived(deriveServices, DERIVE_EVERY_MS, DERIVE_SHARE_MAX));
  const [, setTick] = useState(0);
  const view = derived.get(model, rev);
  const stale = derived.isStale(rev);
  const every = derived.keptMs;
  useEffect(() => {
    // Events came in while the cached view was fresh enough: redraw once it is due, even if no more come.
    if (!stale) return;
    const t = setTimeout(() => setTick((x) => x + 1), every);
    return () => clearTimeout(t);
  }, [stale, rev, every]);
  return view;
}

export interface ServicesProps {
  model: PlaygroundModel;
  rev: number;
  /** The scenario the cluster runs (its service is shown unless the person picks another). */
  scenario: Scenario;
  /** Select a workflow's start request (its path in the inspector). */
  onSelectRequest?(r: { session: string; seq: number }): void;
}

export function Services({ model, rev, scenario, onSelectRequest }: ServicesProps) {
  const view = useServices(model, rev);
  const counts = useMemo(() => serviceCounts(view), [view]);
  const [picked, setPicked] = useState<PanelService | null>(null);
  // A new scenario shows its own service again (reset while rendering, not in an effect: no extra frame).
  const [pickedFor, setPickedFor] = useState(scenario);
  if (pickedFor !== scenario) {
    setPickedFor(scenario);
    setPicked(null);
  }
  const fallback = PANEL_SERVICES.find((s) => counts[s] > 0) ?? 'wal';
  const shown: PanelService = picked ?? (scenario === 'kv' ? fallback : scenario);
  const label = SCENARIOS.find((s) => s.id === scenario)?.label ?? scenario;
  return (
    <section className="services" aria-label="Service state" data-testid="service-panel" data-service={shown}>
      <header>
        <strong>Service state</strong> <span className="muted">(scenario: {label}; from the nodes’ state: committed base + uncommitted changes)</span>{' '}
        <span role="tablist" className="svc-tabs">
          {PANEL_SERVICES.map((s) => (
            <button
              key={s}
              type="button"
              role="tab"
              aria-selected={shown === s}
              className={shown === s ? 'active' : undefined}
              onClick={() => setPicked(s)}
              data-testid={`service-tab-${s}`}
            >
              {SERVICE_LABEL[s]} ({counts[s]})
            </button>
          ))}
        </span>
      </header>
      <p className="svc-legend muted">
        <span className="svc-rec committed">
          <Badge committed /> committed
        </span>{' '}
        <span className="svc-rec speculative">
          <Badge committed={false} /> speculative (may still be rolled back)
        </span>
        {scenario === 'kv' && ' · The replicated kv keeps plain keys: see each node’s state in the node panels.'}
      </p>
      {shown === 'wal' && <WalView logs={view.wal} />}
      {shown === 'kvstore' && <KvView keys={view.kv} />}
      {shown === 'broker' && <BrokerView topics={view.topics} />}
      {shown === 'workflow' && <WorkflowsView view={view} onSelectRequest={onSelectRequest} />}
    </section>
  );
}

function Empty({ what }: { what: string }) {
  return <p className="muted">No {what} in the nodes’ state yet. Pick its scenario above to run its workload.</p>;
}

// ------------------------------------------------------------------ write-ahead log

// Memoised: the derived view changes a few times a second, the page redraws every frame.
const WalView = memo(function WalView({ logs }: { logs: WalLogView[] }) {
  if (logs.length === 0) return <Empty what="write-ahead log" />;
  return (
    <div className="svc-grid">
      {logs.map((l) => {
        const shown = l.entries.slice(-ENTRIES_SHOWN);
        const hidden = l.entries.length - shown.length;
        return (
          <div
            key={`${l.log}@${l.node}`}
            className="svc-box"
            data-testid="wal-log"
            data-log={l.log}
            data-node={l.node}
            data-length={l.length}
            data-committed-length={l.committedLength}
          >
            <h4>
              log <code>{l.log}</code> on {l.node}
            </h4>
            <div className="muted">
              length {l.length} · committed prefix {l.committedLength} · speculative tail {l.length - l.committedLength}
            </div>
            {hidden > 0 && <div className="muted">… {hidden} earlier entries</div>}
            <ol className="svc-list">
              {shown.map((e, i) => (
                <li
                  key={e.pos}
                  className={`svc-rec ${stateOf(e.committed)}${!e.committed && (hidden + i === 0 || l.entries[hidden + i - 1]!.committed) ? ' tail-start' : ''}`}
                  data-testid="wal-entry"
                  data-pos={e.pos}
                  data-state={stateOf(e.committed)}
                >
                  <span className="pos">#{e.pos}</span> <span className="data">{fmt(e.data)}</span> <span className="muted">v{e.version}</span>{' '}
                  <Badge committed={e.committed} />
                </li>
              ))}
            </ol>
          </div>
        );
      })}
    </div>
  );
});

// ------------------------------------------------------------------ key-value store

const KvView = memo(function KvView({ keys }: { keys: KvKeyView[] }) {
  if (keys.length === 0) return <Empty what="key-value store keys" />;
  const shown = keys.slice(0, KEYS_SHOWN);
  return (
    <>
      <table className="svc-table">
        <thead>
          <tr>
            <th>key</th>
            <th>value</th>
            <th>writes</th>
            <th>written by</th>
            <th>state</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((k) => (
            <tr
              key={`${k.key}@${k.node}`}
              className={`svc-rec ${stateOf(k.committed)}`}
              data-testid="kv-key"
              data-key={k.key}
              data-node={k.node}
              data-version={k.version}
              data-state={stateOf(k.committed)}
            >
              <td>
                <code>{k.key}</code>
              </td>
              <td>{k.value === null ? <span className="muted">deleted</span> : fmt(k.value)}</td>
              <td>{k.writes}</td>
              <td>
                {k.node} v{k.version}
              </td>
              <td>
                <Badge committed={k.committed} /> {stateOf(k.committed)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {keys.length > shown.length && <p className="muted">and {keys.length - shown.length} more keys</p>}
    </>
  );
});

// ------------------------------------------------------------------ broker

function GroupMarker({ g }: { g: GroupView }) {
  return (
    <li
      className={`group-marker svc-rec ${stateOf(g.committed)}`}
      data-testid="broker-group"
      data-group={g.group}
      data-offset={g.offset}
      data-state={stateOf(g.committed)}
    >
      ▶ group <strong>{g.group}</strong> reads next from offset {g.offset}
      {!g.committed && g.committedOffset !== null && <span className="muted"> (committed: {g.committedOffset})</span>} <Badge committed={g.committed} />
    </li>
  );
}

function TopicBox({ t }: { t: TopicView }) {
  const shown = t.events.slice(-ENTRIES_SHOWN);
  const first = shown[0]?.offset ?? t.length;
  const groupsAt = (o: number): GroupView[] => t.groups.filter((g) => g.offset === o);
  const before = t.groups.filter((g) => g.offset < first);
  const after = t.groups.filter((g) => g.offset >= t.length && !shown.some((e) => e.offset === g.offset));
  const row = (e: BrokerEventView) => (
    <li key={e.offset} className={`svc-rec ${stateOf(e.committed)}`} data-testid="broker-event" data-offset={e.offset} data-state={stateOf(e.committed)}>
      <span className="pos">@{e.offset}</span> {e.producer}#{e.seq} <span className="data">{fmt(e.data)}</span> <span className="muted">v{e.version}</span>{' '}
      <Badge committed={e.committed} />
    </li>
  );
  return (
    <div className="svc-box" data-testid="broker-topic" data-topic={t.topic} data-length={t.length} data-committed-length={t.committedLength}>
      <h4>
        topic <code>{t.topic}</code> on {t.node}
      </h4>
      <div className="muted">
        {t.length} events · {t.committedLength} committed
      </div>
      {before.length > 0 && (
        <ul className="svc-list">
          {before.map((g) => (
            <GroupMarker key={g.group} g={g} />
          ))}
        </ul>
      )}
      {t.events.length > shown.length && <div className="muted">… {t.events.length - shown.length} earlier events</div>}
      <ol className="svc-list">
        {shown.map((e) => [...groupsAt(e.offset).map((g) => <GroupMarker key={`g-${g.group}`} g={g} />), row(e)])}
        {after.map((g) => (
          <GroupMarker key={`g-${g.group}`} g={g} />
        ))}
      </ol>
      {t.producers.length > 0 && (
        <table className="svc-table">
          <thead>
            <tr>
              <th>producer</th>
              <th>last seq</th>
              <th>committed seq</th>
            </tr>
          </thead>
          <tbody>
            {t.producers.map((p) => (
              <tr
                key={p.producer}
                className={`svc-rec ${stateOf(p.committed)}`}
                data-testid="broker-producer"
                data-producer={p.producer}
                data-state={stateOf(p.committed)}
              >
                <td>{p.producer}</td>
                <td>
                  {p.lastSeq} <Badge committed={p.committed} />
                </td>
                <td>{p.committedSeq ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

const BrokerView = memo(function BrokerView({ topics }: { topics: TopicView[] }) {
  if (topics.length === 0) return <Empty what="broker topics" />;
  return (
    <div className="svc-grid">
      {topics.map((t) => (
        <TopicBox key={`${t.topic}@${t.node}`} t={t} />
      ))}
    </div>
  );
});

// ------------------------------------------------------------------ workflows

const STEP_ICON: Record<StepStatus, string> = {
  pending: '·',
  running: '…',
  done: '✓',
  booked: '✓',
  declined: '✗',
  'sold out': '✗',
  refused: '✗',
  failed: '✗',
  cancelled: '⊘',
  compensating: '↩…',
  compensated: '↩',
  skipped: '–',
};

function WorkflowBox({ w, onSelectRequest }: { w: WorkflowView; onSelectRequest?(r: { session: string; seq: number }): void }) {
  return (
    <div
      className={`svc-box wf wf-${w.status} svc-rec ${stateOf(w.committed)}`}
      data-testid={`workflow-${w.id}`}
      data-workflow={w.id}
      data-status={w.status}
      data-state={stateOf(w.committed)}
    >
      <h4>
        workflow <code>{w.id}</code> <span className={`wf-status wf-${w.status}`}>{w.status}</span> <Badge committed={w.committed} />
      </h4>
      <div className="muted">
        orchestrated on {w.node}, record v{w.version}
        {w.failedAt !== null && ` · step ${w.failedAt} failed${w.reason !== null ? ` (${fmt(w.reason, 30)})` : ''}`}
        {w.compensated.length > 0 && ` · compensated, last first: ${w.compensated.map((k) => `step ${k}`).join(', ')}`}
        {w.start !== null && onSelectRequest !== undefined && (
          <>
            {' '}
            <button type="button" className="link" onClick={() => onSelectRequest(w.start!)} data-testid="workflow-path">
              its path
            </button>
          </>
        )}
      </div>
      <ol className="svc-list wf-steps" start={0}>
        {w.steps.map((s) => (
          <li key={s.index} className={`step st-${s.status.replace(' ', '-')}`} data-testid="workflow-step" data-status={s.status}>
            <span className="step-icon" aria-hidden="true">
              {STEP_ICON[s.status]}
            </span>{' '}
            {s.kind} {s.item !== null && <code>{s.item}</code>} <span className="muted">on {s.node}</span> — <strong>{s.status}</strong>
            {s.compensationOrder !== null && <span className="muted"> (compensation {s.compensationOrder})</span>}
            {s.booking !== null && (
              <span className="muted">
                {' '}
                · booking on {s.booking.node} <Badge committed={s.booking.committed} />
              </span>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}

const WorkflowsView = memo(function WorkflowsView({
  view,
  onSelectRequest,
}: {
  view: ServicesView;
  onSelectRequest?(r: { session: string; seq: number }): void;
}) {
  if (view.workflows.length === 0 && view.stock.length === 0) return <Empty what="workflows" />;
  // The unfinished ones first, then the last finished ones (by id), in id order.
  const open = view.workflows.filter((w) => w.status === 'running' || w.status === 'compensating').slice(-WORKFLOWS_SHOWN);
  const done = view.workflows.filter((w) => w.status === 'completed' || w.status === 'failed');
  const pick = new Set([...open, ...done.slice(-Math.max(0, WORKFLOWS_SHOWN - open.length))]);
  const shown = view.workflows.filter((w) => pick.has(w));
  const by = (s: string): number => view.workflows.filter((w) => w.status === s).length;
  const finishedCommitted = done.filter((w) => w.committed).length;
  return (
    <>
      <div className="muted" data-testid="workflow-summary" data-total={view.workflows.length} data-finished-committed={finishedCommitted}>
        {view.workflows.length} workflows: {by('completed')} completed, {by('failed')} failed (compensated), {by('running') + by('compensating')} running;{' '}
        {finishedCommitted} finished and committed
        {view.workflows.length > shown.length ? ` · ${shown.length} shown (the unfinished first)` : ''}
      </div>
      <div className="svc-grid">
        {shown.map((w) => (
          <WorkflowBox key={`${w.id}@${w.node}`} w={w} onSelectRequest={onSelectRequest} />
        ))}
      </div>
      {view.stock.length > 0 && (
        <table className="svc-table">
          <caption>travel stock</caption>
          <thead>
            <tr>
              <th>item</th>
              <th>left</th>
              <th>provider</th>
              <th>state</th>
            </tr>
          </thead>
          <tbody>
            {view.stock.map((s) => (
              <tr
                key={`${s.item}@${s.node}`}
                className={`svc-rec ${stateOf(s.committed)}`}
                data-testid="stock-item"
                data-item={s.item}
                data-state={stateOf(s.committed)}
              >
                <td>
                  <code>{s.item}</code>
                </td>
                <td>{s.left}</td>
                <td>
                  {s.node} v{s.version}
                </td>
                <td>
                  <Badge committed={s.committed} /> {stateOf(s.committed)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
});
