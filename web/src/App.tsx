import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import type { ClusterConfig, Command, CommandType, MessageKind, NodeId, NumberedEvent, StreamSnapshot, WorkloadConfig } from '@dse/shared';
import { RECOVERY_KINDS } from '@dse/shared';
import { dependencyIndex, explainRollback, killPreview, selectionOf } from './model/analysis';
import { exportTrace, parseTrace, TraceError } from './model/trace';
import { liveStats } from './model/stats';
import { CommandError, LiveConnection, type ConnectionStatus } from './live/connection';
import { Player } from './live/player';
import { ModelStore } from './live/store';
import { worldLineCause } from './model/model';
import { CLASS_PACE, CLASS_REPLAY_SPEED, isClassPace, NORMAL_PACE, NORMAL_REPLAY_SPEED, paceFromUrl, workloadAtPace } from './pace';
import { SpaceTime, type Highlight } from './views/SpaceTime';
import { DepGraph } from './views/DepGraph';
import { EventTable } from './views/EventTable';
import { Tours, type CallResult, type DrawerTab, type TourApi } from './views/Tours';
import { Race } from './views/Race';
import { Services } from './views/Services';
import { Inspector, type InspectorSelection } from './views/Inspector';
import { isScenario, scenarioOf, workloadFor, type Scenario } from './model/services';
import { Charts, Controls, Help, KillPreviewBox, Legend, NodePanel, Requests, Rollbacks } from './views/Panels';
import { MigrationBanner, PlacementSummary, nodeViewText } from './views/Placement';
import { countUnits, formatUnitCounts, unitsOfState } from './model/placement';

type Source = { kind: 'live' } | { kind: 'replay'; label: string; simulation: Record<string, string> | null };

const WINDOWS: (number | 'all')[] = [5_000, 15_000, 30_000, 60_000, 'all'];
const ALL_KINDS: MessageKind[] = ['app', 'request', 'reply', 'ack', 'reject'];
const DRAWER_TABS: { id: DrawerTab; label: string }[] = [
  { id: 'nodes', label: 'nodes' },
  { id: 'graph', label: 'dependency graph' },
  { id: 'rollbacks', label: 'rollbacks and why' },
  { id: 'requests', label: 'requests' },
  { id: 'events', label: 'events' },
  { id: 'services', label: 'service state' },
  { id: 'race', label: 'race' },
  { id: 'charts', label: 'charts' },
];

function useSize(ref: React.RefObject<HTMLElement | null>): { width: number; height: number } {
  const [s, setS] = useState({ width: 900, height: 420 });
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const read = (): void => setS({ width: Math.max(400, Math.floor(el.clientWidth)), height: Math.max(160, Math.floor(el.clientHeight)) });
    const ro = new ResizeObserver(read);
    ro.observe(el);
    read();
    return () => ro.disconnect();
  }, [ref]);
  return s;
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

const SIM_KEYS = ['mode', 'cut', 'recovery', 'faults', 'nodes', 'sessions', 'requests', 'speed'];

/** Simulation settings from the URL (`?sim=<seed>&mode=…&cut=…&recovery=…&faults=0|1&nodes=…`). */
function simulationFromUrl(): Record<string, string> | null {
  const q = new URLSearchParams(location.search);
  const seed = q.get('sim');
  if (seed === null) return null;
  const out: Record<string, string> = { sim: seed };
  for (const k of SIM_KEYS) {
    const v = q.get(k);
    if (v !== null) out[k] = v;
  }
  return out;
}

/** The view a shared URL asks for: replay position, selection, time window. */
interface ViewFromUrl {
  at: number | null;
  sel: string | null;
  win: number | 'all' | null;
}

function viewFromUrl(): ViewFromUrl {
  const q = new URLSearchParams(location.search);
  const at = q.get('at');
  const win = q.get('win');
  return {
    at: at === null || !/^\d+$/.test(at) ? null : Number(at),
    sel: q.get('sel'),
    win: win === null ? null : win === 'all' ? 'all' : /^\d+$/.test(win) ? Number(win) : null,
  };
}

function selectionToParam(s: InspectorSelection): string | null {
  if (s === null) return null;
  if (s.kind === 'version') return s.key;
  if (s.kind === 'node') return `node:${s.node}`;
  return `req:${s.session}#${s.seq}`;
}

function selectionFromParam(p: string | null): InspectorSelection {
  if (p === null || p === '') return null;
  if (p.startsWith('node:')) return { kind: 'node', node: p.slice(5) };
  const r = /^req:(.+)#(\d+)$/.exec(p);
  if (r !== null) return { kind: 'request', session: r[1]!, seq: Number(r[2]) };
  return { kind: 'version', key: p };
}

function Popover({ label, testId, open, onToggle, children }: { label: string; testId: string; open: boolean; onToggle(): void; children: React.ReactNode }) {
  return (
    <span className="popover-anchor">
      <button type="button" onClick={onToggle} aria-expanded={open} data-testid={testId} className={open ? 'active' : undefined}>
        {label} ▾
      </button>
      {open && (
        <div className="popover" role="dialog" aria-label={label} data-testid={`${testId}-panel`}>
          {children}
        </div>
      )}
    </span>
  );
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
  const initialView = useRef<ViewFromUrl>(viewFromUrl());
  const [conn, setConn] = useState<ConnectionStatus>('connecting');
  const [notices, setNotices] = useState<{ id: number; level: 'info' | 'warning' | 'error'; message: string }[]>([]);
  const [busy, setBusy] = useState(false);
  const [windowMs, setWindowMs] = useState<number | 'all'>(() => initialView.current.win ?? (simulationFromUrl() === null ? 15_000 : 'all'));
  const [viewEndT, setViewEndT] = useState<number | null>(null);
  const [kinds, setKinds] = useState<Set<MessageKind>>(() => new Set<MessageKind>(['app', 'request', 'reply', 'reject']));
  const [selection, setSelection] = useState<InspectorSelection>(() => selectionFromParam(initialView.current.sel));
  const [previewNode, setPreviewNode] = useState<NodeId | null>(null);
  const [rollbackFocus, setRollbackFocus] = useState<number | null>(null);
  const [zoomRollback, setZoomRollback] = useState(false);
  const [cascadeStep, setCascadeStep] = useState<number | null>(null);
  const [help, setHelp] = useState(false);
  const [drawer, setDrawer] = useState<DrawerTab | null>(null);
  const [popover, setPopover] = useState<'settings' | 'replay' | null>(null);
  const [tourState, setTourState] = useState<{ id: string; step: number; asking: boolean } | null>(null);
  const [tourHighlight, setTourHighlight] = useState<ReadonlyMap<string, Highlight> | null>(null);
  const playerRef = useRef<Player | null>(null);
  const [playerTick, setPlayerTick] = useState(0);
  const connRef = useRef<LiveConnection | null>(null);
  const fileRef = useRef<HTMLInputElement | null>(null);
  const filterRef = useRef<HTMLInputElement | null>(null);
  const diagramRef = useRef<HTMLDivElement | null>(null);
  const drawerRef = useRef<HTMLDivElement | null>(null);
  const size = useSize(diagramRef);
  const drawerSize = useSize(drawerRef);
  const reduceMotion = useReducedMotion();
  const noticeId = useRef(0);
  const selectedVersion = selection?.kind === 'version' ? selection.key : null;
  const selectedNode = selection?.kind === 'node' ? selection.node : selection?.kind === 'version' ? (model.versions.get(selection.key)?.node ?? null) : null;
  const selectedRequest = selection?.kind === 'request' ? { session: selection.session, seq: selection.seq } : null;
  const setSelectedVersion = useCallback((k: string | null) => setSelection(k === null ? null : { kind: 'version', key: k }), []);
  const setSelectedNode = useCallback((n: NodeId) => setSelection({ kind: 'node', node: n }), []);

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
        store.reset();
        store.model.loadSnapshot(s.cluster, s.config, s.workload, s.limits, s.history, s.baseStates);
        store.changed(true);
      },
      onBatch: (b) => {
        if (sourceRef.current.kind !== 'live') return;
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
    (events: readonly NumberedEvent[], label: string, simulation: Record<string, string> | null, speed: number, play: boolean, at: number | null = null) => {
      setSource({ kind: 'replay', label, simulation });
      sourceRef.current = { kind: 'replay', label, simulation };
      store.reset();
      // A simulation's events do not announce its mode: the answers came in the mode it ran.
      const mode = (simulation?.mode ?? (simulation !== null ? 'speculative' : null)) as ClusterConfig['mode'] | null;
      const seed = (): void => {
        store.reset();
        store.model.mode = mode;
      };
      seed();
      const p = new Player(events, (evs) => {
        store.model.applyAll(evs);
        store.changed();
      });
      p.speed = speed;
      if (at !== null) p.seek(at, seed);
      else if (play) p.playing = true;
      else p.toEnd();
      playerRef.current = p;
      // A replay opens with the whole run in view.
      setWindowMs('all');
      setViewEndT(null);
      setPlayerTick((x) => x + 1);
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
      if (p !== null && p.playing) {
        p.advance(now - last);
        setPlayerTick((x) => x + 1);
      }
      last = now;
      raf = requestAnimationFrame(loop);
    };
    raf = requestAnimationFrame(loop);
    return () => cancelAnimationFrame(raf);
  }, []);

  const seekReplay = useCallback(
    (i: number) => {
      const p = playerRef.current;
      if (p === null) return;
      const mode = store.model.mode;
      p.seek(i, () => {
        store.reset();
        store.model.mode = mode;
      });
      store.changed(true);
      setPlayerTick((x) => x + 1);
    },
    [store],
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
        startReplay(
          events,
          `simulation seed ${r.seed}: ${r.requests} requests, ${r.committed} committed, ${r.rolledBack} rolled back, ${r.versionsKept} uncommitted versions kept by recoveries, ${r.kills} ${r.kills === 1 ? 'kill' : 'kills'}, ${r.violations.length} ${r.violations.length === 1 ? 'violation' : 'violations'}${r.truncated ? ' (events truncated)' : ''}`,
          sim,
          speed || NORMAL_REPLAY_SPEED,
          speed !== 0,
          at,
        );
        if (r.violations.length > 0)
          notify(
            'error',
            `the checker found ${r.violations.length} ${r.violations.length === 1 ? 'violation' : 'violations'}: ${r.violations[0]!.invariant}: ${r.violations[0]!.message}`,
          );
      } catch (e) {
        notify('error', `simulation failed — ${e instanceof CommandError ? `${e.code}: ${e.message}` : String(e)}`);
      } finally {
        setBusy(false);
      }
    },
    [startReplay, notify, store],
  );

  const simStarted = useRef(false);
  useEffect(() => {
    if (simStarted.current || conn !== 'connected' || source.kind !== 'replay' || source.simulation === null || playerRef.current !== null) return;
    simStarted.current = true;
    void runSimulation(source.simulation, initialView.current.at);
  }, [conn, source, runSimulation]);

  const backToLive = useCallback(() => {
    playerRef.current = null;
    setSource({ kind: 'live' });
    sourceRef.current = { kind: 'live' };
    if (location.search !== '') history.replaceState(null, '', location.pathname);
    setWindowMs(15_000);
    setSelection(null);
    store.reset();
    connRef.current?.resync();
  }, [store]);

  // ---------------------------------------------------------------- hold (live) and play (replay)
  const held = model.config?.held === true;
  const setConfig = useCallback((patch: Partial<ClusterConfig>) => command<'config'>({ type: 'config', config: patch }, 'configuration change'), [command]);
  const toggleHold = useCallback(() => {
    const p = playerRef.current;
    if (sourceRef.current.kind === 'replay' && p !== null) {
      p.playing = !p.playing && !p.done;
      setPlayerTick((x) => x + 1);
      return;
    }
    void setConfig({ held: store.model.config?.held !== true });
  }, [setConfig, store]);

  // ---------------------------------------------------------------- class pace
  const classPace = isClassPace(model.config);
  const setPace = useCallback(
    async (cls: boolean) => {
      if (sourceRef.current.kind === 'replay') {
        const p = playerRef.current;
        if (p !== null) p.speed = cls ? CLASS_REPLAY_SPEED : NORMAL_REPLAY_SPEED;
        setPlayerTick((x) => x + 1);
        return;
      }
      await setConfig(cls ? CLASS_PACE : NORMAL_PACE);
      await command<'workload'>({ type: 'workload', workload: workloadAtPace(store.model.workload, cls) }, 'workload change');
    },
    [setConfig, command, store],
  );
  const paceWanted = useRef(paceFromUrl());
  useEffect(() => {
    const want = paceWanted.current;
    if (want === null || conn !== 'connected' || source.kind !== 'live' || model.config === null) return;
    paceWanted.current = null;
    if ((want === 'class') !== isClassPace(model.config)) void setPace(want === 'class');
  }, [conn, source, model, rev, setPace]);
  const replaySlow = playerRef.current !== null && playerRef.current.speed <= CLASS_REPLAY_SPEED;

  // ---------------------------------------------------------------- export / import
  const doExport = useCallback(() => {
    const src = sourceRef.current;
    const trace = exportTrace(
      store.model,
      src.kind === 'live' ? 'live' : src.simulation !== null ? 'simulation' : 'import',
      src.kind === 'replay' ? src.simulation : null,
      new Date(),
    );
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
        startReplay(
          t.events,
          `imported ${file.name}: ${t.events.length} events${t.eventsDropped > 0 ? ` (the first ${t.eventsDropped} were not kept by the exporting page)` : ''}`,
          t.simulation,
          NORMAL_REPLAY_SPEED,
          false,
        );
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
  const index = useMemo(() => {
    const now = performance.now();
    const cached = indexRef.current;
    if (cached !== null && cached.model === model && now - cached.at < 300) return cached.index;
    const fresh = dependencyIndex(model);
    indexRef.current = { model, at: now, index: fresh };
    return fresh;
  }, [model, rev, previewNode, selection, rollbackFocus]);
  const lanes = model.laneIds();
  // Units per node for the lanes' tooltips: counted from every node's state, so at most a few times a second.
  const laneTitlesRef = useRef<{ model: unknown; at: number; titles: ReadonlyMap<NodeId, string> } | null>(null);
  const laneTitles = useMemo(() => {
    const now = performance.now();
    const cached = laneTitlesRef.current;
    if (cached !== null && cached.model === model && now - cached.at < 500) return cached.titles;
    const titles = new Map<NodeId, string>();
    for (const id of model.laneIds()) {
      const state = model.nodeState(id);
      const units = countUnits(unitsOfState(state));
      const view = nodeViewText(model, id, state);
      titles.set(
        id,
        `${id}: ${units.total} ${units.total === 1 ? 'unit' : 'units'} of service state${units.total > 0 ? ` (${formatUnitCounts(units)})` : ''}${view !== null ? `; ${view}` : ''}`,
      );
    }
    laneTitlesRef.current = { model, at: now, titles };
    return titles;
  }, [model, rev]);
  const asking = tourState?.asking === true;
  // Predict, then reveal: no kill preview while a tour's question is open.
  const preview = useMemo(() => (previewNode === null || asking ? null : killPreview(model, index, previewNode)), [model, index, previewNode, asking]);
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
    if (tourHighlight !== null) return tourHighlight;
    if (selectedVersion !== null && model.versions.has(selectedVersion)) {
      const s = selectionOf(model, index, selectedVersion);
      for (const k of s.dependencies) h.set(k, 'dependency');
      for (const k of s.dependents) h.set(k, 'dependent');
      h.set(selectedVersion, 'selected');
    }
    return h;
  }, [preview, explanation, cascadeStep, selectedVersion, model, index, tourHighlight]);
  const whyEdges = explanation?.why ?? [];
  const zoomKeys = useMemo(() => {
    if (!zoomRollback || explanation === null) return null;
    const s = new Set<string>([...explanation.record.discarded, ...explanation.kept]);
    for (const e of explanation.why) {
      s.add(e.from);
      s.add(e.to);
    }
    return s;
  }, [zoomRollback, explanation]);
  // Zoomed to a rollback, the stage shows its time span.
  const zoomDomain = useMemo((): [number, number] | null => {
    if (zoomKeys === null || explanation === null) return null;
    let t0 = explanation.record.t;
    for (const k of zoomKeys) {
      const v = model.versions.get(k);
      if (v !== undefined) t0 = Math.min(t0, v.openedAt);
    }
    const pad = Math.max(300, (explanation.record.t - t0) * 0.15);
    return [t0 - pad, explanation.record.t + pad];
  }, [zoomKeys, explanation, model]);
  const replayDomain = useMemo((): [number, number] | null => {
    const p = playerRef.current;
    if (source.kind !== 'replay' || p === null || windowMs !== 'all' || p.events.length === 0) return null;
    return [p.events[0]!.t, p.events.at(-1)!.t];
  }, [source, windowMs, playerTick]);

  // After a failure in the live cluster, highlight what it rolled back (Esc clears it). Records that
  // were already in the snapshot's history are not replayed at the person; a tour shows its own.
  const autoAfterWorldLine = useRef<number | null>(null);
  useEffect(() => {
    if (source.kind !== 'live' || model.lastEvent === 0) return;
    if (autoAfterWorldLine.current === null) {
      autoAfterWorldLine.current = model.worldLine;
      return;
    }
    const rec = model.rollbacks.at(-1);
    if (rec === undefined || rec.worldLine <= autoAfterWorldLine.current) return;
    autoAfterWorldLine.current = rec.worldLine;
    if (tourState !== null || rec.failed.length === 0) return;
    setSelection(null);
    setRollbackFocus(rec.worldLine);
    setCascadeStep(null);
    notify(
      'info',
      `world-line ${rec.worldLine}: ${worldLineCause(rec)}. What it rolled back is highlighted (Esc clears); “rollbacks and why” in the drawer says why.`,
    );
  }, [source, model, rev, notify, tourState]);
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

  const stats = useMemo(
    () => (drawer === 'charts' ? liveStats(model, typeof windowMs === 'number' ? windowMs : Math.max(1000, model.lastT - (model.firstT ?? 0))) : null),
    [drawer, model, rev, windowMs],
  );

  // ---------------------------------------------------------------- node commands
  const kill = useCallback((n: NodeId) => void command<'kill'>({ type: 'kill', node: n }, `kill ${n}`), [command]);
  const restart = useCallback((n: NodeId) => void command<'restart'>({ type: 'restart', node: n }, `restart ${n}`), [command]);
  // Membership changes take seconds (a drain hands every unit over first): say what runs, then how it went.
  const [membershipOp, setMembershipOp] = useState<{ node: NodeId | null; text: string } | null>(null);
  const membership = useCallback(
    async (c: { type: 'addNode' } | { type: 'removeNode'; node: NodeId }, running: string, what: string): Promise<void> => {
      const lc = connRef.current;
      if (lc === null) return;
      setBusy(true);
      setMembershipOp({ node: c.type === 'removeNode' ? c.node : null, text: running });
      try {
        const r = c.type === 'addNode' ? await lc.command<'addNode'>(c, 120_000) : await lc.command<'removeNode'>(c, 120_000);
        const how =
          r.how === 'joined'
            ? `${r.node} joined`
            : r.how === 'drained'
              ? `${r.node} drained (its units handed over), then stopped`
              : `${r.node} restored (its committed state taken over from storage)`;
        notify('info', `${how}: placement v${r.version}, members ${r.members.join(', ')}`);
      } catch (e) {
        const msg = e instanceof CommandError ? `${e.code}: ${e.message}${e.definite ? '' : ' (it may still have happened)'}` : String(e);
        notify('error', `${what} failed — ${msg}`);
      } finally {
        setMembershipOp(null);
        setBusy(false);
      }
    },
    [notify],
  );
  const remove = useCallback(
    (n: NodeId) =>
      void membership(
        { type: 'removeNode', node: n },
        store.model.nodes.get(n)?.status === 'down' ? `restoring ${n}’s committed state on the others…` : `draining ${n}…`,
        `remove ${n}`,
      ),
    [membership, store],
  );
  const setWorkload = useCallback((w: WorkloadConfig) => void command<'workload'>({ type: 'workload', workload: w }, 'workload change'), [command]);
  const addNode = useCallback(() => void membership({ type: 'addNode' }, 'adding a node…', 'add node'), [membership]);
  const pickScenario = useCallback(
    (s: Scenario) => {
      void command<'workload'>({ type: 'workload', workload: workloadFor(s, store.model.workload) }, `scenario ${s}`);
      if (sourceRef.current.kind === 'live') {
        const q = new URLSearchParams(location.search);
        q.set('scenario', s);
        history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
      }
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

  // ---------------------------------------------------------------- the URL holds the view
  useEffect(() => {
    const q = new URLSearchParams(location.search);
    const p = playerRef.current;
    if (source.kind === 'replay' && source.simulation !== null && p !== null) {
      for (const [k, v] of Object.entries(source.simulation)) if (k !== 'speed') q.set(k, v);
      if (p.playing) q.delete('at');
      else q.set('at', String(p.index));
    }
    const sel = selectionToParam(selection);
    if (sel === null) q.delete('sel');
    else q.set('sel', sel);
    if (windowMs === (source.kind === 'replay' ? 'all' : 15_000)) q.delete('win');
    else q.set('win', String(windowMs));
    if (tourState !== null) q.set('tour', tourState.id);
    else q.delete('tour');
    const next = q.toString();
    if (next !== location.search.replace(/^\?/, '')) history.replaceState(null, '', `${location.pathname}${next === '' ? '' : `?${next}`}`);
  }, [source, selection, windowMs, tourState, playerTick]);

  // ---------------------------------------------------------------- guided tours
  const call = useCallback(async <C extends CommandType>(c: Extract<Command, { type: C }>, timeoutMs?: number): Promise<CallResult<C>> => {
    const lc = connRef.current;
    if (lc === null) return { ok: false, code: 'Disconnected', message: 'not connected' };
    try {
      return { ok: true, value: await lc.command<C>(c, timeoutMs) };
    } catch (e) {
      return e instanceof CommandError ? { ok: false, code: e.code, message: e.message } : { ok: false, code: 'Error', message: String(e) };
    }
  }, []);
  const makeTourApi = useCallback(
    (): TourApi => ({
      model: () => store.model,
      call,
      setConfig: (patch) => command<'config'>({ type: 'config', config: patch }, 'configuration change'),
      setWorkload: (w) => command<'workload'>({ type: 'workload', workload: w }, 'workload change'),
      kill: (n) => command<'kill'>({ type: 'kill', node: n }, `kill ${n}`),
      restart: (n) => command<'restart'>({ type: 'restart', node: n }, `restart ${n}`),
      hold: async (on) => {
        if ((store.model.config?.held === true) === on) return true;
        const ok = await command<'config'>({ type: 'config', config: { held: on } }, on ? 'hold' : 'release');
        // The page's own config follows from the server's event; wait for it so that what the tour reads next is held.
        const until = performance.now() + 5000;
        while (ok && (store.model.config?.held === true) !== on && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
        return ok;
      },
      highlight: (h) => setTourHighlight(h),
      focusRollback: (w) => {
        setRollbackFocus(w);
        setCascadeStep(null);
      },
      selectRequest: (r) => setSelection(r === null ? null : { kind: 'request', session: r.session, seq: r.seq }),
      openDrawer: (t) => setDrawer(t),
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
    [store, command, call],
  );
  const onTourOpen = useCallback((s: { id: string; step: number; asking: boolean } | null) => {
    setTourState(s);
    if (s === null) setTourHighlight(null);
    else setPreviewNode(null);
  }, []);
  const tourFromUrl = useRef<string | null>(new URLSearchParams(location.search).get('tour'));

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
          setPopover(null);
          setViewEndT(null);
          setSelection(null);
          setRollbackFocus(null);
          setZoomRollback(false);
          setPreviewNode(null);
          break;
        case ' ':
        case 'p':
          toggleHold();
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
          setDrawer('events');
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
  }, [toggleHold, kill, restart, selectedNode, selectedVersion, doExport, store, setSelectedVersion, setSelectedNode]);

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
  const lost = model.lostBy;
  const lostText =
    model.totals.lost === 0
      ? ''
      : ` · ${model.totals.lost} ${model.totals.lost === 1 ? 'message' : 'messages'} lost by the network (${[
          lost.down > 0 ? `${lost.down} to a node that was down` : '',
          lost.notJoined > 0 ? `${lost.notJoined} to a node not joined yet` : '',
          lost.loss > 0 ? `${lost.loss} to the configured loss of ${((cfg?.messageLoss ?? 0) * 100).toFixed(0)}%` : '',
        ]
          .filter((x) => x !== '')
          .join(', ')})`;

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
          className={`pace${(live ? classPace : replaySlow) ? ' active' : ''}`}
          aria-pressed={live ? classPace : replaySlow}
          onClick={() => void setPace(!(live ? classPace : replaySlow))}
          disabled={live && (busy || conn !== 'connected')}
          data-testid="pace"
          title={live ? 'classroom pace: a checkpoint every 1.5 s, 250 ms network delay, a gentle workload (for the whole cluster)' : 'play the replay slowly'}
        >
          class pace
        </button>
        {live && (
          <Popover label="settings" testId="settings" open={popover === 'settings'} onToggle={() => setPopover((p) => (p === 'settings' ? null : 'settings'))}>
            <Controls
              config={model.config}
              workload={model.workload}
              busy={busy || conn !== 'connected'}
              onConfig={(p) => void setConfig(p)}
              onWorkload={setWorkload}
              onScenario={pickScenario}
              onAddNode={addNode}
            />
          </Popover>
        )}
        <Popover label="replay & trace" testId="replay-menu" open={popover === 'replay'} onToggle={() => setPopover((p) => (p === 'replay' ? null : 'replay'))}>
          <SimulationForm
            disabled={busy || conn !== 'connected'}
            onRun={(sim) => {
              const q = new URLSearchParams(sim);
              history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
              setPopover(null);
              void runSimulation(sim);
            }}
          />
          <div className="menu-row">
            <button type="button" onClick={doExport} data-testid="export">
              export trace
            </button>
            <button type="button" onClick={() => fileRef.current?.click()} data-testid="import">
              import trace
            </button>
            {!live && (
              <button type="button" onClick={backToLive} data-testid="back-to-live">
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
            if (f !== undefined) void doImport(f);
            e.target.value = '';
            setPopover(null);
          }}
        />
        <button type="button" onClick={() => setHelp(true)} aria-label="keyboard shortcuts and help">
          ?
        </button>
      </header>
      <div className="workspace">
        <div className="stage" data-testid="space-time">
          <div className="stage-diagram" ref={diagramRef}>
            <MigrationBanner model={model} rev={rev} op={membershipOp?.text ?? null} />
            {lanes.length === 0 && (
              <p className="muted stage-empty">
                {live ? (conn === 'connected' ? 'Waiting for the cluster’s first events…' : 'Connecting to the server…') : 'No events yet.'}
              </p>
            )}
            <SpaceTime
              model={model}
              rev={rev}
              width={size.width}
              height={size.height - 2}
              windowMs={windowMs}
              viewEndT={viewEndT}
              domain={zoomDomain ?? replayDomain}
              messageKinds={kinds}
              highlight={highlight}
              whyEdges={whyEdges}
              selectedNode={selectedNode}
              selectedRequest={selectedRequest}
              live={live}
              busy={busy || conn !== 'connected'}
              previewAllowed={!asking}
              onSelectVersion={setSelectedVersion}
              onSelectNode={setSelectedNode}
              onSelectRequest={(r) => setSelection({ kind: 'request', session: r.session, seq: r.seq })}
              onKill={kill}
              onRestart={restart}
              onPreview={setPreviewNode}
              laneTitles={laneTitles}
            />
          </div>
          <div className="time-controls" data-testid="time-controls">
            {live ? (
              <>
                <button
                  type="button"
                  onClick={toggleHold}
                  data-testid="hold"
                  aria-pressed={held}
                  disabled={conn !== 'connected'}
                  title="hold the cluster itself: the workload sends nothing, nodes close no version; messages on the wire still land"
                >
                  {held ? '▶ release' : '❚❚ hold'}
                </button>
                <span className={`pill${held ? ' held' : ''}`} data-testid="live-state">
                  {held ? 'held' : 'running'}
                </span>
              </>
            ) : (
              player !== null && (
                <span className="replay" data-testid="replay-controls">
                  <button
                    type="button"
                    onClick={() => {
                      if (player.done) seekReplay(0);
                      player.playing = !player.playing && !player.done;
                      setPlayerTick((x) => x + 1);
                    }}
                    data-testid="replay-play"
                  >
                    {player.playing ? '❚❚ pause' : '▶ play'}
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
                  <label>
                    speed{' '}
                    <select
                      value={String(player.speed)}
                      onChange={(e) => {
                        player.speed = Number(e.target.value);
                        setPlayerTick((x) => x + 1);
                      }}
                    >
                      {[0.005, 0.01, 0.05, 0.2, 1, 5].map((s) => (
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
                    onChange={(e) => seekReplay(Number(e.target.value))}
                    aria-label="replay position"
                    data-testid="replay-scrubber"
                    className="scrubber"
                  />
                  <span data-testid="replay-position">
                    {player.index} / {player.events.length}
                  </span>
                </span>
              )
            )}
            <span className="window-buttons" role="group" aria-label="time window">
              {WINDOWS.map((w) => (
                <button key={String(w)} type="button" className={windowMs === w ? 'active' : undefined} onClick={() => setWindowMs(w)}>
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
                  value={viewEndT ?? model.lastT}
                  onChange={(e) => {
                    const v = Number(e.target.value);
                    setViewEndT(v >= model.lastT - windowMs / 50 ? null : v);
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
              </div>
            </details>
            {zoomDomain !== null && (
              <button type="button" onClick={() => setZoomRollback(false)} data-testid="unzoom">
                leave the rollback zoom
              </button>
            )}
          </div>
          <Legend />
        </div>
        <aside className="side" data-testid="side-panel" tabIndex={0} aria-label="tour and inspector">
          {preview !== null && <KillPreviewBox preview={preview} model={model} />}
          {live && <Tours makeApi={makeTourApi} disabled={conn !== 'connected'} onOpen={onTourOpen} startId={tourFromUrl.current} />}
          {tourState === null && (
            <Inspector model={model} rev={rev} index={index} selection={selection} onSelectVersion={setSelectedVersion} onSelectNode={setSelectedNode} />
          )}
        </aside>
      </div>
      <div className={`drawer${drawer !== null ? ' open' : ''}`}>
        <div className="drawer-bar">
          <div className="tabs" role="tablist" aria-label="drawer">
            {DRAWER_TABS.map((t) => (
              <button
                key={t.id}
                type="button"
                role="tab"
                aria-selected={drawer === t.id}
                className={drawer === t.id ? 'active' : undefined}
                onClick={() => setDrawer((d) => (d === t.id ? null : t.id))}
                data-testid={`tab-${t.id}`}
              >
                {t.id === 'rollbacks' ? `${t.label} (${model.rollbacks.length})` : t.label}
              </button>
            ))}
          </div>
          <span className="muted totals" data-testid="totals">
            {model.totals.events} events · {model.totals.committed} committed · {model.totals.rolledBack} rolled back · {model.totals.rejected} stale rejected
            {lostText}
            {model.storage !== null ? ` · storage ${model.storage}` : ''}
            {model.eventsDropped > 0 ? ` · ${model.eventsDropped} older events no longer kept` : ''}
          </span>
        </div>
        {drawer !== null && (
          <div className="drawer-content" ref={drawerRef} role="tabpanel" tabIndex={0} aria-label={DRAWER_TABS.find((t) => t.id === drawer)?.label}>
            {drawer === 'nodes' && <PlacementSummary model={model} rev={rev} />}
            {drawer === 'nodes' && (
              <div className="nodes">
                {lanes.map((id) => (
                  <NodePanel
                    key={id}
                    id={id}
                    model={model}
                    rev={rev}
                    live={live}
                    busy={busy}
                    removing={membershipOp?.node === id}
                    selected={selectedNode === id}
                    onRemove={remove}
                    onSelect={setSelectedNode}
                  />
                ))}
              </div>
            )}
            {drawer === 'graph' && (
              <DepGraph
                model={model}
                rev={rev}
                index={index}
                width={Math.max(400, drawerSize.width - 8)}
                highlight={highlight}
                whyEdges={whyEdges}
                zoom={null}
                onSelectVersion={setSelectedVersion}
              />
            )}
            {drawer === 'rollbacks' && (
              <div className="rollbacks-tab">
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
                  zoomed={zoomRollback}
                  onZoom={setZoomRollback}
                />
                {explanation !== null && (
                  <DepGraph
                    model={model}
                    rev={rev}
                    index={index}
                    width={Math.max(400, drawerSize.width - 8)}
                    highlight={highlight}
                    whyEdges={whyEdges}
                    zoom={zoomKeys}
                    onSelectVersion={setSelectedVersion}
                  />
                )}
              </div>
            )}
            {drawer === 'requests' && (
              <Requests
                model={model}
                rev={rev}
                selected={selectedRequest}
                onSelect={(r) => setSelection({ kind: 'request', session: r.session, seq: r.seq })}
              />
            )}
            {drawer === 'events' && <EventTable events={model.events} rev={rev} filterRef={filterRef} />}
            {drawer === 'services' && (
              <Services
                model={model}
                rev={rev}
                scenario={scenarioOf(model.workload?.kind)}
                onSelectRequest={(r) => setSelection({ kind: 'request', session: r.session, seq: r.seq })}
              />
            )}
            {drawer === 'race' &&
              (live ? (
                <Race
                  model={model}
                  rev={rev}
                  disabled={conn !== 'connected'}
                  setConfig={(patch) => command<'config'>({ type: 'config', config: patch }, 'configuration change')}
                  setWorkload={(w) => command<'workload'>({ type: 'workload', workload: w }, 'workload change')}
                />
              ) : (
                <p className="muted">The race runs on the live cluster.</p>
              ))}
            {drawer === 'charts' && stats !== null && <Charts stats={stats} />}
          </div>
        )}
      </div>
      <div className="notices" aria-live="polite">
        {notices.map((n) => (
          <div key={n.id} className={`notice ${n.level}`}>
            {n.message}
          </div>
        ))}
      </div>
      {help && <Help onClose={() => setHelp(false)} />}
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
        <legend>Seeded simulation (the server runs it; the page replays its events)</legend>
        <label>
          seed <input value={seed} onChange={(e) => setSeed(e.target.value)} style={{ width: '4em' }} inputMode="numeric" data-testid="sim-seed" />
        </label>{' '}
        <label>
          mode{' '}
          <select value={mode} onChange={(e) => setMode(e.target.value)}>
            <option>speculative</option>
            <option>durable</option>
            <option>none</option>
          </select>
        </label>{' '}
        <label>
          recovery{' '}
          <select value={recovery} onChange={(e) => setRecovery(e.target.value)} data-testid="sim-recovery">
            {RECOVERY_KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>{' '}
        <label>
          nodes <input value={nodes} onChange={(e) => setNodes(e.target.value)} style={{ width: '3em' }} inputMode="numeric" />
        </label>{' '}
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
