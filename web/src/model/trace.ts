import type { TraceFile } from '@dse/shared';
import { TRACE_FORMAT, TRACE_FORMAT_VERSION } from '@dse/shared';
import type { PlaygroundModel } from './model';

/** The trace format and its reader are shared (`shared/src/trace.ts`): one schema for export and import. */
export type { TraceFile } from '@dse/shared';
export { parseTrace, TraceError } from '@dse/shared';

export function exportTrace(model: PlaygroundModel, source: TraceFile['source'], simulation: Record<string, string> | null, now: Date): TraceFile {
  return {
    format: TRACE_FORMAT,
    formatVersion: TRACE_FORMAT_VERSION,
    exportedAt: now.toISOString(),
    source,
    eventsDropped: model.eventsDropped,
    config: model.config,
    workload: model.workload,
    simulation,
    events: model.events,
  };
}
