import type { NumberedEvent } from './api';
import { ClusterConfigSchema, WorkloadConfigSchema } from './config';
import { InspectionEventSchema } from './events';
import { list, map, num, oneOf, problemOf, reply, str, z } from './schema';

/**
 * The trace file format: the events a page saw, in order, enough to replay the same view elsewhere
 * (the playground exports and imports it). Every event of an imported file is checked against the
 * inspection event schema, so a bad file is refused with the reason instead of drawing nonsense.
 */

export const TRACE_FORMAT = 'dse-trace';
export const TRACE_FORMAT_VERSION = 1;

export const TraceFileSchema = reply({
  format: z.literal(TRACE_FORMAT),
  formatVersion: z.literal(TRACE_FORMAT_VERSION),
  exportedAt: str(),
  /** Where the events came from. */
  source: oneOf(['live', 'simulation', 'import']),
  /** Events dropped before the first one here (the page keeps a bounded history). */
  eventsDropped: num(true),
  config: ClusterConfigSchema.nullable(),
  workload: WorkloadConfigSchema.nullable(),
  /** For a simulation: the URL parameters that reproduce it. */
  simulation: map(z.string()).nullable(),
  events: list(InspectionEventSchema.and(reply({ n: num(true) }))),
});
export type TraceFile = z.infer<typeof TraceFileSchema>;

/** A trace file that cannot be read: the message says why (and which event). */
export class TraceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceError';
  }
}

/** Checks each event alone: the error names the first bad one by its index and type. */
const eventSchema = InspectionEventSchema.and(reply({ n: num(true).optional() }));

/** What the file's header holds, where it holds something readable (older files lack some fields). */
const headerSchema = reply({
  exportedAt: str().catch(''),
  source: oneOf(['live', 'simulation', 'import']).catch('import'),
  eventsDropped: num(true).catch(0),
  config: ClusterConfigSchema.nullable().catch(null),
  workload: WorkloadConfigSchema.nullable().catch(null),
  simulation: map(z.string()).nullable().catch(null),
});

/**
 * Reads a trace file (or a bare array of events). The header's fields are optional (a file without
 * them replays all the same); every event must be one the runtime emits, with all its fields.
 */
export function parseTrace(text: string): TraceFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TraceError(`not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const obj: Record<string, unknown> = Array.isArray(raw)
    ? { format: TRACE_FORMAT, formatVersion: TRACE_FORMAT_VERSION, events: raw }
    : typeof raw === 'object' && raw !== null
      ? { ...raw }
      : {};
  if (obj.format !== TRACE_FORMAT) throw new TraceError(`not a DSE trace (format is not "${TRACE_FORMAT}")`);
  if (obj.formatVersion !== TRACE_FORMAT_VERSION) throw new TraceError(`unsupported trace format version ${String(obj.formatVersion)}`);
  if (!Array.isArray(obj.events)) throw new TraceError('the trace has no events array');
  const events: NumberedEvent[] = [];
  obj.events.forEach((e: unknown, i) => {
    const r = eventSchema.safeParse(e);
    if (!r.success) {
      const type = typeof e === 'object' && e !== null ? (e as { type?: unknown }).type : undefined;
      throw new TraceError(problemOf(r.error, typeof type === 'string' ? `event ${i} (${type.slice(0, 40)})` : `event ${i}`));
    }
    events.push({ ...r.data, n: r.data.n ?? i + 1 });
  });
  const header = headerSchema.parse(obj);
  return { format: TRACE_FORMAT, formatVersion: TRACE_FORMAT_VERSION, ...header, events };
}
