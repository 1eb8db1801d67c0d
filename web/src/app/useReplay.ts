import { useCallback, useEffect, useRef, useState } from 'react';
import type { ClusterConfig, NumberedEvent } from '@dse/shared';
import { CommandError } from '../live/connection';
import { Player } from '../live/player';
import type { ModelStore } from '../live/store';
import { CLASS_REPLAY_SPEED, isClassPace, NORMAL_REPLAY_SPEED } from '../pace';
import type { LiveFeed } from './useLiveFeed';
import type { Notify } from './useNotices';
import type { Source } from './source';

export interface Replay {
  /** The replay's player (null on the live cluster). It is mutable: `tick` after changing it. */
  player: Player | null;
  /** Counts the player's changes (a redraw for each). */
  playerTick: number;
  tick: () => void;
  startReplay: (
    events: readonly NumberedEvent[],
    label: string,
    simulation: Record<string, string> | null,
    speed: number,
    play: boolean,
    at?: number | null,
  ) => void;
  seekReplay: (i: number) => void;
  /** Asks the server to run a seeded simulation, then replays its events (from event `at` when given). */
  runSimulation: (sim: Record<string, string>, at?: number | null) => Promise<void>;
  /** Leaves the replay (the caller resyncs the live feed). */
  stopReplay: () => void;
}

/**
 * Replays of simulations and imported traces: a `Player` feeds the recorded events into the store on
 * the events' own clock, advanced every animation frame while it plays.
 */
export function useReplay(
  store: ModelStore,
  switchSource: (s: Source) => void,
  feed: Pick<LiveFeed, 'connRef' | 'setBusy'>,
  notify: Notify,
  onStart: () => void,
): Replay {
  const [player, setPlayer] = useState<Player | null>(null);
  const [playerTick, setPlayerTick] = useState(0);
  const tick = useCallback(() => setPlayerTick((x) => x + 1), []);
  const { connRef, setBusy } = feed;

  const startReplay = useCallback(
    (events: readonly NumberedEvent[], label: string, simulation: Record<string, string> | null, speed: number, play: boolean, at: number | null = null) => {
      switchSource({ kind: 'replay', label, simulation });
      store.reset();
      // A simulation's events do not announce its mode: the answers came in the mode it ran.
      const mode = (simulation?.mode ?? (simulation !== null ? 'speculative' : null)) as ClusterConfig['mode'] | null;
      const seed = (): void => store.reset(mode);
      seed();
      const p = new Player(events, (evs) => {
        store.model.applyAll(evs);
        store.changed();
      });
      p.setSpeed(speed);
      if (at !== null) p.seek(at, seed);
      else if (play) p.togglePlaying();
      else p.toEnd();
      setPlayer(p);
      onStart();
      tick();
      store.changed(true);
    },
    [store, switchSource, onStart, tick],
  );

  // The replay clock runs on animation frames while the player plays.
  useEffect(() => {
    if (player === null) return;
    let raf = 0;
    let last = performance.now();
    const loop = (now: number): void => {
      if (player.playing) {
        player.advance(now - last);
        tick();
      }
      last = now;
      raf = requestAnimationFrame(loop);
    };
    raf = requestAnimationFrame(loop);
    return () => cancelAnimationFrame(raf);
  }, [player, tick]);

  const seekReplay = useCallback(
    (i: number) => {
      if (player === null) return;
      const mode = store.model.mode;
      player.seek(i, () => store.reset(mode));
      store.changed(true);
      tick();
    },
    [store, player, tick],
  );

  const runSimulation = useCallback(
    async (sim: Record<string, string>, at: number | null = null) => {
      const lc = connRef.current;
      if (lc === null) return;
      setBusy(true);
      try {
        const body = {
          type: 'simulate' as const,
          seed: Number(sim.sim),
          ...(sim.mode !== undefined ? { mode: sim.mode as ClusterConfig['mode'] } : {}),
          ...(sim.cut !== undefined ? { cut: sim.cut as ClusterConfig['cut'] } : {}),
          ...(sim.recovery !== undefined ? { recovery: sim.recovery as ClusterConfig['recovery'] } : {}),
          ...(sim.faults !== undefined ? { faults: sim.faults !== '0' } : {}),
          ...(sim.nodes !== undefined ? { nodes: Number(sim.nodes) } : {}),
          ...(sim.sessions !== undefined ? { sessions: Number(sim.sessions) } : {}),
          ...(sim.requests !== undefined ? { requestsPerSession: Number(sim.requests) } : {}),
        };
        const r = await lc.command<'simulate'>(body, 120_000);
        const events = r.events.map((e, i) => ({ ...e, n: i + 1 }));
        const speed = sim.speed === 'end' ? 0 : Number(sim.speed ?? (isClassPace(store.model.config) ? CLASS_REPLAY_SPEED : NORMAL_REPLAY_SPEED));
        const violations = `${r.violations.length} ${r.violations.length === 1 ? 'violation' : 'violations'}`;
        startReplay(
          events,
          `simulation seed ${r.seed}: ${r.requests} requests, ${r.committed} committed, ${r.rolledBack} rolled back, ${r.versionsKept} uncommitted versions kept by recoveries, ${r.kills} ${r.kills === 1 ? 'kill' : 'kills'}, ${violations}${r.truncated ? ' (events truncated)' : ''}`,
          sim,
          speed || NORMAL_REPLAY_SPEED,
          speed !== 0,
          at,
        );
        if (r.violations.length > 0) notify('error', `the checker found ${violations}: ${r.violations[0]!.invariant}: ${r.violations[0]!.message}`);
      } catch (e) {
        notify('error', `simulation failed — ${e instanceof CommandError ? `${e.code}: ${e.message}` : String(e)}`);
      } finally {
        setBusy(false);
      }
    },
    [startReplay, notify, store, connRef, setBusy],
  );

  const stopReplay = useCallback(() => setPlayer(null), []);

  return { player, playerTick, tick, startReplay, seekReplay, runSimulation, stopReplay };
}

/** Runs the simulation the address names once the server is connected (a link to a simulation). */
export function useSimulationFromUrl(conn: string, source: Source, replay: Replay, at: number | null): void {
  const started = useRef(false);
  const { player, runSimulation } = replay;
  useEffect(() => {
    if (started.current || conn !== 'connected' || source.kind !== 'replay' || source.simulation === null || player !== null) return;
    started.current = true;
    void runSimulation(source.simulation, at);
  }, [conn, source, runSimulation, player, at]);
}
