import type { NodeId } from '@dse/shared';
import type { MigrationView, PlaygroundModel } from '../model/model';
import { formatMoves, migrationMoves, nodePlacementView } from '../model/placement';

/**
 * Placement in the playground: the version and members the server routes by, a membership change
 * while it runs, and what moved in it. Only what the events say: the phases from `placementChanged`,
 * the units from the nodes' mirrored state.
 */

const PHASE_TEXT: Record<MigrationView['phase'], string> = {
  sent: 'sent to the nodes, waiting for their answers to commit',
  committed: 'committed; handing over…',
  handedOver: 'every hand-off arrived',
};

/** Nodes whose state says they still wait for a hand-off, with whom from: "n5 waits for n1, n2". */
function waiting(model: PlaygroundModel, version: number): string[] {
  const out: string[] = [];
  for (const id of model.laneIds()) {
    const v = nodePlacementView(model.nodeState(id));
    if (v !== null && v.version === version && v.wait.length > 0) out.push(`${id} waits for ${v.wait.join(', ')}`);
  }
  return out;
}

/** Over the diagram while a membership change runs (or a membership command waits for its answer). */
export function MigrationBanner({ model, op }: { model: PlaygroundModel; rev: number; op: string | null }) {
  const m = model.migrationRunning();
  if (m === null && op === null) return null;
  const moves = m === null ? null : migrationMoves(model, m.version);
  const wait = m === null ? [] : waiting(model, m.version);
  return (
    <div className="migration-banner" role="status" data-testid="migration-banner">
      {op !== null && <strong>{op}</strong>}
      {op !== null && m !== null && ' '}
      {m !== null && (
        <>
          <strong>
            placement v{m.version} ({m.change})
          </strong>
          : {PHASE_TEXT[m.phase]}
          {moves !== null && <> · moved so far: {formatMoves(moves)}</>}
          {wait.length > 0 && <> · {wait.join('; ')}</>}
        </>
      )}
    </div>
  );
}

/** The Nodes tab's header: the placement, and the last membership change with what moved in it. */
export function PlacementSummary({ model }: { model: PlaygroundModel; rev: number }) {
  const p = model.placement;
  const last = model.migrations.at(-1);
  const moves = last === undefined ? null : (last.moves ?? migrationMoves(model, last.version));
  return (
    <div className="placement-summary" data-testid="placement-summary">
      {p === null ? (
        <span className="muted">placement: not told (an older server or a trace without membership changes)</span>
      ) : (
        <span>
          <strong>placement v{p.version}</strong> over {p.members.join(', ')}
          <span className="muted"> (units of service state go to their rendezvous-hash owner among the members)</span>
        </span>
      )}
      {last !== undefined && (
        <span data-testid="last-migration">
          {' · '}last change v{last.version} ({last.change}
          {last.prevMembers !== null ? `; before: ${last.prevMembers.join(', ')}` : ''}): {PHASE_TEXT[last.phase]}
          {moves !== null && (
            <>
              {' '}
              — {last.moves !== null ? 'moved' : 'moved so far'}: {formatMoves(moves)}
            </>
          )}
        </span>
      )}
    </div>
  );
}

/** A node's placement view as its state holds it: "view v3" and whom it still waits for. */
export function nodeViewText(model: PlaygroundModel, id: NodeId, state = model.nodeState(id)): string | null {
  const v = nodePlacementView(state);
  if (v === null) return null;
  return `view v${v.version}${v.wait.length > 0 ? `, waiting for hand-offs from ${v.wait.join(', ')}` : ''}`;
}
