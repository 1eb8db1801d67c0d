import { memo, useState } from 'react';
import type { Cut, NumberedEvent, VersionRef } from '@dse/shared';
import { useThrottled } from '../live/throttle';
import { worldLineCause } from '../model/model';

const LIST_MAX = 8;

function cutText(cut: Cut): string {
  return Object.entries(cut)
    .map(([n, v]) => `${n} v${v}`)
    .join(', ');
}

/** A list cut short: a plan can name hundreds of versions, a table row should not. */
function listText(items: readonly string[]): string {
  return items.length <= LIST_MAX ? items.join(', ') : `${items.slice(0, LIST_MAX).join(', ')} … (${items.length})`;
}

function refText(r: VersionRef): string {
  return `${r.node} v${r.version}`;
}

/** One line of plain text per event: the table is the diagram's text alternative. */
export function summarize(e: NumberedEvent): string {
  switch (e.type) {
    case 'versionOpened':
      return `${e.node} opened v${e.version} (from v${e.prevVersion}) on world-line ${e.worldLine}`;
    case 'messageSent':
      return `${e.kind} ${e.from} → ${e.to} from v${e.srcVersion}, world-line ${e.worldLine}${e.resend ? ' (resend)' : ''}`;
    case 'messageDelivered':
      return `${e.kind} ${e.from} → ${e.to} delivered in v${e.version}${e.duplicate ? ' (duplicate, dropped)' : ''}`;
    case 'messageRejected':
      return `${e.kind} ${e.from} → ${e.to} rejected: sent on world-line ${e.worldLine}, receiver on ${e.receiverWorldLine}`;
    case 'messageLost':
      return `${e.kind} ${e.from} → ${e.to} lost by the network: ${e.reason === 'down' ? 'the receiver is down or has not joined yet (no connection to it)' : 'the configured message loss'}`;
    case 'dependencyRecorded':
      return `${e.node} v${e.version} depends on ${Object.entries(e.on)
        .map(([n, v]) => `${n} v${v}`)
        .join(', ')}`;
    case 'checkpointStarted':
      return `${e.node} checkpoint of v${e.version} started (${e.changedKeys} changed keys${e.full ? ', full' : ''})`;
    case 'checkpointPersisted':
      return `${e.node} v${e.version} persisted`;
    case 'checkpointFailed':
      return `${e.node} checkpoint of v${e.version} failed: ${e.code} (${e.definite ? 'definite' : 'indefinite'})`;
    case 'cutAdvanced':
      return `cut advanced on world-line ${e.worldLine}: ${Object.entries(e.cut)
        .map(([n, v]) => `${n} v${v}`)
        .join(', ')}`;
    case 'nodeFailed':
      return `${e.node} failed (${e.reason})`;
    case 'nodeRestarted':
      return `${e.node} restarted: restoring from its restore point`;
    case 'worldLineChanged': {
      // Traces recorded before precise recovery have no reason, recovery kind or restore points.
      const kept = e.kept ?? e.cut;
      const above = Object.entries(kept).filter(([n, v]) => v > (e.cut[n] ?? 0));
      return `world-line ${e.worldLine} begins (${worldLineCause({ worldLine: e.worldLine, reason: e.reason ?? null, failed: e.failed })}${e.recovery !== undefined ? `, ${e.recovery} recovery` : ''}); cut ${cutText(e.cut)}${above.length > 0 ? `; kept above the cut: up to ${above.map(([n, v]) => `${n} v${v}`).join(', ')}` : ''}`;
    }
    case 'recoveryPlan': {
      const parts: string[] = [];
      if (e.lost.length > 0) parts.push(`lost ${listText(e.lost.map((l) => `${l.node} above v${l.version}`))}`);
      for (const r of e.rolledBack) {
        if (r.reason === 'lost') continue;
        parts.push(
          `${r.node} rolled back above v${r.above} (${r.reason === 'cut' ? 'recovery cut' : `depends on lost state: ${r.path.map(refText).join(' → ')}`})`,
        );
      }
      parts.push(e.kept.length > 0 ? `kept ${listText(e.kept.map(refText))}` : 'kept no uncommitted version');
      return `recovery plan for world-line ${e.worldLine} (${e.recovery}): ${parts.join('; ')}`;
    }
    case 'rollback':
      return `${e.node} restored v${e.toVersion} on world-line ${e.worldLine}${e.discarded !== null ? `, discarded v${e.discarded.from}–v${e.discarded.to}` : ''}`;
    case 'stateChanged':
      return `${e.node} v${e.version} state: set ${Object.keys(e.set).join(', ') || '—'}${e.deleted.length > 0 ? `; deleted ${e.deleted.join(', ')}` : ''}`;
    case 'sessionResult':
      return `session ${e.session} request ${e.seq}: ${e.status}`;
    case 'modeChanged':
      return `mode is now ${e.mode}`;
    case 'nodeAdded':
      return `${e.node} added`;
    case 'nodeRemoved':
      return `${e.node} removed${e.left === true ? ': it left (its last version committed, no world-line)' : ''}`;
    case 'placementChanged':
      return `placement v${e.version} (${e.change}): ${e.phase === 'sent' ? 'sent to the nodes' : e.phase === 'committed' ? 'committed' : 'every hand-off arrived'}; members ${e.members.join(', ')}`;
    case 'nodeProcess':
      return `${e.node} process ${e.state}${e.pid !== null ? ` (pid ${e.pid})` : ''}${e.code !== null ? `, code ${e.code}` : ''}${e.signal !== null ? `, signal ${e.signal}` : ''}`;
    case 'configChanged':
      return `configuration: mode ${e.config.mode}, cut ${e.config.cut}${e.config.recovery !== undefined ? `, recovery ${e.config.recovery}` : ''}, checkpoint ${e.config.checkpointIntervalMs} ms, delay ${e.config.networkDelayMs} ms, loss ${e.config.messageLoss}`;
    case 'workloadChanged':
      return `workload: ${e.workload.kind} at ${e.workload.rate}/s`;
  }
}

const ROWS_MAX = 200;
/** The table follows a busy cluster at most this often (its rows scroll by too fast to read anyway). */
const REDRAW_MS = 250;

interface EventTableProps {
  events: readonly NumberedEvent[];
  rev: number;
  filterRef: React.RefObject<HTMLInputElement | null>;
}

export const EventTable = memo(function EventTable(p: EventTableProps) {
  // The model changes in place: `rev` says it changed. Redraw on it a few times a second only.
  const rev = useThrottled(p.rev, REDRAW_MS);
  return <EventTableBody events={p.events} rev={rev} filterRef={p.filterRef} />;
});

const EventTableBody = memo(function EventTableBody({ events, rev, filterRef }: EventTableProps) {
  const [text, setText] = useState('');
  const [type, setType] = useState('');
  void rev;
  const needle = text.trim().toLowerCase();
  const rows: NumberedEvent[] = [];
  let matched = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (type !== '' && e.type !== type) continue;
    if (needle !== '' && !`${e.type} ${summarize(e)}`.toLowerCase().includes(needle)) continue;
    matched++;
    if (rows.length < ROWS_MAX) rows.push(e);
  }
  const types = [...new Set(events.slice(-5000).map((e) => e.type))].sort();
  const t0 = events[0]?.t ?? 0;
  return (
    <div className="events">
      <div className="events-filter">
        <label>
          filter{' '}
          <input ref={filterRef} value={text} onChange={(e) => setText(e.target.value)} placeholder="text, e.g. n2 or rollback" data-testid="event-filter" />
        </label>{' '}
        <label>
          type{' '}
          <select value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">all</option>
            {types.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>{' '}
        <span className="muted">
          {matched} matching of {events.length} retained events{matched > ROWS_MAX ? `, newest ${ROWS_MAX} shown` : ''}
        </span>
      </div>
      <div className="events-scroll">
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>t (s)</th>
              <th>type</th>
              <th>what happened</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.n} className={`ev-${e.type}`}>
                <td>{e.n}</td>
                <td>{((e.t - t0) / 1000).toFixed(3)}</td>
                <td>{e.type}</td>
                <td>{summarize(e)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
});
