import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import type { ClusterConfig, Command, CommandType, EventBatch, MessageKind, NodeId, NumberedEvent, StreamSnapshot, WorkloadConfig } from '@dse/shared';
import { RECOVERY_KINDS } from '@dse/shared';
import { dependencyIndex, explainRollback, killPreview, selectionOf } from './model/analysis';
import { exportTrace, parseTrace, TraceError } from './model/trace';
import { liveStats } from './model/stats';
import { CommandError, LiveConnection, type ConnectionStatus } from './live/connection';
import { Player } from './live/player';
import { ModelStore } from './live/store';
import type { PlaygroundModel } from './model/model';
import { worldLineCause } from './model/model';
import { STATE_LABEL } from './palette';
import { SpaceTime, type Highlight } from './views/SpaceTime';
import { DepGraph } from './views/DepGraph';
import { EventTable } from './views/EventTable';
import { Tours, type TourApi } from './views/Tours';
import { Race } from './views/Race';
import { Services } from './views/Services';
import { isScenario, scenarioOf, workloadFor, type Scenario } from './model/services';
import { Charts, Controls, Help, KillPreviewBox, Legend, NodePanel, Rollbacks } from './views/Panels';

type Source = { kind: 'live' } | { kind: 'replay'; label: string; simulation: Record<string, string> | null };

const WINDOWS: (number | 'all')[] = [2_000, 5_000, 15_000, 30_000, 60_000, 'all'];
const ALL_KINDS: MessageKind[] = ['app', 'request', 'reply', 'ack', 'reject'];
/** Events held while live updates are paused; beyond this the page asks for a fresh snapshot on resume. */
const PAUSED_EVENTS_MAX = 100_000;

function useWidth(ref: React.RefObject<HTMLElement | null>): number {
  const [w, setW] = useState(900);
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const ro = new ResizeObserver(() => setW(Math.max(400, Math.floor(el.clientWidth))));
    ro.observe(el);
    setW(Math.max(400, Math.floor(el.clientWidth)));
    return () => ro.disconnect();
  }, [ref]);
  return w;
}

function useReducedMotion(): boolean {
  const [reduce, setReduce] = useState(() => typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches);
  useEffect(() => {
    if (typeof matchMedia !== 'function') return;
    const mq = matchMedia('(prefers-reduced-motion: reduce)');
    const on = (): void => setReduce(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return reduce;
}

/** Simulation settings from the URL (`?sim=<seed>&mode=…&cut=…&recovery=…&faults=0|1&nodes=…`). */
function simulationFromUrl(): Record<string, string> | null {
  const q = new URLSearchParams(location.search);
  const seed = q.get('sim');
  if (seed === null) return null;
  const out: Record<string, string> = { sim: seed };
  for (const k of ['mode', 'cut', 'recovery', 'faults', 'nodes', 'sessions', 'requests', 'speed']) {
    const v = q.get(k);
    if (v !== null) out[k] = v;
  }
  return out;
}

export function App() {
  const storeRef = useRef<ModelStore | null>(null);
  storeRef.current ??= new ModelStore();
  const store = storeRef.current;
  const rev = useSyncExternalStore(store.subscribe, store.getVersion);
  const model = store.model;

  const [source, setSource] = useState<Source>(() => {
    const sim = simulationFromUrl();
    return sim === null ? { kind: 'live' } : { kind: 'replay', label: `simulation seed ${sim.sim}`, simulation: sim };
  });
  const sourceRef = useRef(source);
  sourceRef.current = source;
  const [conn, setConn] = useState<ConnectionStatus>('connecting');
  const [notices, setNotices] = useState<{ id: number; level: 'info' | 'warning' | 'error'; message: string }[]>([]);
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(false);
  const heldRef = useRef<{ batches: EventBatch[]; count: number; overflow: boolean }>({ batches: [], count: 0, overflow: false });
  const [busy, setBusy] = useState(false);
  const [windowMs, setWindowMs] = useState<number | 'all'>(() => (simulationFromUrl() === null ? 15_000 : 'all'));
  const [viewEndT, setViewEndT] = useState<number | null>(null);
  const [kinds, setKinds] = useState<Set<MessageKind>>(() => new Set<MessageKind>(['app', 'request', 'reply', 'reject']));
  const [selectedVersion, setSelectedVersion] = useState<string | null>(null);
  const [selectedNode, setSelectedNode] = useState<NodeId | null>(null);
  const [previewNode, setPreviewNode] = useState<NodeId | null>(null);
  const [rollbackFocus, setRollbackFocus] = useState<number | null>(null);
  const [cascadeStep, setCascadeStep] = useState<number | null>(null);
  const [help, setHelp] = useState(false);
  const [tab, setTab] = useState<'graph' | 'rollbacks' | 'events' | 'charts'>('graph');
  const playerRef = useRef<Player | null>(null);
  const [playerTick, setPlayerTick] = useState(0);
  const connRef = useRef<LiveConnection | null>(null);
  const fileRef = useRef<HTMLInputElement | null>(null);
  const filterRef = useRef<HTMLInputElement | null>(null);
  const mainRef = useRef<HTMLDivElement | null>(null);
  const width = useWidth(mainRef);
  const reduceMotion = useReducedMotion();
  const noticeId = useRef(0);

  const notify = useCallback((level: 'info' | 'warning' | 'error', message: string) => {
    const id = ++noticeId.current;
    setNotices((ns) => [...ns.slice(-3), { id, level, message }]);
    setTimeout(() => setNotices((ns) => ns.filter((n) => n.id !== id)), level === 'error' ? 12_000 : 6_000);
  }, []);

  // ---------------------------------------------------------------- the live connection
  useEffect(() => {
    const c = new LiveConnection({
      onStatus: (s, detail) => {
        setConn(s);
        if (s === 'disconnected' && detail !== undefined && detail !== 'io client disconnect') notify('warning', `disconnected from the server: ${detail}`);
      },
      onSnapshot: (s: StreamSnapshot) => {
        if (s.notice !== undefined) notify('warning', s.notice);
        if (sourceRef.current.kind !== 'live') return;
        heldRef.current = { batches: [], count: 0, overflow: false };
        store.reset();
        store.model.loadSnapshot(s.cluster, s.config, s.workload, s.limits, s.history, s.baseStates);
        store.changed(true);
      },
      onBatch: (b) => {
        if (sourceRef.current.kind !== 'live') return;
        if (pausedRef.current) {
          const h = heldRef.current;
          if (h.overflow) return;
          h.batches.push(b);
          h.count += b.events.length;
          if (h.count > PAUSED_EVENTS_MAX) h.overflow = true;
          return;
        }
        store.model.applyAll(b.events);
        store.changed();
      },
      onNotice: (n) => notify(n.level, n.message),
    });
    connRef.current = c;
    return () => c.close();
  }, [store, notify]);

  const command = useCallback(
    async <C extends CommandType>(c: Extract<Command, { type: C }>, what: string): Promise<boolean> => {
      const lc = connRef.current;
      if (lc === null) return false;
      setBusy(true);
      try {
        await lc.command(c);
        return true;
      } catch (e) {
        const msg = e instanceof CommandError ? `${e.code}: ${e.message}${e.definite ? '' : ' (it may still have happened)'}` : String(e);
        notify('error', `${what} failed — ${msg}`);
        return false;
      } finally {
        setBusy(false);
      }
    },
    [notify],
  );

  // ---------------------------------------------------------------- replay (simulation and imported traces)
  const startReplay = useCallback(
    (events: readonly NumberedEvent[], label: string, simulation: Record<string, string> | null, speed: number, play: boolean) => {
      setSource({ kind: 'replay', label, simulation });
      sourceRef.current = { kind: 'replay', label, simulation };
      store.reset();
      const p = new Player(events, (evs) => {
        store.model.applyAll(evs);
        store.changed();
      });
      p.speed = speed;
      if (play) p.playing = true;
      else p.toEnd();
      playerRef.current = p;
      setPlayerTick((x) => x + 1);
      setSelectedVersion(null);
      setRollbackFocus(null);
      store.changed(true);
    },
    [store],
  );

  useEffect(() => {
    let raf = 0;
    let last = performance.now();
    const loop = (now: number): void => {
      const p = playerRef.current;
      if (p !== null && p.playing && !pausedRef.current) {
        p.advance(now - last);
        setPlayerTick((x) => x + 1);
      }
      last = now;
      raf = requestAnimationFrame(loop);
    };
    raf = requestAnimationFrame(loop);
    return () => cancelAnimationFrame(raf);
  }, []);

  const runSimulation = useCallback(
    async (sim: Record<string, string>) => {
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
        const events = r.events.map((e, i) => ({ ...e, n: i + 1 }) as NumberedEvent);
        const speed = sim.speed === 'end' ? 0 : Number(sim.speed ?? '0.05');
        startReplay(events, `simulation seed ${r.seed}: ${r.requests} requests, ${r.committed} committed, ${r.rolledBack} rolled back, ${r.versionsKept} uncommitted versions kept by recoveries, ${r.kills} kills, ${r.violations.length} violations${r.truncated ? ' (events truncated)' : ''}`, sim, speed || 0.05, speed !== 0);
        if (r.violations.length > 0) notify('error', `the checker found ${r.violations.length} violation(s): ${r.violations[0]!.invariant}: ${r.violations[0]!.message}`);
      } catch (e) {
        notify('error', `simulation failed — ${e instanceof CommandError ? `${e.code}: ${e.message}` : String(e)}`);
      } finally {
        setBusy(false);
      }
    },
    [startReplay, notify],
  );

  const simStarted = useRef(false);
  useEffect(() => {
    if (simStarted.current || conn !== 'connected' || source.kind !== 'replay' || source.simulation === null || playerRef.current !== null) return;
    simStarted.current = true;
    void runSimulation(source.simulation);
  }, [conn, source, runSimulation]);

  const backToLive = useCallback(() => {
    playerRef.current = null;
    setSource({ kind: 'live' });
    sourceRef.current = { kind: 'live' };
    if (location.search !== '') history.replaceState(null, '', location.pathname);
    store.reset();
    connRef.current?.resync();
  }, [store]);

  // ---------------------------------------------------------------- pause
  const togglePause = useCallback(() => {
    const next = !pausedRef.current;
    pausedRef.current = next;
    setPaused(next);
    const p = playerRef.current;
    if (sourceRef.current.kind === 'replay' && p !== null) {
      p.playing = !next && !p.done;
      setPlayerTick((x) => x + 1);
      return;
    }
    if (!next) {
      const h = heldRef.current;
      heldRef.current = { batches: [], count: 0, overflow: false };
      if (h.overflow) {
        notify('info', 'paused for long: reloading the view from a fresh snapshot');
        connRef.current?.resync();
      } else {
        for (const b of h.batches) store.model.applyAll(b.events);
        store.changed();
      }
    }
  }, [store, notify]);

  // ---------------------------------------------------------------- export / import
  const doExport = useCallback(() => {
    const src = sourceRef.current;
    const trace = exportTrace(store.model, src.kind === 'live' ? 'live' : src.simulation !== null ? 'simulation' : 'import', src.kind === 'replay' ? src.simulation : null, new Date());
    const blob = new Blob([JSON.stringify(trace)], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `dse-trace-${trace.exportedAt.replace(/[:.]/g, '-')}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, [store]);

  const doImport = useCallback(
    async (file: File) => {
      try {
        const t = parseTrace(await file.text());
        startReplay(t.events, `imported ${file.name}: ${t.events.length} events${t.eventsDropped > 0 ? ` (the first ${t.eventsDropped} were not kept by the exporting page)` : ''}`, t.simulation, 0.05, false);
        notify('info', `imported ${t.events.length} events; press play to replay them from the start`);
      } catch (e) {
        notify('error', `could not import ${file.name}: ${e instanceof TraceError ? e.message : String(e)}`);
      }
    },
    [startReplay, notify],
  );

  // ---------------------------------------------------------------- derived views
  // The dependency index is rebuilt at most a few times a second: a busy cluster changes it with
  // every event, and nobody reads a graph faster than that.
  const indexRef = useRef<{ model: unknown; at: number; index: ReturnType<typeof dependencyIndex> } | null>(null);
  const needIndex = tab === 'graph' || tab === 'rollbacks' || previewNode !== null || selectedVersion !== null;
  const index = useMemo(() => {
    const now = performance.now();
    const cached = indexRef.current;
    if (cached !== null && cached.model === model && (!needIndex || now - cached.at < 300)) return cached.index;
    const fresh = dependencyIndex(model);
    indexRef.current = { model, at: now, index: fresh };
    return fresh;
  }, [model, rev, needIndex, previewNode, selectedVersion, rollbackFocus]);
  const lanes = model.laneIds();
  const preview = useMemo(() => (previewNode === null ? null : killPreview(model, index, previewNode)), [model, index, previewNode]);
  const focusRecord = rollbackFocus === null ? null : (model.rollbacks.find((r) => r.worldLine === rollbackFocus) ?? null);
  const explanation = useMemo(() => (focusRecord === null ? null : explainRollback(model, index, focusRecord)), [model, index, focusRecord]);
  const highlight = useMemo(() => {
    const h = new Map<string, Highlight>();
    if (preview !== null) {
      for (const k of preview.collateral) h.set(k, preview.kind === 'cut' ? 'collateral' : 'kept');
      for (const k of preview.dependent) h.set(k, 'must');
      for (const k of preview.lost) h.set(k, 'lost');
      return h;
    }
    if (explanation !== null) {
      for (const k of explanation.kept) h.set(k, 'kept');
      const steps = cascadeStep === null ? explanation.steps : explanation.steps.slice(0, cascadeStep + 1);
      for (const s of steps) h.set(s.key, s.depth === 0 ? 'lost' : 'cascade');
      return h;
    }
    if (selectedVersion !== null && model.versions.has(selectedVersion)) {
      const s = selectionOf(model, index, selectedVersion);
      for (const k of s.dependencies) h.set(k, 'dependency');
      for (const k of s.dependents) h.set(k, 'dependent');
      h.set(selectedVersion, 'selected');
    }
    return h;
  }, [preview, explanation, cascadeStep, selectedVersion, model, index]);

  // After a failure in the live cluster, highlight what it rolled back (Esc clears it). Records that
  // were already in the snapshot's history are not replayed at the person.
  const autoAfterWorldLine = useRef<number | null>(null);
  useEffect(() => {
    if (source.kind !== 'live' || model.lastEvent === 0) return;
    if (autoAfterWorldLine.current === null) {
      autoAfterWorldLine.current = model.worldLine;
      return;
    }
    const rec = model.rollbacks.at(-1);
    if (rec === undefined || rec.worldLine <= autoAfterWorldLine.current || rec.failed.length === 0) return;
    autoAfterWorldLine.current = rec.worldLine;
    setSelectedVersion(null);
    setRollbackFocus(rec.worldLine);
    setCascadeStep(null);
    notify('info', `world-line ${rec.worldLine}: ${worldLineCause(rec)}. What it rolled back is highlighted (Esc clears); the Rollbacks tab says why.`);
  }, [source, model, rev, notify]);
  useEffect(() => {
    autoAfterWorldLine.current = null;
  }, [model]);

  const playCascade = useCallback(() => {
    if (explanation === null) return;
    if (reduceMotion) {
      setCascadeStep(null);
      return;
    }
    let i = 0;
    setCascadeStep(0);
    const timer = setInterval(() => {
      i++;
      if (i >= explanation.steps.length) {
        clearInterval(timer);
        setCascadeStep(null);
      } else setCascadeStep(i);
    }, 450);
  }, [explanation, reduceMotion]);

  const stats = useMemo(() => (tab === 'charts' ? liveStats(model, typeof windowMs === 'number' ? windowMs : Math.max(1000, model.lastT - (model.firstT ?? 0))) : null), [tab, model, rev, windowMs]);

  // ---------------------------------------------------------------- node commands
  const kill = useCallback((n: NodeId) => void command<'kill'>({ type: 'kill', node: n }, `kill ${n}`), [command]);
  const restart = useCallback((n: NodeId) => void command<'restart'>({ type: 'restart', node: n }, `restart ${n}`), [command]);
  const remove = useCallback((n: NodeId) => void command<'removeNode'>({ type: 'removeNode', node: n }, `remove ${n}`), [command]);
  const setConfig = useCallback((patch: Partial<ClusterConfig>) => void command<'config'>({ type: 'config', config: patch }, 'configuration change'), [command]);
  const setWorkload = useCallback((w: WorkloadConfig) => void command<'workload'>({ type: 'workload', workload: w }, 'workload change'), [command]);
  const addNode = useCallback(() => void command<'addNode'>({ type: 'addNode' }, 'add node'), [command]);
  const pickScenario = useCallback(
    (s: Scenario) => {
      void command<'workload'>({ type: 'workload', workload: workloadFor(s, store.model.workload) }, `scenario ${s}`);
      if (sourceRef.current.kind === 'live') history.replaceState(null, '', `${location.pathname}?scenario=${s}`);
    },
    [command, store],
  );
  // `?scenario=<id>` in the address: run that scenario once connected (a link to a scenario).
  const scenarioFromUrl = useRef<string | null>(new URLSearchParams(location.search).get('scenario'));
  useEffect(() => {
    const want = scenarioFromUrl.current;
    if (want === null || conn !== 'connected' || source.kind !== 'live' || model.workload === null) return;
    scenarioFromUrl.current = null;
    if (isScenario(want) && scenarioOf(model.workload.kind) !== want) pickScenario(want);
  }, [conn, source, model, rev, pickScenario]);

  // ---------------------------------------------------------------- guided tours
  const setPausedTo = useCallback(
    (on: boolean) => {
      if (pausedRef.current !== on) togglePause();
    },
    [togglePause],
  );
  const makeTourApi = useCallback(
    (): TourApi => ({
      model: () => store.model,
      setConfig: (patch) => command<'config'>({ type: 'config', config: patch }, 'configuration change'),
      setWorkload: (w) => command<'workload'>({ type: 'workload', workload: w }, 'workload change'),
      kill: (n) => command<'kill'>({ type: 'kill', node: n }, `kill ${n}`),
      restart: (n) => command<'restart'>({ type: 'restart', node: n }, `restart ${n}`),
      pause: setPausedTo,
      preview: setPreviewNode,
      focusRollback: (w) => {
        setRollbackFocus(w);
        setCascadeStep(null);
      },
      waitFor: async (pred, timeoutMs) => {
        const until = performance.now() + timeoutMs;
        for (;;) {
          if (pred()) return true;
          if (performance.now() > until) return false;
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      memo: {},
    }),
    [store, command, setPausedTo],
  );

  // ---------------------------------------------------------------- keyboard
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const t = e.target as HTMLElement | null;
      if (t !== null && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) {
        if (e.key === 'Escape') t.blur();
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const live = sourceRef.current.kind === 'live';
      switch (e.key) {
        case '?':
          setHelp((h) => !h);
          break;
        case 'Escape':
          setHelp(false);
          setViewEndT(null);
          setSelectedVersion(null);
          setRollbackFocus(null);
          setPreviewNode(null);
          break;
        case ' ':
        case 'p':
          togglePause();
          break;
        case 'k':
          if (live && selectedNode !== null) kill(selectedNode);
          break;
        case 'r':
          if (live && selectedNode !== null) restart(selectedNode);
          break;
        case '[':
          setWindowMs((w) => WINDOWS[Math.max(0, WINDOWS.indexOf(w) - 1)]!);
          break;
        case ']':
          setWindowMs((w) => WINDOWS[Math.min(WINDOWS.length - 1, WINDOWS.indexOf(w) + 1)]!);
          break;
        case 'a':
          setWindowMs('all');
          break;
        case 's':
          playerRef.current?.step();
          setPlayerTick((x) => x + 1);
          break;
        case 'e':
          doExport();
          break;
        case 'i':
          fileRef.current?.click();
          break;
        case '/':
          setTab('events');
          setTimeout(() => filterRef.current?.focus(), 0);
          break;
        case 'ArrowLeft':
        case 'ArrowRight':
        case 'ArrowUp':
        case 'ArrowDown': {
          // Walk the diagram by keyboard: left/right along a node's versions, up/down across nodes.
          const m = store.model;
          const ids = m.laneIds();
          const cur = selectedVersion === null ? undefined : m.versions.get(selectedVersion);
          let node = cur?.node ?? selectedNode ?? ids[0];
          if (node === undefined) return;
          if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
            const i = ids.indexOf(node) + (e.key === 'ArrowUp' ? -1 : 1);
            node = ids[Math.max(0, Math.min(ids.length - 1, i))]!;
          }
          const lane = m.lane(node);
          if (lane.length === 0) return;
          let idx = lane.length - 1;
          if (cur !== undefined) {
            if (cur.node === node) idx = lane.indexOf(cur) + (e.key === 'ArrowLeft' ? -1 : e.key === 'ArrowRight' ? 1 : 0);
            else {
              // The version of the other node open at the same time.
              idx = lane.findIndex((v) => (v.closedAt ?? Infinity) >= cur.openedAt);
              if (idx < 0) idx = lane.length - 1;
            }
          }
          const next = lane[Math.max(0, Math.min(lane.length - 1, idx))]!;
          setSelectedNode(node);
          setSelectedVersion(next.key);
          break;
        }
        default:
          if (/^[1-9]$/.test(e.key)) {
            const id = store.model.laneIds()[Number(e.key) - 1];
            if (id !== undefined) setSelectedNode(id);
          } else return;
      }
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [togglePause, kill, restart, selectedNode, selectedVersion, doExport, store]);

  // A small read-only handle for debugging and browser tests.
  useEffect(() => {
    (window as unknown as { __dse?: unknown }).__dse = {
      model: () => store.model,
      summary: () => ({
        lanes: store.model.laneIds(),
        worldLine: store.model.worldLine,
        cut: store.model.cut,
        events: store.model.totals.events,
        rolledBack: store.model.totals.rolledBack,
        committed: store.model.totals.committed,
      }),
    };
  }, [store]);

  const player = playerRef.current;
  void playerTick;
  const live = source.kind === 'live';
  const cfg = model.config;
  const currentWl = model.currentWorldLine();
  // The setting when the server tells it (it applies from the next recovery), else what the events show.
  const recovery = model.nextRecovery();

  return (
    <div className={`app${reduceMotion ? ' reduce-motion' : ''}`}>
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
        {recovery !== null && (
          <span className="pill" title="after a failure, precise recovery rolls back only what depends on lost state; recovery cut takes every node back to the committed cut" data-testid="recovery-kind">
            recovery {recovery}
            {currentWl !== undefined && currentWl.recovery !== null && currentWl.recovery !== recovery && worldLineCause(currentWl) !== 'start' ? (
              <span className="muted">
                {' '}
                (world-line {currentWl.worldLine}: {currentWl.recovery})
              </span>
            ) : null}
          </span>
        )}
        <span className="pill">mode {model.mode ?? (source.kind === 'replay' && source.simulation !== null ? (source.simulation.mode ?? 'speculative') : '—')}</span>
        {cfg !== null && <span className="pill">cut {cfg.cut}</span>}
        <span className={`pill conn-${conn}`} data-testid="connection">
          {live ? `live · ${conn}` : `replay · ${source.label}`}
        </span>
        <span className="pill" data-testid="live-state">
          {paused ? 'paused' : 'running'}
        </span>
        <span className="spacer" />
        <button type="button" onClick={togglePause} data-testid="pause" aria-pressed={paused}>
          {paused ? 'resume' : 'pause'}
        </button>
        <button type="button" onClick={doExport} data-testid="export">
          export trace
        </button>
        <button type="button" onClick={() => fileRef.current?.click()} data-testid="import">
          import trace
        </button>
        <input
          ref={fileRef}
          type="file"
          accept="application/json,.json"
          hidden
          data-testid="import-file"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f !== undefined) void doImport(f);
            e.target.value = '';
          }}
        />
        {!live && (
          <button type="button" onClick={backToLive} data-testid="back-to-live">
            back to live
          </button>
        )}
        <button type="button" onClick={() => setHelp(true)} aria-label="keyboard shortcuts">
          ?
        </button>
      </header>
      <Legend />
      <div className="notices" aria-live="polite">
        {notices.map((n) => (
          <div key={n.id} className={`notice ${n.level}`}>
            {n.message}
          </div>
        ))}
      </div>
      <div className="toolbar">
        <span>
          window{' '}
          {WINDOWS.map((w) => (
            <button key={String(w)} type="button" className={windowMs === w ? 'active' : undefined} onClick={() => setWindowMs(w)}>
              {w === 'all' ? 'all' : `${w / 1000}s`}
            </button>
          ))}
        </span>
        <span>
          messages{' '}
          {ALL_KINDS.map((k) => (
            <label key={k} className="kind">
              <input
                type="checkbox"
                checked={kinds.has(k)}
                onChange={(e) =>
                  setKinds((s) => {
                    const n = new Set(s);
                    if (e.target.checked) n.add(k);
                    else n.delete(k);
                    return n;
                  })
                }
              />
              {k}
            </label>
          ))}
        </span>
        {typeof windowMs === 'number' && model.firstT !== null && model.lastT - model.firstT > windowMs && (
          <label title="scroll back through the retained history; all the way right follows the newest events">
            history{' '}
            <input
              type="range"
              data-testid="history-scroll"
              min={model.firstT + windowMs}
              max={model.lastT}
              step={Math.max(1, windowMs / 50)}
              value={viewEndT ?? model.lastT}
              onChange={(e) => {
                const v = Number(e.target.value);
                setViewEndT(v >= model.lastT - windowMs / 50 ? null : v);
              }}
            />{' '}
            <span className="muted">{viewEndT === null ? 'following' : `${((viewEndT - model.lastT) / 1000).toFixed(1)} s`}</span>
          </label>
        )}
        {player !== null && !live && (
          <span className="replay" data-testid="replay-controls">
            <button
              type="button"
              onClick={() => {
                player.playing = !player.playing && !player.done;
                setPlayerTick((x) => x + 1);
              }}
              data-testid="replay-play"
            >
              {player.playing ? 'pause' : 'play'}
            </button>
            <button
              type="button"
              onClick={() => {
                player.step();
                setPlayerTick((x) => x + 1);
              }}
            >
              step
            </button>
            <button
              type="button"
              onClick={() => {
                player.toEnd();
                setPlayerTick((x) => x + 1);
              }}
              data-testid="replay-end"
            >
              to end
            </button>
            <button
              type="button"
              onClick={() => {
                const events = player.events;
                startReplay(events, source.label, source.simulation, player.speed, true);
              }}
            >
              restart
            </button>
            <label>
              speed{' '}
              <select
                value={String(player.speed)}
                onChange={(e) => {
                  player.speed = Number(e.target.value);
                  setPlayerTick((x) => x + 1);
                }}
              >
                {[0.01, 0.05, 0.2, 1, 5].map((s) => (
                  <option key={s} value={String(s)}>
                    {s}×
                  </option>
                ))}
              </select>
            </label>
            <span data-testid="replay-position">
              {player.index} / {player.events.length}
            </span>
          </span>
        )}
        <SimulationForm
          disabled={busy || conn !== 'connected'}
          onRun={(sim) => {
            const q = new URLSearchParams(sim);
            history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
            void runSimulation(sim);
          }}
        />
      </div>
      <main ref={mainRef}>
        {lanes.length === 0 && <p className="muted">{live ? (conn === 'connected' ? 'Waiting for the cluster’s first events…' : 'Connecting to the server…') : 'No events yet.'}</p>}
        <SpaceTime
          model={model}
          rev={rev}
          width={width}
          windowMs={windowMs}
          viewEndT={viewEndT}
          messageKinds={kinds}
          highlight={highlight}
          selectedNode={selectedNode}
          onSelectVersion={setSelectedVersion}
          onSelectNode={setSelectedNode}
        />
        {preview !== null && <KillPreviewBox preview={preview} model={model} />}
        <SelectedVersion model={model} selected={selectedVersion} />
        <div className="nodes">
          {lanes.map((id) => (
            <NodePanel
              key={id}
              id={id}
              model={model}
              rev={rev}
              live={live}
              busy={busy}
              selected={selectedNode === id}
              onKill={kill}
              onRestart={restart}
              onRemove={remove}
              onPreview={setPreviewNode}
              onSelect={setSelectedNode}
            />
          ))}
        </div>
        {live && <Tours makeApi={makeTourApi} disabled={conn !== 'connected'} />}
        {live && (
          <Race
            model={model}
            rev={rev}
            disabled={conn !== 'connected'}
            setConfig={(patch) => command<'config'>({ type: 'config', config: patch }, 'configuration change')}
            setWorkload={(w) => command<'workload'>({ type: 'workload', workload: w }, 'workload change')}
          />
        )}
        {live && <Controls config={model.config} workload={model.workload} busy={busy || conn !== 'connected'} onConfig={setConfig} onWorkload={setWorkload} onScenario={pickScenario} onAddNode={addNode} />}
        <Services model={model} rev={rev} scenario={scenarioOf(model.workload?.kind)} />
        <div className="tabs" role="tablist">
          {(['graph', 'rollbacks', 'events', 'charts'] as const).map((t) => (
            <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? 'active' : undefined} onClick={() => setTab(t)} data-testid={`tab-${t}`}>
              {t === 'graph' ? 'dependency graph' : t === 'rollbacks' ? `rollbacks (${model.rollbacks.length})` : t === 'events' ? 'event table' : 'charts'}
            </button>
          ))}
        </div>
        {tab === 'graph' && (
          <DepGraph model={model} rev={rev} index={index} width={width} highlight={highlight} whyEdges={explanation?.why ?? []} onSelectVersion={setSelectedVersion} />
        )}
        {tab === 'rollbacks' && (
          <Rollbacks
            model={model}
            explanation={explanation}
            focus={rollbackFocus}
            onFocus={(w) => {
              setRollbackFocus(w);
              setCascadeStep(null);
            }}
            step={cascadeStep}
            onPlay={playCascade}
          />
        )}
        {tab === 'rollbacks' && explanation !== null && (
          <DepGraph model={model} rev={rev} index={index} width={width} highlight={highlight} whyEdges={explanation.why} onSelectVersion={setSelectedVersion} />
        )}
        {tab === 'events' && <EventTable events={model.events} rev={rev} filterRef={filterRef} />}
        {tab === 'charts' && stats !== null && <Charts stats={stats} />}
        <footer className="muted">
          {model.totals.events} events · {model.totals.committed} versions committed · {model.totals.rolledBack} rolled back · {model.totals.rejected} stale messages rejected · {model.totals.lost} messages lost by the relay
          {model.storage !== null ? ` · storage ${model.storage}` : ''}
          {model.eventsDropped > 0 ? ` · ${model.eventsDropped} older events no longer kept` : ''}
        </footer>
      </main>
      {help && <Help onClose={() => setHelp(false)} />}
    </div>
  );
}

function SelectedVersion({ model, selected }: { model: PlaygroundModel; selected: string | null }) {
  const v = selected === null ? undefined : model.versions.get(selected);
  return (
    <div className="selected-version" aria-live="polite" data-testid="selected-version">
      {v === undefined ? (
        <span className="muted">Click a version (or use the arrow keys) to see what it depends on and what depends on it.</span>
      ) : (
        <>
          <strong>
            {v.node} v{v.version}
          </strong>{' '}
          (world-line {v.worldLine}): {STATE_LABEL[v.state]}
          {v.state === 'persisting' && v.persistedAt !== null ? ', persisted, waiting for its dependencies' : ''}
          {Object.keys(v.deps).length > 0 ? ` · depends on ${Object.entries(v.deps).map(([n, x]) => `${n} v${x}`).join(', ')}` : ' · no dependencies on other nodes'}
          {v.rolledBackBy !== null ? ` · discarded by the recovery to world-line ${v.rolledBackBy}` : ''}
          {v.keptBy !== null && v.state !== 'rolled-back' ? ` · kept by the recovery to world-line ${v.keptBy} (it depends on no lost state)` : ''}
          <span className="muted"> · outlined: black = selected, blue dashed = depends on, purple = depends on it</span>
        </>
      )}
    </div>
  );
}

function SimulationForm({ disabled, onRun }: { disabled: boolean; onRun(sim: Record<string, string>): void }) {
  const [seed, setSeed] = useState('1');
  const [mode, setMode] = useState('speculative');
  const [recovery, setRecovery] = useState<string>('precise');
  const [faults, setFaults] = useState(true);
  const [nodes, setNodes] = useState('4');
  return (
    <form
      className="simform"
      onSubmit={(e) => {
        e.preventDefault();
        onRun({ sim: seed, mode, recovery, faults: faults ? '1' : '0', nodes });
      }}
    >
      <fieldset disabled={disabled}>
        simulation seed <input value={seed} onChange={(e) => setSeed(e.target.value)} style={{ width: '4em' }} inputMode="numeric" data-testid="sim-seed" />{' '}
        <select value={mode} onChange={(e) => setMode(e.target.value)}>
          <option>speculative</option>
          <option>durable</option>
          <option>none</option>
        </select>{' '}
        <label>
          recovery{' '}
          <select value={recovery} onChange={(e) => setRecovery(e.target.value)} data-testid="sim-recovery">
            {RECOVERY_KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>{' '}
        nodes <input value={nodes} onChange={(e) => setNodes(e.target.value)} style={{ width: '3em' }} inputMode="numeric" />{' '}
        <label>
          <input type="checkbox" checked={faults} onChange={(e) => setFaults(e.target.checked)} /> faults
        </label>{' '}
        <button type="submit" data-testid="sim-run">
          run
        </button>
      </fieldset>
    </form>
  );
}
