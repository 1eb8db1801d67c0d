import type { ClusterConfig, InspectionEvent, NumberedEvent, WorkloadConfig } from '@dse/shared';
import type { PlaygroundModel } from './model';

/** A trace file: the events a page saw, in order, enough to replay the same view elsewhere. */
export interface TraceFile {
  format: 'dse-trace';
  formatVersion: 1;
  exportedAt: string;
  /** Where the events came from. */
  source: 'live' | 'simulation' | 'import';
  /** Events dropped before the first one here (the page keeps a bounded history). */
  eventsDropped: number;
  config: ClusterConfig | null;
  workload: WorkloadConfig | null;
  /** For a simulation: the URL parameters that reproduce it. */
  simulation: Record<string, string> | null;
  events: NumberedEvent[];
}

export function exportTrace(model: PlaygroundModel, source: TraceFile['source'], simulation: Record<string, string> | null, now: Date): TraceFile {
  return {
    format: 'dse-trace',
    formatVersion: 1,
    exportedAt: now.toISOString(),
    source,
    eventsDropped: model.eventsDropped,
    config: model.config,
    workload: model.workload,
    simulation,
    events: model.events,
  };
}

const EVENT_TYPES: ReadonlySet<string> = new Set<InspectionEvent['type']>([
  'versionOpened',
  'messageSent',
  'messageDelivered',
  'messageRejected',
  'messageLost',
  'dependencyRecorded',
  'checkpointStarted',
  'checkpointPersisted',
  'checkpointFailed',
  'cutAdvanced',
  'nodeFailed',
  'nodeRestarted',
  'worldLineChanged',
  'recoveryPlan',
  'rollback',
  'stateChanged',
  'sessionResult',
  'modeChanged',
  'nodeAdded',
  'nodeRemoved',
  'placementChanged',
  'nodeProcess',
  'configChanged',
  'workloadChanged',
]);

export class TraceError extends Error {}

/**
 * Reads a trace file (or a bare array of events). Checks the shape of every event the model relies
 * on, so a bad file is refused with a message instead of drawing nonsense.
 */
export function parseTrace(text: string): TraceFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TraceError(`not JSON: ${(e as Error).message}`);
  }
  const obj: Record<string, unknown> = Array.isArray(raw)
    ? { format: 'dse-trace', formatVersion: 1, events: raw }
    : typeof raw === 'object' && raw !== null
      ? (raw as Record<string, unknown>)
      : {};
  if (obj.format !== 'dse-trace') throw new TraceError('not a DSE trace (format is not "dse-trace")');
  if (obj.formatVersion !== 1) throw new TraceError(`unsupported trace format version ${String(obj.formatVersion)}`);
  if (!Array.isArray(obj.events)) throw new TraceError('the trace has no events array');
  const events: NumberedEvent[] = [];
  obj.events.forEach((e: unknown, i) => {
    if (typeof e !== 'object' || e === null) throw new TraceError(`event ${i} is not an object`);
    const ev = e as Record<string, unknown>;
    if (typeof ev.type !== 'string' || !EVENT_TYPES.has(ev.type)) throw new TraceError(`event ${i} has an unknown type ${JSON.stringify(ev.type)}`);
    if (typeof ev.t !== 'number' || !Number.isFinite(ev.t)) throw new TraceError(`event ${i} (${ev.type}) has no time t`);
    const n = typeof ev.n === 'number' ? ev.n : i + 1;
    events.push({ ...(ev as unknown as InspectionEvent), n });
  });
  return {
    format: 'dse-trace',
    formatVersion: 1,
    exportedAt: typeof obj.exportedAt === 'string' ? obj.exportedAt : '',
    source: obj.source === 'live' || obj.source === 'simulation' ? obj.source : 'import',
    eventsDropped: typeof obj.eventsDropped === 'number' ? obj.eventsDropped : 0,
    config: (obj.config as ClusterConfig | null | undefined) ?? null,
    workload: (obj.workload as WorkloadConfig | null | undefined) ?? null,
    simulation: (obj.simulation as Record<string, string> | null | undefined) ?? null,
    events,
  };
}
