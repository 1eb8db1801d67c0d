import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import type { ClusterConfig, MessageKind, NodeId, WorkloadConfig } from '@dse/shared';
import { exportTrace, parseTrace, TraceError } from './model/trace';
import { ModelStore } from './live/store';
import { Derived } from './live/derived';
import { worldLineCause, type PlaygroundModel, type RollbackRecord } from './model/model';
import { CLASS_PACE, CLASS_REPLAY_SPEED, isClassPace, NORMAL_PACE, NORMAL_REPLAY_SPEED, paceFromUrl, workloadAtPace } from './pace';
import { SpaceTime, type Highlight } from './views/SpaceTime';
import { Tours, type DrawerTab, type TourApi } from './views/Tours';
import { Inspector, type InspectorSelection } from './views/Inspector';
import { isScenario, scenarioOf, workloadFor, type Scenario } from './model/services';
import { Help, KillPreviewBox, Legend } from './views/Panels';
import { MigrationBanner, nodeViewText } from './views/Placement';
import { countUnits, formatUnitCounts, unitsOfState } from './model/placement';
import { useReducedMotion, useSize } from './app/dom';
import { replaceQuery, selectionFromParam, selectionToParam, simulationFromUrl, urlParam, viewFromUrl, type ViewFromUrl } from './app/url';
import { useSource } from './app/source';
import { useNotices } from './app/useNotices';
import { useLiveFeed } from './app/useLiveFeed';
import { useReplay, useSimulationFromUrl } from './app/useReplay';
import { useHighlights } from './app/useHighlights';
import { useKeyboard } from './app/useKeyboard';
import { useMembership } from './app/useMembership';
import { tourApi } from './app/tourApi';
import { TopBar, type PopoverId } from './app/TopBar';
import { TimeControls, WINDOWS } from './app/TimeControls';
import { Drawer } from './app/Drawer';

type TourState = { id: string; step: number; asking: boolean };

/** Units per node for the lanes' tooltips: counted from every node's state. */
function laneTitlesOf(model: PlaygroundModel): ReadonlyMap<NodeId, string> {
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
  return titles;
}

declare global {
  interface Window {
    /** A small read-only handle on the page's model, for debugging and the browser tests. */
    __dse?: { model: () => unknown; summary: () => unknown };
  }
}

export function App() {
  const [store] = useState(() => new ModelStore());
  const rev = useSyncExternalStore(store.subscribe, store.getVersion);
  const model = store.model;

  const { source, sourceRef, switchSource } = useSource();
  const [initialView] = useState<ViewFromUrl>(viewFromUrl);
  const { notices, notify } = useNotices();
  const [windowMs, setWindowMs] = useState<number | 'all'>(() => initialView.win ?? (simulationFromUrl() === null ? 15_000 : 'all'));
  const [viewEndT, setViewEndT] = useState<number | null>(null);
  const [kinds, setKinds] = useState<Set<MessageKind>>(() => new Set<MessageKind>(['app', 'request', 'reply', 'reject']));
  const [selection, setSelection] = useState<InspectorSelection>(() => selectionFromParam(initialView.sel));
  const [previewNode, setPreviewNode] = useState<NodeId | null>(null);
  const [rollbackFocus, setRollbackFocus] = useState<number | null>(null);
  const [zoomRollback, setZoomRollback] = useState(false);
  const [cascadeStep, setCascadeStep] = useState<number | null>(null);
  const [help, setHelp] = useState(false);
  const [drawer, setDrawer] = useState<DrawerTab | null>(null);
  const [popover, setPopover] = useState<PopoverId | null>(null);
  const [tourState, setTourState] = useState<TourState | null>(null);
  const [tourHighlight, setTourHighlight] = useState<ReadonlyMap<string, Highlight> | null>(null);
  // After a failure in the live cluster, highlight what it rolled back (Esc clears it); a tour shows its own.
  const tourOpen = useRef(false);
  const onRecovery = useCallback(
    (rec: RollbackRecord) => {
      if (tourOpen.current || rec.failed.length === 0) return;
      setSelection(null);
      setRollbackFocus(rec.worldLine);
      setCascadeStep(null);
      notify(
        'info',
        `world-line ${rec.worldLine}: ${worldLineCause(rec)}. What it rolled back is highlighted (Esc clears); “rollbacks and why” in the drawer says why.`,
      );
    },
    [notify],
  );
  const feed = useLiveFeed(store, sourceRef, notify, onRecovery);
  const { conn, connRef, command, busy } = feed;
  const fileRef = useRef<HTMLInputElement | null>(null);
  const filterRef = useRef<HTMLInputElement | null>(null);
  const diagramRef = useRef<HTMLDivElement | null>(null);
  const size = useSize(diagramRef);
  const reduceMotion = useReducedMotion();
  const selectedVersion = selection?.kind === 'version' ? selection.key : null;
  const selectedNode = selection?.kind === 'node' ? selection.node : selection?.kind === 'version' ? (model.versions.get(selection.key)?.node ?? null) : null;
  const selectedRequest = selection?.kind === 'request' ? { session: selection.session, seq: selection.seq } : null;
  const setSelectedVersion = useCallback((k: string | null) => setSelection(k === null ? null : { kind: 'version', key: k }), []);
  const setSelectedNode = useCallback((n: NodeId) => setSelection({ kind: 'node', node: n }), []);
  const selectRequest = useCallback((r: { session: string; seq: number }) => setSelection({ kind: 'request', session: r.session, seq: r.seq }), []);
  const focusRollback = useCallback((w: number | null) => {
    setRollbackFocus(w);
    setCascadeStep(null);
  }, []);

  // ---------------------------------------------------------------- replay (simulation and imported traces)
  // A replay opens with the whole run in view.
  const onReplayStart = useCallback(() => {
    setWindowMs('all');
    setViewEndT(null);
    setRollbackFocus(null);
  }, []);
  const replay = useReplay(store, switchSource, feed, notify, onReplayStart);
  const { player, playerTick, tick, startReplay, seekReplay, runSimulation, stopReplay } = replay;
  useSimulationFromUrl(conn, source, replay, initialView.at);

  const backToLive = useCallback(() => {
    stopReplay();
    switchSource({ kind: 'live' });
    if (location.search !== '') history.replaceState(null, '', location.pathname);
    setWindowMs(15_000);
    setSelection(null);
    store.reset();
    connRef.current?.resync();
  }, [store, stopReplay, switchSource, connRef]);

  // ---------------------------------------------------------------- hold (live) and play (replay)
  const held = model.config?.held === true;
  const setConfig = useCallback((patch: Partial<ClusterConfig>) => command<'config'>({ type: 'config', config: patch }, 'configuration change'), [command]);
  const setWorkloadAsync = useCallback((w: WorkloadConfig) => command<'workload'>({ type: 'workload', workload: w }, 'workload change'), [command]);
  const toggleHold = useCallback(() => {
    if (sourceRef.current.kind === 'replay' && player !== null) {
      player.togglePlaying();
      tick();
      return;
    }
    void setConfig({ held: store.model.config?.held !== true });
  }, [setConfig, store, player, tick, sourceRef]);

  // ---------------------------------------------------------------- class pace
  const classPace = isClassPace(model.config);
  const setPace = useCallback(
    async (cls: boolean) => {
      if (sourceRef.current.kind === 'replay') {
        player?.setSpeed(cls ? CLASS_REPLAY_SPEED : NORMAL_REPLAY_SPEED);
        tick();
        return;
      }
      await setConfig(cls ? CLASS_PACE : NORMAL_PACE);
      await command<'workload'>({ type: 'workload', workload: workloadAtPace(store.model.workload, cls) }, 'workload change');
    },
    [setConfig, command, store, player, tick, sourceRef],
  );
  const [paceWanted] = useState(paceFromUrl);
  const paceApplied = useRef(false);
  useEffect(() => {
    if (paceWanted === null || paceApplied.current || conn !== 'connected' || source.kind !== 'live' || model.config === null) return;
    paceApplied.current = true;
    if ((paceWanted === 'class') !== isClassPace(model.config)) void setPace(paceWanted === 'class');
  }, [conn, source, model, rev, setPace, paceWanted]);
  const replaySlow = player !== null && player.speed <= CLASS_REPLAY_SPEED;

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
  }, [store, sourceRef]);

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
  const asking = tourState?.asking === true;
  const { index, preview, explanation, highlight, whyEdges, zoomKeys, zoomDomain } = useHighlights({
    model,
    rev,
    previewNode,
    asking,
    rollbackFocus,
    cascadeStep,
    zoomRollback,
    selectedVersion,
    tourHighlight,
  });
  const lanes = model.laneIds();
  // The lanes' tooltips count every node's units: at most a few times a second.
  const [laneTitlesCache] = useState(() => new Derived(laneTitlesOf, 500));
  const laneTitles = laneTitlesCache.get(model, rev);
  const replayDomain = useMemo((): [number, number] | null => {
    if (source.kind !== 'replay' || player === null || windowMs !== 'all' || player.events.length === 0) return null;
    return [player.events[0]!.t, player.events.at(-1)!.t];
  }, [source, windowMs, player]);

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

  // ---------------------------------------------------------------- node commands
  const kill = useCallback((n: NodeId) => void command<'kill'>({ type: 'kill', node: n }, `kill ${n}`), [command]);
  const restart = useCallback((n: NodeId) => void command<'restart'>({ type: 'restart', node: n }, `restart ${n}`), [command]);
  const membership = useMembership(store, feed, notify);
  const setWorkload = useCallback((w: WorkloadConfig) => void setWorkloadAsync(w), [setWorkloadAsync]);
  const pickScenario = useCallback(
    (s: Scenario) => {
      void command<'workload'>({ type: 'workload', workload: workloadFor(s, store.model.workload) }, `scenario ${s}`);
      if (sourceRef.current.kind === 'live') {
        const q = new URLSearchParams(location.search);
        q.set('scenario', s);
        history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
      }
    },
    [command, store, sourceRef],
  );
  // `?scenario=<id>` in the address: run that scenario once connected (a link to a scenario).
  const [scenarioWanted] = useState(() => urlParam('scenario'));
  const scenarioApplied = useRef(false);
  useEffect(() => {
    if (scenarioWanted === null || scenarioApplied.current || conn !== 'connected' || source.kind !== 'live' || model.workload === null) return;
    scenarioApplied.current = true;
    if (isScenario(scenarioWanted) && scenarioOf(model.workload.kind) !== scenarioWanted) pickScenario(scenarioWanted);
  }, [conn, source, model, rev, pickScenario, scenarioWanted]);

  // ---------------------------------------------------------------- the URL holds the view
  useEffect(() => {
    const q = new URLSearchParams(location.search);
    if (source.kind === 'replay' && source.simulation !== null && player !== null) {
      for (const [k, v] of Object.entries(source.simulation)) if (k !== 'speed') q.set(k, v);
      if (player.playing) q.delete('at');
      else q.set('at', String(player.index));
    }
    const sel = selectionToParam(selection);
    if (sel === null) q.delete('sel');
    else q.set('sel', sel);
    if (windowMs === (source.kind === 'replay' ? 'all' : 15_000)) q.delete('win');
    else q.set('win', String(windowMs));
    if (tourState !== null) q.set('tour', tourState.id);
    else q.delete('tour');
    if (q.toString() !== location.search.replace(/^\?/, '')) replaceQuery(q);
  }, [source, selection, windowMs, tourState, player, playerTick]);

  // ---------------------------------------------------------------- guided tours
  const makeTourApi = useCallback(
    (): TourApi =>
      tourApi(store, feed, {
        highlight: setTourHighlight,
        focusRollback,
        selectRequest: (r) => setSelection(r === null ? null : { kind: 'request', session: r.session, seq: r.seq }),
        openDrawer: setDrawer,
      }),
    [store, feed, focusRollback],
  );
  const onTourOpen = useCallback((s: TourState | null) => {
    tourOpen.current = s !== null;
    setTourState(s);
    if (s === null) setTourHighlight(null);
    else setPreviewNode(null);
  }, []);
  const [tourFromUrl] = useState(() => urlParam('tour'));

  // ---------------------------------------------------------------- keyboard
  useKeyboard({
    model: () => store.model,
    live: source.kind === 'live',
    selectedNode,
    selectedVersion,
    toggleHelp: () => setHelp((h) => !h),
    clear: () => {
      setHelp(false);
      setPopover(null);
      setViewEndT(null);
      setSelection(null);
      setRollbackFocus(null);
      setZoomRollback(false);
      setPreviewNode(null);
    },
    togglePlay: toggleHold,
    kill,
    restart,
    windowStep: (by) => setWindowMs((w) => WINDOWS[Math.max(0, Math.min(WINDOWS.length - 1, WINDOWS.indexOf(w) + by))]!),
    windowAll: () => setWindowMs('all'),
    step: () => {
      player?.step();
      tick();
    },
    exportTrace: doExport,
    importTrace: () => fileRef.current?.click(),
    findEvents: () => {
      setDrawer('events');
      setTimeout(() => filterRef.current?.focus(), 0);
    },
    selectVersion: setSelectedVersion,
    selectNode: setSelectedNode,
  });

  // A small read-only handle for debugging and browser tests.
  useEffect(() => {
    window.__dse = {
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

  const live = source.kind === 'live';
  const connected = conn === 'connected';

  return (
    <div className={`app${reduceMotion ? ' reduce-motion' : ''}`}>
      <TopBar
        model={model}
        source={source}
        conn={conn}
        busy={busy}
        slow={live ? classPace : replaySlow}
        onPace={(slow) => void setPace(slow)}
        popover={popover}
        onPopover={setPopover}
        onConfig={(p) => void setConfig(p)}
        onWorkload={setWorkload}
        onScenario={pickScenario}
        onAddNode={membership.addNode}
        onSimulate={(sim) => {
          replaceQuery(new URLSearchParams(sim));
          setPopover(null);
          void runSimulation(sim);
        }}
        onExport={doExport}
        onImport={(f) => void doImport(f)}
        onBackToLive={backToLive}
        onHelp={() => setHelp(true)}
        fileRef={fileRef}
      />
      <div className="workspace">
        <div className="stage" data-testid="space-time">
          <div className="stage-diagram" ref={diagramRef}>
            <MigrationBanner model={model} rev={rev} op={membership.op?.text ?? null} />
            {lanes.length === 0 && (
              <p className="muted stage-empty">
                {live ? (connected ? 'Waiting for the cluster’s first events…' : 'Connecting to the server…') : 'No events yet.'}
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
              busy={busy || !connected}
              previewAllowed={!asking}
              onSelectVersion={setSelectedVersion}
              onSelectNode={setSelectedNode}
              onSelectRequest={selectRequest}
              onKill={kill}
              onRestart={restart}
              onPreview={setPreviewNode}
              laneTitles={laneTitles}
            />
          </div>
          <TimeControls
            model={model}
            live={live}
            connected={connected}
            held={held}
            onHold={toggleHold}
            player={player}
            onPlayerChange={tick}
            onSeek={seekReplay}
            windowMs={windowMs}
            onWindow={setWindowMs}
            viewEndT={viewEndT}
            onViewEnd={setViewEndT}
            kinds={kinds}
            onKinds={setKinds}
            zoomed={zoomDomain !== null}
            onUnzoom={() => setZoomRollback(false)}
          />
          <Legend />
        </div>
        <aside className="side" data-testid="side-panel" tabIndex={0} aria-label="tour and inspector">
          {preview !== null && <KillPreviewBox preview={preview} model={model} />}
          {live && <Tours makeApi={makeTourApi} disabled={!connected} onOpen={onTourOpen} startId={tourFromUrl} />}
          {tourState === null && (
            <Inspector model={model} rev={rev} index={index} selection={selection} onSelectVersion={setSelectedVersion} onSelectNode={setSelectedNode} />
          )}
        </aside>
      </div>
      <Drawer
        model={model}
        rev={rev}
        tab={drawer}
        onTab={setDrawer}
        live={live}
        connected={connected}
        busy={busy}
        windowMs={windowMs}
        removing={membership.op?.node ?? null}
        selectedNode={selectedNode}
        selectedRequest={selectedRequest}
        onRemove={membership.removeNode}
        onSelectNode={setSelectedNode}
        onSelectVersion={setSelectedVersion}
        onSelectRequest={selectRequest}
        index={index}
        highlight={highlight}
        whyEdges={whyEdges}
        explanation={explanation}
        zoomKeys={zoomKeys}
        rollbackFocus={rollbackFocus}
        onRollbackFocus={focusRollback}
        cascadeStep={cascadeStep}
        onPlayCascade={playCascade}
        zoomRollback={zoomRollback}
        onZoomRollback={setZoomRollback}
        filterRef={filterRef}
        setConfig={setConfig}
        setWorkload={setWorkloadAsync}
      />
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
