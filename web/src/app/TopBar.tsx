import type { ClusterConfig, WorkloadConfig } from '@dse/shared';
import type { ConnectionStatus } from '../live/connection';
import { worldLineCause, type PlaygroundModel } from '../model/model';
import type { Scenario } from '../model/services';
import { Controls } from '../views/Panels';
import { Popover } from './Popover';
import { SimulationForm } from './SimulationForm';
import type { Source } from './source';

export type PopoverId = 'settings' | 'replay';

export interface TopBarProps {
  model: PlaygroundModel;
  source: Source;
  conn: ConnectionStatus;
  busy: boolean;
  /** The class-pace button is pressed: the live cluster runs at class pace, or the replay plays slowly. */
  slow: boolean;
  onPace(slow: boolean): void;
  popover: PopoverId | null;
  onPopover(p: PopoverId | null): void;
  onConfig(patch: Partial<ClusterConfig>): void;
  onWorkload(w: WorkloadConfig): void;
  onScenario(s: Scenario): void;
  onAddNode(): void;
  onSimulate(sim: Record<string, string>): void;
  onExport(): void;
  onImport(file: File): void;
  onBackToLive(): void;
  onHelp(): void;
  fileRef: React.RefObject<HTMLInputElement | null>;
}

/** The top bar: the cluster's world-line, placement, mode and connection; pace, settings, replay and help. */
export function TopBar({ fileRef, ...p }: TopBarProps) {
  const { model, source, conn, busy, popover } = p;
  const live = source.kind === 'live';
  const cfg = model.config;
  const currentWl = model.currentWorldLine();
  // The setting when the server tells it (it applies from the next recovery), else what the events show.
  const recovery = model.nextRecovery();
  const toggle = (id: PopoverId): void => p.onPopover(popover === id ? null : id);
  return (
    <header className="top">
      <h1>DSE Playground</h1>
      <span className="pill">
        world-line <strong data-testid="world-line">{model.worldLine}</strong>
        {currentWl !== undefined && worldLineCause(currentWl) !== 'start' && (
          <span className="muted" data-testid="world-line-cause">
            {' '}
            ({worldLineCause(currentWl)})
          </span>
        )}
      </span>
      {model.placement !== null && (
        <span
          className="pill"
          data-testid="placement"
          title={`placement version ${model.placement.version}: units of service state are placed over the ${model.placement.members.length} members ${model.placement.members.join(', ')} (the Nodes tab tells the units of each)`}
        >
          placement <strong data-testid="placement-version">v{model.placement.version}</strong>
        </span>
      )}
      <span
        className="pill"
        title="the cluster's mode, its recovery after a failure (precise: only what depends on lost state rolls back; cut: every node back to the committed cut), and its cut"
      >
        <span data-testid="mode">
          {model.mode ?? (source.kind === 'replay' && source.simulation !== null ? (source.simulation.mode ?? 'speculative') : '—')}
        </span>
        {recovery !== null && (
          <span data-testid="recovery-kind">
            {' · '}
            {recovery}
            {currentWl !== undefined && currentWl.recovery !== null && currentWl.recovery !== recovery && worldLineCause(currentWl) !== 'start' ? (
              <span className="muted">
                {' '}
                (w{currentWl.worldLine}: {currentWl.recovery})
              </span>
            ) : null}
          </span>
        )}
        {cfg !== null && <span className="muted"> · {cfg.cut} cut</span>}
      </span>
      <span className={`pill conn-${conn}`} data-testid="connection" title={live ? undefined : source.label}>
        {live ? (conn === 'connected' ? '● live' : `live · ${conn}`) : `replay · ${source.label}`}
      </span>
      <span className="spacer" />
      <button
        type="button"
        className={`pace${p.slow ? ' active' : ''}`}
        aria-pressed={p.slow}
        onClick={() => p.onPace(!p.slow)}
        disabled={live && (busy || conn !== 'connected')}
        data-testid="pace"
        title={live ? 'classroom pace: a checkpoint every 1.5 s, 250 ms network delay, a gentle workload (for the whole cluster)' : 'play the replay slowly'}
      >
        class pace
      </button>
      {live && (
        <Popover label="settings" testId="settings" open={popover === 'settings'} onToggle={() => toggle('settings')}>
          <Controls
            config={model.config}
            workload={model.workload}
            busy={busy || conn !== 'connected'}
            onConfig={p.onConfig}
            onWorkload={p.onWorkload}
            onScenario={p.onScenario}
            onAddNode={p.onAddNode}
          />
        </Popover>
      )}
      <Popover label="replay & trace" testId="replay-menu" open={popover === 'replay'} onToggle={() => toggle('replay')}>
        <SimulationForm disabled={busy || conn !== 'connected'} onRun={p.onSimulate} />
        <div className="menu-row">
          <button type="button" onClick={p.onExport} data-testid="export">
            export trace
          </button>
          <button type="button" onClick={() => fileRef.current?.click()} data-testid="import">
            import trace
          </button>
          {!live && (
            <button type="button" onClick={p.onBackToLive} data-testid="back-to-live">
              back to live
            </button>
          )}
        </div>
      </Popover>
      <input
        ref={fileRef}
        type="file"
        accept="application/json,.json"
        hidden
        data-testid="import-file"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f !== undefined) p.onImport(f);
          e.target.value = '';
          p.onPopover(null);
        }}
      />
      <button type="button" onClick={p.onHelp} aria-label="keyboard shortcuts and help">
        ?
      </button>
    </header>
  );
}
