import type { Json, NodeId } from '@dse/shared';
import type { DepIndex } from '../model/analysis';
import { dependencyIndex, explainRollback, selectionOf } from '../model/analysis';
import type { PlaygroundModel, VersionView } from '../model/model';
import { describeEdge, requestPath } from '../model/paths';
import { STATE_LABEL } from '../palette';

/**
 * The side panel when no tour runs: what the selection is, what it depends on, what depends on it,
 * and its fate, with links that select the neighbours (every claim is inspectable).
 */

export type InspectorSelection = { kind: 'version'; key: string } | { kind: 'node'; node: NodeId } | { kind: 'request'; session: string; seq: number } | null;

interface Props {
  model: PlaygroundModel;
  rev: number;
  index: DepIndex;
  selection: InspectorSelection;
  onSelectVersion(key: string): void;
  onSelectNode(node: NodeId): void;
}

function VersionLink({ model, k, onSelect }: { model: PlaygroundModel; k: string; onSelect(key: string): void }) {
  const v = model.versions.get(k);
  return (
    <button type="button" className="link" onClick={() => onSelect(k)} data-testid="inspector-link">
      {v === undefined ? k : `${v.node} v${v.version}${v.worldLine !== model.worldLine ? ` (w${v.worldLine})` : ''}`}
    </button>
  );
}

function fate(model: PlaygroundModel, v: VersionView): string {
  if (v.state === 'committed') return 'committed: no failure can take it back';
  if (v.state === 'rolled-back') {
    const rec = model.rollbacks.find((r) => r.worldLine === v.rolledBackBy);
    if (rec !== undefined) {
      const step = explainRollback(model, dependencyIndex(model), rec).steps.find((s) => s.key === v.key);
      if (step !== undefined) return `rolled back by the recovery to world-line ${rec.worldLine}: ${step.reason}`;
    }
    return `rolled back by the recovery to world-line ${v.rolledBackBy ?? '?'}`;
  }
  const kept = v.keptBy !== null ? ` Kept by the recovery to world-line ${v.keptBy} (it depends on no lost state).` : '';
  if (v.state === 'persisting')
    return (v.persistedAt !== null ? 'persisted; waits for what it depends on to commit' : 'its checkpoint is being written') + kept;
  return (v.closedAt === null ? 'open: the node is running in it' : 'closed, its checkpoint not started yet') + kept;
}

function VersionInspector({
  model,
  index,
  k,
  onSelectVersion,
  onSelectNode,
}: {
  model: PlaygroundModel;
  index: DepIndex;
  k: string;
  onSelectVersion(key: string): void;
  onSelectNode(n: NodeId): void;
}) {
  const v = model.versions.get(k);
  if (v === undefined) return <p className="muted">That version is no longer in the retained history.</p>;
  const s = selectionOf(model, index, k);
  const direct = (index.out.get(k) ?? []).filter((e) => e.kind === 'node');
  const dependents = [...s.dependents].filter((x) => model.versions.get(x)?.node !== v.node);
  return (
    <div data-testid="inspector-version">
      <h3>
        <button type="button" className="link" onClick={() => onSelectNode(v.node)}>
          {v.node}
        </button>{' '}
        v{v.version} <span className="muted">world-line {v.worldLine}</span>
      </h3>
      <p>
        <strong className={`state-word st-${v.state}`}>{STATE_LABEL[v.state]}</strong>: {fate(model, v)}
      </p>
      <p>
        Depends on:{' '}
        {direct.length === 0 ? (
          <span className="muted">no version of another node</span>
        ) : (
          direct.map((e) => (
            <span key={e.to} title={describeEdge(model, e)}>
              <VersionLink model={model} k={e.to} onSelect={onSelectVersion} />{' '}
            </span>
          ))
        )}
      </p>
      {direct.length > 0 && (
        <ul className="edge-origins">
          {direct.slice(0, 4).map((e) => (
            <li key={e.to} className="muted">
              {describeEdge(model, e)}
            </li>
          ))}
        </ul>
      )}
      <p>
        Depended on by (on other nodes, transitively):{' '}
        {dependents.length === 0 ? (
          <span className="muted">nothing yet</span>
        ) : (
          dependents.slice(0, 12).map((x) => (
            <span key={x}>
              <VersionLink model={model} k={x} onSelect={onSelectVersion} />{' '}
            </span>
          ))
        )}
        {dependents.length > 12 ? ` … (${dependents.length})` : ''}
      </p>
      <p className="muted">On the stage: black = selected, blue dashed = what it depends on, purple = what depends on it.</p>
    </div>
  );
}

function fmtJson(v: Json): string {
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 59)}…` : s;
}

function NodeInspector({ model, node }: { model: PlaygroundModel; node: NodeId }) {
  const n = model.nodes.get(node);
  if (n === undefined) return null;
  const state = model.nodeState(node);
  const keys = Object.keys(state).sort();
  return (
    <div data-testid="inspector-node">
      <h3>
        {node} <span className={`st-${n.status}`}>{n.status}</span>
      </h3>
      <dl className="facts">
        <dt>process</dt>
        <dd>{n.pid ?? '—'}</dd>
        <dt>open version</dt>
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
      <p className="muted">
        State: {keys.length} {keys.length === 1 ? 'key' : 'keys'} (committed base and uncommitted changes, from its events)
      </p>
      <table className="kv">
        <tbody>
          {keys.slice(0, 12).map((k) => (
            <tr key={k}>
              <td>{k}</td>
              <td>{fmtJson(state[k]!)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {keys.length > 12 && <p className="muted">and {keys.length - 12} more in the drawer’s Nodes tab</p>}
    </div>
  );
}

export function RequestInspector({
  model,
  session,
  seq,
  onSelectVersion,
}: {
  model: PlaygroundModel;
  session: string;
  seq: number;
  onSelectVersion(key: string): void;
}) {
  const p = requestPath(model, session, seq);
  const shown = session.replace(/@[^@]*$/, '');
  return (
    <div data-testid="inspector-request">
      <h3>
        request {seq} <span className="muted">of session {shown}</span>
      </h3>
      <ol className="path">
        {p.requests.map((h) => (
          <li key={h.message.uid}>
            sent to {h.message.to}
            {h.message.resend ? ' (again)' : ''} in world-line {h.message.worldLine}
            {h.message.rejectedAt !== null ? (
              ', rejected (an older world-line)'
            ) : h.version !== null ? (
              <>
                , applied in <VersionLink model={model} k={h.version.key} onSelect={onSelectVersion} />
              </>
            ) : h.message.deliveredAt === null ? (
              ', no arrival seen'
            ) : (
              ''
            )}
          </li>
        ))}
        {p.forwarded.map((h) => (
          <li key={h.message.uid}>
            {h.message.from} passed it on to {h.message.to} ({h.message.id})
            {h.version !== null ? (
              <>
                , applied in <VersionLink model={model} k={h.version.key} onSelect={onSelectVersion} />
              </>
            ) : h.message.rejectedAt !== null ? (
              ', rejected'
            ) : h.message.lostAt !== null ? (
              `, lost (${h.message.lostReason === 'loss' ? 'configured loss' : 'receiver down or not joined'})`
            ) : (
              ', no arrival seen'
            )}
          </li>
        ))}
        {p.steps.map((h) => (
          <li key={h.message.uid} data-testid="workflow-step">
            {h.step.startsWith('c') ? `compensation of step ${h.step.slice(1)}` : `step ${h.step.slice(1)}`}: {h.message.from} called {h.message.to}
            {h.message.resend ? ' (again)' : ''}
            {h.version !== null ? (
              <>
                , applied in <VersionLink model={model} k={h.version.key} onSelect={onSelectVersion} />
              </>
            ) : h.message.rejectedAt !== null ? (
              ', rejected (an older world-line)'
            ) : h.message.deliveredAt === null ? (
              ', no arrival seen'
            ) : (
              ''
            )}
            {h.reply !== null ? ', answered' : ''}
          </li>
        ))}
        {p.speculative !== null && (
          <li data-testid="request-speculative">
            answered speculatively after{' '}
            {p.requests[0]?.message.sentAt !== undefined ? `${(p.speculative.t - p.requests[0].message.sentAt).toFixed(0)} ms` : '—'}:{' '}
            <code>{fmtJson(p.speculative.result)}</code>, depending on{' '}
            {Object.entries(p.speculative.deps)
              .map(([n, v]) => `${n} v${v}`)
              .join(', ') || 'nothing'}
          </li>
        )}
        {p.committed !== null && (
          <li data-testid="request-committed">
            committed {p.speculative !== null ? `${(p.committed.t - p.speculative.t).toFixed(0)} ms after the answer` : ''}: final, safe to act on
          </li>
        )}
        {p.rolledBack !== null && (
          <li data-testid="request-rolled-back">
            rolled back in world-line {p.rolledBack.worldLine}
            {p.discarded.length > 0 ? (
              <>
                : it touched{' '}
                {p.discarded.map((v) => (
                  <span key={v.key}>
                    <VersionLink model={model} k={v.key} onSelect={onSelectVersion} />{' '}
                  </span>
                ))}
                — {fate(model, p.discarded[0]!)}
              </>
            ) : (
              ': a version it depended on was discarded by the recovery'
            )}
          </li>
        )}
        {p.speculative === null && p.rolledBack === null && <li className="muted">no answer seen yet</li>}
      </ol>
      {p.versions.length > 0 && (
        <p>
          Versions it touched:{' '}
          {p.versions.map((v) => (
            <span key={v.key}>
              <VersionLink model={model} k={v.key} onSelect={onSelectVersion} />{' '}
            </span>
          ))}
        </p>
      )}
    </div>
  );
}

export function Inspector(p: Props) {
  void p.rev;
  const sel = p.selection;
  return (
    <section className="inspector" data-testid="inspector" aria-label="Inspector" aria-live="polite">
      <h2>Inspector</h2>
      {sel === null && (
        <p className="muted">
          Click a version, a lane’s head or a client request (a dot on the clients lane) to see what it is, what it depends on, what depends on it, and its
          fate. Arrow keys walk the versions.
        </p>
      )}
      {sel?.kind === 'version' && (
        <VersionInspector model={p.model} index={p.index} k={sel.key} onSelectVersion={p.onSelectVersion} onSelectNode={p.onSelectNode} />
      )}
      {sel?.kind === 'node' && <NodeInspector model={p.model} node={sel.node} />}
      {sel?.kind === 'request' && <RequestInspector model={p.model} session={sel.session} seq={sel.seq} onSelectVersion={p.onSelectVersion} />}
    </section>
  );
}
