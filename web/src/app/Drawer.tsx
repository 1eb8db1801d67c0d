import { useRef } from 'react';
import type { ClusterConfig, NodeId, WorkloadConfig } from '@dse/shared';
import type { DepIndex, RollbackExplanation } from '../model/analysis';
import type { PlaygroundModel } from '../model/model';
import { scenarioOf } from '../model/services';
import { liveStats } from '../model/stats';
import { DepGraph } from '../views/DepGraph';
import { EventTable } from '../views/EventTable';
import { Charts, NodePanel, Requests, Rollbacks } from '../views/Panels';
import { PlacementSummary } from '../views/Placement';
import { Race } from '../views/Race';
import { Services } from '../views/Services';
import type { Highlight } from '../views/SpaceTime';
import type { DrawerTab } from '../views/Tours';
import { useSize } from './dom';

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

type RequestRef = { session: string; seq: number };

export interface DrawerProps {
  model: PlaygroundModel;
  rev: number;
  tab: DrawerTab | null;
  onTab(t: DrawerTab | null): void;
  live: boolean;
  connected: boolean;
  busy: boolean;
  windowMs: number | 'all';
  /** The node a membership change is removing now. */
  removing: NodeId | null;
  selectedNode: NodeId | null;
  selectedRequest: RequestRef | null;
  onRemove(n: NodeId): void;
  onSelectNode(n: NodeId): void;
  onSelectVersion(key: string | null): void;
  onSelectRequest(r: RequestRef): void;
  index: DepIndex;
  highlight: ReadonlyMap<string, Highlight>;
  whyEdges: RollbackExplanation['why'];
  explanation: RollbackExplanation | null;
  zoomKeys: ReadonlySet<string> | null;
  rollbackFocus: number | null;
  onRollbackFocus(w: number | null): void;
  cascadeStep: number | null;
  onPlayCascade(): void;
  zoomRollback: boolean;
  onZoomRollback(on: boolean): void;
  filterRef: React.RefObject<HTMLInputElement | null>;
  setConfig(patch: Partial<ClusterConfig>): Promise<boolean>;
  setWorkload(w: WorkloadConfig): Promise<boolean>;
}

/** The drawer under the stage: its tabs, the run's totals, and the open tab's panel. */
export function Drawer(p: DrawerProps) {
  const { model, tab } = p;
  return (
    <div className={`drawer${tab !== null ? ' open' : ''}`}>
      <div className="drawer-bar">
        <div className="tabs" role="tablist" aria-label="drawer">
          {DRAWER_TABS.map((t) => (
            <button
              key={t.id}
              type="button"
              role="tab"
              aria-selected={tab === t.id}
              className={tab === t.id ? 'active' : undefined}
              onClick={() => p.onTab(tab === t.id ? null : t.id)}
              data-testid={`tab-${t.id}`}
            >
              {t.id === 'rollbacks' ? `${t.label} (${model.rollbacks.length})` : t.label}
            </button>
          ))}
        </div>
        <span className="muted totals" data-testid="totals">
          {model.totals.events} events · {model.totals.committed} committed · {model.totals.rolledBack} rolled back · {model.totals.rejected} stale rejected
          {lostText(model)}
          {model.storage !== null ? ` · storage ${model.storage}` : ''}
          {model.eventsDropped > 0 ? ` · ${model.eventsDropped} older events no longer kept` : ''}
        </span>
      </div>
      {tab !== null && <DrawerPanel {...p} tab={tab} />}
    </div>
  );
}

/** The open tab's panel (mounted while a tab is open, so that it measures its own width). */
function DrawerPanel(p: DrawerProps & { tab: DrawerTab }) {
  const { model, rev, tab } = p;
  const contentRef = useRef<HTMLDivElement | null>(null);
  const size = useSize(contentRef);
  const graphWidth = Math.max(400, size.width - 8);
  return (
    <div className="drawer-content" ref={contentRef} role="tabpanel" tabIndex={0} aria-label={DRAWER_TABS.find((t) => t.id === tab)?.label}>
      {tab === 'nodes' && <PlacementSummary model={model} rev={rev} />}
      {tab === 'nodes' && (
        <div className="nodes">
          {model.laneIds().map((id) => (
            <NodePanel
              key={id}
              id={id}
              model={model}
              rev={rev}
              live={p.live}
              busy={p.busy}
              removing={p.removing === id}
              selected={p.selectedNode === id}
              onRemove={p.onRemove}
              onSelect={p.onSelectNode}
            />
          ))}
        </div>
      )}
      {tab === 'graph' && (
        <DepGraph
          model={model}
          rev={rev}
          index={p.index}
          width={graphWidth}
          highlight={p.highlight}
          whyEdges={p.whyEdges}
          zoom={null}
          onSelectVersion={p.onSelectVersion}
        />
      )}
      {tab === 'rollbacks' && (
        <div className="rollbacks-tab">
          <Rollbacks
            model={model}
            explanation={p.explanation}
            focus={p.rollbackFocus}
            onFocus={p.onRollbackFocus}
            step={p.cascadeStep}
            onPlay={p.onPlayCascade}
            zoomed={p.zoomRollback}
            onZoom={p.onZoomRollback}
          />
          {p.explanation !== null && (
            <DepGraph
              model={model}
              rev={rev}
              index={p.index}
              width={graphWidth}
              highlight={p.highlight}
              whyEdges={p.whyEdges}
              zoom={p.zoomKeys}
              onSelectVersion={p.onSelectVersion}
            />
          )}
        </div>
      )}
      {tab === 'requests' && <Requests model={model} rev={rev} selected={p.selectedRequest} onSelect={p.onSelectRequest} />}
      {tab === 'events' && <EventTable events={model.events} rev={rev} filterRef={p.filterRef} />}
      {tab === 'services' && <Services model={model} rev={rev} scenario={scenarioOf(model.workload?.kind)} onSelectRequest={p.onSelectRequest} />}
      {tab === 'race' &&
        (p.live ? (
          <Race model={model} rev={rev} disabled={!p.connected} setConfig={p.setConfig} setWorkload={p.setWorkload} />
        ) : (
          <p className="muted">The race runs on the live cluster.</p>
        ))}
      {tab === 'charts' && <Charts stats={liveStats(model, typeof p.windowMs === 'number' ? p.windowMs : Math.max(1000, model.lastT - (model.firstT ?? 0)))} />}
    </div>
  );
}

/** The messages the network lost, by why, for the totals line ('' when none). */
function lostText(model: PlaygroundModel): string {
  if (model.totals.lost === 0) return '';
  const lost = model.lostBy;
  const why = [
    lost.down > 0 ? `${lost.down} to a node that was down` : '',
    lost.notJoined > 0 ? `${lost.notJoined} to a node not joined yet` : '',
    lost.loss > 0 ? `${lost.loss} to the configured loss of ${((model.config?.messageLoss ?? 0) * 100).toFixed(0)}%` : '',
  ].filter((x) => x !== '');
  return ` · ${model.totals.lost} ${model.totals.lost === 1 ? 'message' : 'messages'} lost by the network (${why.join(', ')})`;
}
