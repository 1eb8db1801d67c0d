import { memo, useState } from 'react';
import type { ClusterConfig, CutKind, Json, Mode, NodeId, RecoveryKind, WorkloadConfig, WorkloadKind } from '@dse/shared';
import { CUT_KINDS, MODES, RECOVERY_KINDS, WORKLOAD_KINDS } from '@dse/shared';
import type { KillPreview, RollbackExplanation } from '../model/analysis';
import type { PlaygroundModel } from '../model/model';
import { worldLineCause } from '../model/model';
import type { LiveStats } from '../model/stats';
import type { Scenario } from '../model/services';
import { SCENARIOS, scenarioOf } from '../model/services';
import { OKABE_ITO, STATE_COLOUR, STATE_CUE, STATE_LABEL } from '../palette';
import type { VersionState } from '../model/model';
import { countUnits, formatUnitCounts, unitsOfState } from '../model/placement';
import { nodeViewText } from './Placement';

// ------------------------------------------------------------------ legend

export function Legend() {
  const states: VersionState[] = ['speculative', 'persisting', 'committed', 'rolled-back'];
  return (
    <div className="legend" aria-label="Legend">
      {states.map((s) => (
        <span key={s} className="legend-item">
          <svg width="30" height="14" aria-hidden="true">
            <rect
              x="1"
              y="1"
              width="28"
              height="12"
              rx="2"
              fill={
                s === 'speculative'
                  ? 'url(#hatch-speculative)'
                  : s === 'persisting'
                    ? 'url(#fill-persisting)'
                    : s === 'committed'
                      ? STATE_COLOUR.committed
                      : 'url(#fill-rolled-back)'
              }
              stroke={STATE_COLOUR[s]}
              strokeWidth="1.5"
              strokeDasharray={s === 'speculative' ? '4 2' : s === 'persisting' ? '1.5 2' : undefined}
            />
            {s === 'rolled-back' && <path d="M2,2L28,12M2,12L28,2" stroke={OKABE_ITO.vermillion} strokeWidth="1.5" />}
          </svg>
          {STATE_LABEL[s]} <span className="muted">({STATE_CUE[s]})</span>
        </span>
      ))}
      <span className="legend-item">
        <svg width="14" height="14" aria-hidden="true">
          <circle cx="7" cy="7" r="3" fill={OKABE_ITO.blue} />
        </svg>
        persisted, waiting for dependencies
      </span>
      <span className="legend-item">
        <svg width="30" height="14" aria-hidden="true">
          <line x1="2" y1="7" x2="28" y2="7" stroke="#000" strokeWidth="3" />
        </svg>
        committed cut
      </span>
      <span className="legend-item">
        <svg width="30" height="14" aria-hidden="true">
          <line x1="2" y1="12" x2="26" y2="2" stroke="#444" />
        </svg>
        message
      </span>
      <span className="legend-item">
        <svg width="30" height="14" aria-hidden="true">
          <line x1="2" y1="12" x2="26" y2="2" stroke="#888" strokeDasharray="2 2" />
        </svg>
        in flight
      </span>
      <span className="legend-item">
        <svg width="20" height="14" aria-hidden="true">
          <line x1="2" y1="12" x2="12" y2="4" stroke="#999" strokeWidth="1.5" />
        </svg>
        no arrival seen (lost or resent)
      </span>
      <span className="legend-item">
        <span style={{ color: OKABE_ITO.vermillion, fontWeight: 700 }}>✕</span> rejected (older world-line)
      </span>
      <span className="legend-item">
        <svg width="30" height="14" aria-hidden="true">
          <line x1="2" y1="12" x2="26" y2="2" stroke={OKABE_ITO.reddishPurple} strokeWidth="2.5" />
        </svg>
        hand-off (units moving to their new owner)
      </span>
      <span className="legend-item">
        <span className="band-swatch" /> world-line band
      </span>
      <span className="legend-item muted">press ? for keyboard shortcuts</span>
    </div>
  );
}

// ------------------------------------------------------------------ per-node panel

export interface NodePanelProps {
  model: PlaygroundModel;
  rev: number;
  live: boolean;
  selected: boolean;
  busy: boolean;
  /** Its removal runs now (the command waits for the drain or the restore). */
  removing: boolean;
  onRemove(node: NodeId): void;
  onSelect(node: NodeId): void;
  id: NodeId;
}

function fmtJson(v: Json): string {
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

/** A node's facts and state (the drawer's Nodes tab); kill and restart sit on its lane's head. */
export const NodePanel = memo(function NodePanel(p: NodePanelProps) {
  const n = p.model.nodes.get(p.id);
  if (n === undefined) return null;
  const state = p.model.nodeState(p.id);
  const keys = Object.keys(state).sort();
  const last = n.lastChange;
  const units = countUnits(unitsOfState(state));
  const view = nodeViewText(p.model, p.id, state);
  // What the last membership change moved to and from this node, once fixed (the banner shows it live).
  const lastChange = p.model.migrations.at(-1);
  const moved = lastChange?.moves ?? null;
  const movedText = moved !== null && n.id in moved.gained ? ` · in v${moved.version}: +${moved.gained[n.id]} / −${moved.lost[n.id] ?? 0} units` : '';
  return (
    <section className={`node-panel${p.selected ? ' selected' : ''}`} aria-label={`node ${n.id}`} onClick={() => p.onSelect(n.id)}>
      <header>
        <strong>{n.id}</strong> <span className={`status st-${n.status}`}>{n.status}</span>
      </header>
      <dl>
        <dt>pid</dt>
        <dd>{n.pid ?? '—'}</dd>
        <dt>version</dt>
        <dd>{n.version}</dd>
        <dt>persisted</dt>
        <dd>{n.persistedVersion}</dd>
        <dt>committed</dt>
        <dd>{n.committedVersion}</dd>
        <dt>world-line</dt>
        <dd>{n.worldLine}</dd>
        <dt>failures</dt>
        <dd>{n.failures}</dd>
      </dl>
      <p
        className="node-units"
        title="units of service state this node holds (kv key, log, topic, workflow, travel item, app key), from its state as the events tell it"
      >
        units <strong data-testid={`units-${n.id}`}>{units.total}</strong>
        {units.total > 0 && <span className="muted"> ({formatUnitCounts(units)})</span>}
        {view !== null && (
          <span className="muted" data-testid={`view-${n.id}`}>
            {' '}
            · {view}
          </span>
        )}
        {movedText !== '' && (
          <span className="muted" data-testid={`moved-${n.id}`}>
            {movedText}
          </span>
        )}
      </p>
      {p.live && (
        <div className="node-buttons">
          <button
            type="button"
            data-testid={`remove-${n.id}`}
            disabled={p.busy}
            aria-busy={p.removing}
            title={
              n.status === 'down'
                ? 'remove the node: its committed state is read from storage and taken over by the nodes that own its keys now'
                : 'drain the node (its keys are handed to the others through the runtime), then stop it and remove it'
            }
            onClick={(e) => {
              e.stopPropagation();
              p.onRemove(n.id);
            }}
          >
            {p.removing ? (n.status === 'down' ? 'restoring…' : 'draining…') : 'remove'}
          </button>
        </div>
      )}
      <details>
        <summary>
          state: {keys.length} key{keys.length === 1 ? '' : 's'}
          {last !== null && ` · last change v${last.version}: ${Object.keys(last.set).length} set, ${last.deleted.length} deleted`}
        </summary>
        {keys.length === 0 && <p className="muted">No state changes seen since this page joined (nodes report state changes when they close a version).</p>}
        <table className="kv">
          <tbody>
            {keys.slice(0, 24).map((k) => (
              <tr key={k} className={last !== null && k in last.set ? 'changed' : undefined}>
                <td>{k}</td>
                <td>{fmtJson(state[k]!)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {keys.length > 24 && <p className="muted">and {keys.length - 24} more keys</p>}
        {last !== null && last.deleted.length > 0 && (
          <p className="muted">
            deleted in v{last.version}: {last.deleted.join(', ')}
          </p>
        )}
      </details>
    </section>
  );
});

// ------------------------------------------------------------------ kill preview

const versions = (n: number): string => `${n} ${n === 1 ? 'version' : 'versions'}`;

export function KillPreviewBox({ preview, model }: { preview: KillPreview; model: PlaygroundModel }) {
  const fmt = (keys: string[]): string =>
    keys
      .slice(0, 12)
      .map((k) => {
        const v = model.versions.get(k);
        return v === undefined ? k : `${v.node} v${v.version}`;
      })
      .join(', ') + (keys.length > 12 ? ` … (${keys.length})` : '');
  return (
    <div className="preview" role="status" data-testid="kill-preview">
      <strong>If {preview.node} died now:</strong>{' '}
      {!preview.recovery ? (
        <>mode is none: no recovery; its {versions(preview.lost.length)} not persisted are simply lost.</>
      ) : preview.kind === 'precise' ? (
        <>
          {versions(preview.lost.length)} of its own not yet persisted lost{preview.lost.length > 0 ? ` (${fmt(preview.lost)})` : ''};{' '}
          {versions(preview.dependent.length)} depend on them and must roll back
          {preview.dependent.length > 0 ? ` (${fmt(preview.dependent)})` : ''}; precise recovery keeps the {versions(preview.collateral.length)} left
          uncommitted.
        </>
      ) : (
        <>
          {versions(preview.lost.length)} of its own uncommitted lost{preview.lost.length > 0 ? ` (${fmt(preview.lost)})` : ''};{' '}
          {versions(preview.dependent.length)} on other nodes depend on them and must roll back
          {preview.dependent.length > 0 ? ` (${fmt(preview.dependent)})` : ''}; {versions(preview.collateral.length)} more uncommitted go too, because recovery
          cut restores every node to the cut.
        </>
      )}
    </div>
  );
}

// ------------------------------------------------------------------ rollbacks and "why"

export interface RollbacksProps {
  model: PlaygroundModel;
  explanation: RollbackExplanation | null;
  focus: number | null;
  onFocus(worldLine: number | null): void;
  step: number | null;
  onPlay(): void;
  zoomed: boolean;
  onZoom(on: boolean): void;
}

export function Rollbacks(p: RollbacksProps) {
  const recs = [...p.model.rollbacks].reverse();
  const x = p.explanation;
  const name = (k: string): string => {
    const v = p.model.versions.get(k);
    return v === undefined ? k : `${v.node} v${v.version}`;
  };
  // A kept version may have committed since, or gone in a later recovery.
  const keptName = (k: string): string => {
    const v = p.model.versions.get(k);
    return v === undefined || v.state === 'speculative' || v.state === 'persisting' ? name(k) : `${name(k)} (${STATE_LABEL[v.state]} since)`;
  };
  return (
    <div className="rollbacks">
      {recs.length === 0 && <p className="muted">No rollback yet. Kill a node to see what it takes with it.</p>}
      <ul className="rb-list">
        {recs.map((r) => (
          <li key={r.worldLine}>
            <button type="button" className={p.focus === r.worldLine ? 'active' : undefined} onClick={() => p.onFocus(r.worldLine)}>
              world-line {r.worldLine} ({worldLineCause(r)}){r.recovery !== null ? ` · ${r.recovery} recovery` : ''} · {versions(r.discarded.length)} rolled
              back
              {r.plan !== null ? `, ${r.kept.length} kept` : ''}
            </button>
          </li>
        ))}
      </ul>
      {x !== null && (
        <div className="why" data-testid="why-view">
          <p>
            {x.record.plan !== null
              ? `Cascade in causal order, as the recovery plan gives it: what was lost first, then each version after the one it depended on.${x.why.length > 0 ? ' Highlighted edges in the dependency graph are the plan’s dependency paths.' : ''}`
              : 'Cascade in causal order (the causes first; each version after the one it depended on). This trace has no recovery plan: the highlighted edges are the shortest dependency paths that explain each discard.'}{' '}
            <button type="button" onClick={p.onPlay}>
              replay cascade
            </button>{' '}
            <button type="button" onClick={() => p.onZoom(!p.zoomed)} aria-pressed={p.zoomed} data-testid="zoom-rollback">
              {p.zoomed ? 'show all' : 'zoom to this rollback'}
            </button>
          </p>
          <ol>
            {x.steps.map((s, i) => (
              <li key={s.key} className={p.step !== null && i > p.step ? 'pending' : p.step === i ? 'current' : undefined}>
                <strong>{name(s.key)}</strong>
                {s.depth !== null ? (
                  <span className="muted"> · {s.depth === 0 ? 'cause' : `${s.depth} hop${s.depth === 1 ? '' : 's'} from a cause`}</span>
                ) : null}
                : {s.reason}
              </li>
            ))}
          </ol>
          {x.record.plan !== null && (
            <p data-testid="why-kept">
              {x.kept.length === 0 ? (
                'Kept: no uncommitted version survived this recovery.'
              ) : (
                <>
                  <strong>Kept</strong> (uncommitted, but they depend on no lost state: they survive onto world-line {x.record.worldLine} and commit once
                  persisted): {x.kept.slice(0, 40).map(keptName).join(', ')}
                  {x.kept.length > 40 ? ` … (${x.kept.length})` : ''}
                </>
              )}
            </p>
          )}
        </div>
      )}
    </div>
  );
}

// ------------------------------------------------------------------ controls

export interface ControlsProps {
  config: ClusterConfig | null;
  workload: WorkloadConfig | null;
  busy: boolean;
  onConfig(patch: Partial<ClusterConfig>): void;
  onWorkload(w: WorkloadConfig): void;
  /** Picks a scenario: runs its workload (the current rate, or a default when stopped). */
  onScenario(s: Scenario): void;
  onAddNode(): void;
}

export function Controls(p: ControlsProps) {
  const [kind, setKind] = useState<WorkloadKind | null>(null);
  const [rate, setRate] = useState<string | null>(null);
  const c = p.config;
  const w = p.workload;
  const num = (s: string): number => Number(s);
  return (
    <div className="controls">
      <fieldset disabled={p.busy}>
        <legend>Workload</legend>
        <label title="what the cluster runs: its workload, and the service shown under Service state">
          Scenario{' '}
          <select value={scenarioOf(w?.kind)} onChange={(e) => p.onScenario(e.target.value as Scenario)} data-testid="scenario">
            {SCENARIOS.map((s) => (
              <option key={s.id} value={s.id}>
                {s.label}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          kind{' '}
          <select value={kind ?? w?.kind ?? 'mixed'} onChange={(e) => setKind(e.target.value as WorkloadKind)} data-testid="workload-kind">
            {WORKLOAD_KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>{' '}
        <label>
          rate/s{' '}
          <input
            type="number"
            min={0}
            step={1}
            value={rate ?? String(w?.rate ?? 0)}
            onChange={(e) => setRate(e.target.value)}
            style={{ width: '5em' }}
            data-testid="workload-rate"
          />
        </label>{' '}
        <button
          type="button"
          onClick={() => {
            p.onWorkload({ kind: kind ?? w?.kind ?? 'mixed', rate: num(rate ?? String(w?.rate ?? 0)) });
            setKind(null);
            setRate(null);
          }}
        >
          apply
        </button>{' '}
        <button type="button" onClick={p.onAddNode} data-testid="add-node">
          add node
        </button>
      </fieldset>
      {c !== null && (
        <fieldset disabled={p.busy}>
          <legend>Cluster</legend>
          <label>
            mode{' '}
            <select value={c.mode} onChange={(e) => p.onConfig({ mode: e.target.value as Mode })} data-testid="mode">
              {MODES.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>{' '}
          <label>
            cut{' '}
            <select value={c.cut} onChange={(e) => p.onConfig({ cut: e.target.value as CutKind })}>
              {CUT_KINDS.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>{' '}
          <label title="precise: after a failure only what depends on lost state rolls back; cut: every node goes back to the committed cut. Takes effect at the next recovery.">
            recovery{' '}
            <select value={c.recovery} onChange={(e) => p.onConfig({ recovery: e.target.value as RecoveryKind })} data-testid="recovery">
              {RECOVERY_KINDS.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>{' '}
          <NumberSetting label="checkpoint ms" value={c.checkpointIntervalMs} onSet={(v) => p.onConfig({ checkpointIntervalMs: v })} />
          <NumberSetting label="delay ms" value={c.networkDelayMs} onSet={(v) => p.onConfig({ networkDelayMs: v })} />
          <NumberSetting label="jitter ms" value={c.networkJitterMs} onSet={(v) => p.onConfig({ networkJitterMs: v })} />
          <NumberSetting label="loss %" value={Math.round(c.messageLoss * 1000) / 10} onSet={(v) => p.onConfig({ messageLoss: v / 100 })} />
          <label>
            <input type="checkbox" checked={c.autoRestart} onChange={(e) => p.onConfig({ autoRestart: e.target.checked })} data-testid="auto-restart" /> auto
            restart
          </label>
        </fieldset>
      )}
    </div>
  );
}

function NumberSetting({ label, value, onSet }: { label: string; value: number; onSet(v: number): void }) {
  const [draft, setDraft] = useState<string | null>(null);
  const commit = (): void => {
    if (draft !== null && draft.trim() !== '' && Number.isFinite(Number(draft))) onSet(Number(draft));
    setDraft(null);
  };
  return (
    <label className="num">
      {label}{' '}
      <input
        type="number"
        value={draft ?? String(value)}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit();
        }}
        style={{ width: '5em' }}
      />
    </label>
  );
}

// ------------------------------------------------------------------ charts

function ms(v: number | undefined): string {
  return v === undefined ? '—' : `${v.toFixed(0)} ms`;
}

export function Charts({ stats }: { stats: LiveStats }) {
  const w = 260;
  const h = 60;
  const max = Math.max(1, ...stats.buckets.map((b) => Math.max(b.speculative, b.committed)));
  const bw = w / Math.max(1, stats.buckets.length);
  const lag = stats.commitLag;
  return (
    <div className="charts">
      <div>
        <div className="chart-title">answers per second (speculative ▮ vs committed ▮)</div>
        <svg
          width={w}
          height={h}
          role="img"
          aria-label={`throughput: ${stats.speculativePerS.toFixed(1)} speculative and ${stats.committedPerS.toFixed(1)} committed answers per second`}
        >
          {stats.buckets.map((b, i) => (
            <g key={i}>
              <rect x={i * bw} y={h - (b.speculative / max) * h} width={bw / 2 - 0.5} height={(b.speculative / max) * h} fill={OKABE_ITO.orange} />
              <rect x={i * bw + bw / 2} y={h - (b.committed / max) * h} width={bw / 2 - 0.5} height={(b.committed / max) * h} fill={OKABE_ITO.blue} />
            </g>
          ))}
        </svg>
        <div className="muted">
          {stats.speculativePerS.toFixed(1)} speculative/s · {stats.committedPerS.toFixed(1)} committed/s · {stats.rolledBackPerS.toFixed(1)} rolled back/s
        </div>
      </div>
      <div>
        <div className="chart-title">request latency by mode (request → answer, request → commit), over all retained requests</div>
        {stats.latency.length === 0 ? (
          <div className="muted">no answered requests yet</div>
        ) : (
          <table className="pct" data-testid="latency-table">
            <thead>
              <tr>
                <th>mode</th>
                <th>answer p50</th>
                <th>p90</th>
                <th>p99</th>
                <th>commit p50</th>
                <th>p90</th>
                <th>p99</th>
                <th>n</th>
              </tr>
            </thead>
            <tbody>
              {stats.latency.map((l) => (
                <tr key={l.mode ?? 'none'}>
                  <td>{l.mode ?? 'mode not in the events'}</td>
                  <td>{ms(l.answer?.p50)}</td>
                  <td>{ms(l.answer?.p90)}</td>
                  <td>{ms(l.answer?.p99)}</td>
                  <td>{ms(l.commit?.p50)}</td>
                  <td>{ms(l.commit?.p90)}</td>
                  <td>{ms(l.commit?.p99)}</td>
                  <td>{l.answer?.count ?? 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="muted">Change the mode under Cluster to put speculative and durable side by side.</div>
      </div>
      <div>
        <div className="chart-title">commit lag (speculative answer → commit)</div>
        {lag === null ? (
          <div className="muted">no committed answers in the window</div>
        ) : (
          <table className="pct">
            <tbody>
              <tr>
                <td>p50</td>
                <td>{lag.p50.toFixed(0)} ms</td>
              </tr>
              <tr>
                <td>p90</td>
                <td>{lag.p90.toFixed(0)} ms</td>
              </tr>
              <tr>
                <td>p99</td>
                <td>{lag.p99.toFixed(0)} ms</td>
              </tr>
              <tr>
                <td>n</td>
                <td>{lag.count}</td>
              </tr>
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}

// ------------------------------------------------------------------ requests

/** The sessions' requests, newest first: click one for its path in the inspector. */
export function Requests({
  model,
  rev,
  selected,
  onSelect,
}: {
  model: PlaygroundModel;
  rev: number;
  selected: { session: string; seq: number } | null;
  onSelect(r: { session: string; seq: number }): void;
}) {
  void rev;
  const rows = [...model.sessions.values()].reverse().slice(0, 200);
  if (rows.length === 0) return <p className="muted">No client requests seen yet.</p>;
  const ms = (a: number | null, b: number | null): string => (a === null || b === null ? '—' : `${(b - a).toFixed(0)} ms`);
  return (
    <table className="requests" data-testid="requests-table">
      <thead>
        <tr>
          <th>session</th>
          <th>request</th>
          <th>mode</th>
          <th>answer after</th>
          <th>fate</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => {
          const sel = selected !== null && selected.session === r.session && selected.seq === r.seq;
          return (
            <tr key={`${r.session}#${r.seq}`} className={sel ? 'selected' : undefined}>
              <td>{r.session.replace(/@[^@]*$/, '')}</td>
              <td>{r.seq}</td>
              <td>{r.mode ?? model.mode ?? '—'}</td>
              <td>{ms(r.sentAt, r.speculativeAt)}</td>
              <td>
                {r.rolledBackAt !== null
                  ? 'rolled back'
                  : r.committedAt !== null
                    ? `committed ${ms(r.speculativeAt ?? r.sentAt, r.committedAt)} after the answer`
                    : r.speculativeAt !== null
                      ? 'speculative'
                      : 'no answer yet'}
              </td>
              <td>
                <button type="button" className="link" onClick={() => onSelect({ session: r.session, seq: r.seq })} data-testid="request-row">
                  path
                </button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

// ------------------------------------------------------------------ help

export const SHORTCUTS: [string, string][] = [
  ['?', 'show or hide this help'],
  ['space / p', 'hold or release the live cluster (play or pause a replay)'],
  ['1 … 9', 'select node 1 … 9'],
  ['← → ↑ ↓', 'walk the versions: along a node, across nodes'],
  ['k', 'kill the selected node'],
  ['r', 'restart the selected node'],
  ['[ / ]', 'zoom the time window in / out'],
  ['a', 'show the whole retained history'],
  ['s', 'step the replay by one event'],
  ['e', 'export the trace as JSON'],
  ['i', 'import a trace'],
  ['/', 'filter the event table'],
  ['Esc', 'clear the selection and highlights, follow the newest events again, close this help'],
];

export function Help({ onClose }: { onClose(): void }) {
  return (
    <div className="overlay" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" data-testid="help" onClick={onClose}>
      <div className="overlay-box" onClick={(e) => e.stopPropagation()}>
        <h2>Keyboard shortcuts</h2>
        <p className="muted">
          New here? Start with the tour “Start here” in the side panel; “class pace” in the top bar slows the cluster down so you can follow it.
        </p>
        <table>
          <tbody>
            {SHORTCUTS.map(([k, d]) => (
              <tr key={k}>
                <td>
                  <kbd>{k}</kbd>
                </td>
                <td>{d}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" onClick={onClose}>
          close
        </button>
      </div>
    </div>
  );
}
