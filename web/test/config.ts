import type { ClusterConfig } from '@dse/shared';

/** The server's default cluster settings (backend/src/live/cluster.ts), as the page would get them; web tests import nothing from the backend. */
export const DEFAULT_CLUSTER_CONFIG_FOR_TESTS: ClusterConfig = {
  mode: 'speculative',
  cut: 'exact',
  recovery: 'precise',
  checkpointIntervalMs: 100,
  networkDelayMs: 0,
  networkJitterMs: 0,
  messageLoss: 0,
  autoRestart: false,
  autoRestartDelayMs: 500,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 2000,
  observation: 'full',
  held: false,
};
