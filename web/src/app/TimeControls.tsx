import type { MessageKind } from '@dse/shared';
import type { Player } from '../live/player';
import type { PlaygroundModel } from '../model/model';

export const WINDOWS: (number | 'all')[] = [5_000, 15_000, 30_000, 60_000, 'all'];
const ALL_KINDS: MessageKind[] = ['app', 'request', 'reply', 'ack', 'reject'];
const REPLAY_SPEEDS = [0.005, 0.01, 0.05, 0.2, 1, 5];

/** The replay's controls: play or pause, step, to the end, speed, and a scrubber over its events. */
export function ReplayControls({ player, onChange, onSeek }: { player: Player; onChange(): void; onSeek(i: number): void }) {
  return (
    <span className="replay" data-testid="replay-controls">
      <button
        type="button"
        onClick={() => {
          if (player.done) onSeek(0);
          player.togglePlaying();
          onChange();
        }}
        data-testid="replay-play"
      >
        {player.playing ? '❚❚ pause' : '▶ play'}
      </button>
      <button
        type="button"
        onClick={() => {
          player.step();
          onChange();
        }}
      >
        step
      </button>
      <button
        type="button"
        onClick={() => {
          player.toEnd();
          onChange();
        }}
        data-testid="replay-end"
      >
        to end
      </button>
      <label>
        speed{' '}
        <select
          value={String(player.speed)}
          onChange={(e) => {
            player.setSpeed(Number(e.target.value));
            onChange();
          }}
        >
          {REPLAY_SPEEDS.map((s) => (
            <option key={s} value={String(s)}>
              {s}×
            </option>
          ))}
        </select>
      </label>
      <input
        type="range"
        min={0}
        max={player.events.length}
        value={player.index}
        onChange={(e) => onSeek(Number(e.target.value))}
        aria-label="replay position"
        data-testid="replay-scrubber"
        className="scrubber"
      />
      <span data-testid="replay-position">
        {player.index} / {player.events.length}
      </span>
    </span>
  );
}

export interface TimeControlsProps {
  model: PlaygroundModel;
  live: boolean;
  connected: boolean;
  /** The live cluster is held (the workload sends nothing, nodes close no version). */
  held: boolean;
  onHold(): void;
  player: Player | null;
  onPlayerChange(): void;
  onSeek(i: number): void;
  windowMs: number | 'all';
  onWindow(w: number | 'all'): void;
  /** Where the live view's time window ends (null: at the newest event). */
  viewEndT: number | null;
  onViewEnd(t: number | null): void;
  kinds: ReadonlySet<MessageKind>;
  onKinds(k: Set<MessageKind>): void;
  zoomed: boolean;
  onUnzoom(): void;
}

/** Under the stage: hold (live) or the replay's controls, the time window, history, message kinds. */
export function TimeControls(p: TimeControlsProps) {
  const { model, live, held, player, windowMs } = p;
  return (
    <div className="time-controls" data-testid="time-controls">
      {live ? (
        <>
          <button
            type="button"
            onClick={p.onHold}
            data-testid="hold"
            aria-pressed={held}
            disabled={!p.connected}
            title="hold the cluster itself: the workload sends nothing, nodes close no version; messages on the wire still land"
          >
            {held ? '▶ release' : '❚❚ hold'}
          </button>
          <span className={`pill${held ? ' held' : ''}`} data-testid="live-state">
            {held ? 'held' : 'running'}
          </span>
        </>
      ) : (
        player !== null && <ReplayControls player={player} onChange={p.onPlayerChange} onSeek={p.onSeek} />
      )}
      <span className="window-buttons" role="group" aria-label="time window">
        {WINDOWS.map((w) => (
          <button key={String(w)} type="button" className={windowMs === w ? 'active' : undefined} onClick={() => p.onWindow(w)}>
            {w === 'all' ? 'all' : `${w / 1000}s`}
          </button>
        ))}
      </span>
      {live && typeof windowMs === 'number' && model.firstT !== null && model.lastT - model.firstT > windowMs && (
        <label title="scroll back through the retained history; all the way right follows the newest events">
          history{' '}
          <input
            type="range"
            className="scrubber"
            data-testid="history-scroll"
            min={model.firstT + windowMs}
            max={model.lastT}
            step={Math.max(1, windowMs / 50)}
            value={p.viewEndT ?? model.lastT}
            onChange={(e) => {
              const v = Number(e.target.value);
              p.onViewEnd(v >= model.lastT - windowMs / 50 ? null : v);
            }}
          />
        </label>
      )}
      <details className="kinds">
        <summary>messages</summary>
        <div className="kinds-box">
          {ALL_KINDS.map((k) => (
            <label key={k} className="kind">
              <input
                type="checkbox"
                checked={p.kinds.has(k)}
                onChange={(e) => {
                  const n = new Set(p.kinds);
                  if (e.target.checked) n.add(k);
                  else n.delete(k);
                  p.onKinds(n);
                }}
              />
              {k}
            </label>
          ))}
        </div>
      </details>
      {p.zoomed && (
        <button type="button" onClick={p.onUnzoom} data-testid="unzoom">
          leave the rollback zoom
        </button>
      )}
    </div>
  );
}
