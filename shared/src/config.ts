import { CUT_KINDS, MODES, OBSERVATION_LEVELS, RECOVERY_KINDS } from './protocol';
import type { Range, z } from './schema';
import { bool, bounded, num, obj, oneOf, reply } from './schema';

/** The live cluster's settings, its workload, and the bounds the server holds them to (see `api.ts`). */

/** The numeric settings and the bounds the server enforces on each. */
export type ConfigRanges = Pick<
  Limits,
  'checkpointIntervalMs' | 'networkDelayMs' | 'networkJitterMs' | 'messageLoss' | 'autoRestartDelayMs' | 'heartbeatIntervalMs' | 'heartbeatTimeoutMs'
>;

const ANY_INT: Range = { min: 0, max: Number.MAX_SAFE_INTEGER };
const UNBOUNDED: ConfigRanges = {
  checkpointIntervalMs: ANY_INT,
  networkDelayMs: ANY_INT,
  networkJitterMs: ANY_INT,
  messageLoss: { min: 0, max: 1 },
  autoRestartDelayMs: ANY_INT,
  heartbeatIntervalMs: ANY_INT,
  heartbeatTimeoutMs: ANY_INT,
};

/** The cluster's settings, each bounded by `r` (the server's limits, or only by its type). */
export function configShape(r: ConfigRanges) {
  return {
    mode: oneOf(MODES),
    cut: oneOf(CUT_KINDS),
    /** `precise`: only what depends on lost state rolls back after a failure; `cut`: every node back to the committed cut. Takes effect at the next recovery. */
    recovery: oneOf(RECOVERY_KINDS),
    /** How often a node closes its open version (checkpoint). */
    checkpointIntervalMs: bounded(r.checkpointIntervalMs, true),
    /** Added to every message between nodes and sessions (by its sender). */
    networkDelayMs: bounded(r.networkDelayMs, true),
    /** Uniform extra delay in [0, jitter]: messages overtake each other. */
    networkJitterMs: bounded(r.networkJitterMs, true),
    /** Probability in [0, 1) that a message between nodes and sessions is lost (control messages never are). */
    messageLoss: bounded(r.messageLoss),
    /** Restart a node whose process died (killed, crashed, or failed its heartbeats). */
    autoRestart: bool(),
    autoRestartDelayMs: bounded(r.autoRestartDelayMs, true),
    /** Nodes send a heartbeat this often; one silent for `heartbeatTimeoutMs` is failed and killed. */
    heartbeatIntervalMs: bounded(r.heartbeatIntervalMs, true),
    heartbeatTimeoutMs: bounded(r.heartbeatTimeoutMs, true),
    /** What nodes report to the observer (and so what the page can draw): `full`, `summary` or `off`. */
    observation: oneOf(OBSERVATION_LEVELS),
    /**
     * The cluster holds (a tour's question is asked about a state that stands still): the workload sends
     * nothing, nodes close no version and resend nothing. Messages already in flight still arrive.
     */
    held: bool(),
  };
}

export const ClusterConfigSchema = obj(configShape(UNBOUNDED));
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

/**
 * Any subset of the settings. `checkpointIntervalMs`, the network settings, `autoRestart` and the
 * heartbeats take effect at once; changing `mode` or `cut` restarts every node process in the new
 * setting (a new world-line starts from the committed cut).
 *
 * Mode `none` persists nothing: the cut it announces covers versions never written, and what it
 * reports `committed` is lost with the process. Switching from `none` back to `speculative` or
 * `durable` therefore starts from the last cut that was persisted before `none`, below what `none`
 * announced: everything done in `none` mode is rolled back.
 */
export type ConfigPatch = Partial<ClusterConfig>;

export const WORKLOAD_KINDS = ['kv', 'chain', 'mixed', 'wal', 'kvstore', 'broker', 'workflow'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/**
 * The built-in load generator: `rate` requests a second (0 stops it) over a few sessions.
 * - `kv`: puts and gets of random keys of the small kv app, each on the key's node;
 * - `chain`: puts that the node replicates to one or two other nodes (node-to-node messages, so
 *   versions of several nodes depend on each other and a failure rolls back across nodes);
 * - `mixed`: both;
 * - `wal`: appends (`{i, at}`) to a few logs of the write-ahead-log service (`audit`, `orders`),
 *   now and then a committed-only read;
 * - `kvstore`: put / get / delete / compare-and-set over 16 keys of the kv store service;
 * - `broker`: producers publishing to 2 topics with (producerId, seq), now and then a duplicate
 *   publish (dropped by the broker's dedup); consumers of 2 groups polling (one speculative, one
 *   committed-only);
 * - `workflow`: travel reservations of 1–10 steps; a small share has a declined payment or a
 *   sold-out item, so compensations show.
 */
export const WorkloadConfigSchema = obj({ kind: oneOf(WORKLOAD_KINDS), rate: bounded({ min: 0, max: Number.MAX_SAFE_INTEGER }) });
export type WorkloadConfig = z.infer<typeof WorkloadConfigSchema>;

const rangeSchema = reply({ min: num(), max: num() });

/** Bounds the server enforces; the browser can use them for its controls. */
export const LimitsSchema = reply({
  nodesMax: num(true),
  bodyBytesMax: num(true),
  keyLengthMax: num(true),
  /** Size of a value once JSON-encoded. */
  valueBytesMax: num(true),
  workloadRateMax: num(),
  checkpointIntervalMs: rangeSchema,
  networkDelayMs: rangeSchema,
  networkJitterMs: rangeSchema,
  messageLoss: rangeSchema,
  heartbeatIntervalMs: rangeSchema,
  heartbeatTimeoutMs: rangeSchema,
  autoRestartDelayMs: rangeSchema,
  /** Commands a second per client (HTTP address or Socket.IO connection) before `LimitExceeded`. */
  commandsPerSecond: num(),
  /** Inspection events the server keeps for late joiners. */
  historyEventsMax: num(true),
});
export type Limits = z.infer<typeof LimitsSchema>;
