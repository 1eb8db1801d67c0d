import type { ClusterConfig, WorkloadConfig } from '@dse/shared';

/**
 * Classroom pace slows the cluster itself, not only the drawing: a checkpoint every 1.5 s (versions
 * stay speculative long enough to point at), a network delay a person can see (arrows take a
 * quarter of a second), a gentle workload, and replays played slowly. The normal pace is the
 * server's default (fast enough to measure, too fast to follow).
 */
export const CLASS_PACE: Pick<ClusterConfig, 'checkpointIntervalMs' | 'networkDelayMs' | 'networkJitterMs'> = {
  checkpointIntervalMs: 1500,
  networkDelayMs: 250,
  networkJitterMs: 100,
};
export const NORMAL_PACE: Pick<ClusterConfig, 'checkpointIntervalMs' | 'networkDelayMs' | 'networkJitterMs'> = {
  checkpointIntervalMs: 100,
  networkDelayMs: 0,
  networkJitterMs: 0,
};
/** Requests a second at classroom pace (the normal pace's default is 4). */
export const CLASS_RATE = 2;
export const NORMAL_RATE = 4;
/** Replay speed (event time per real time). */
export const CLASS_REPLAY_SPEED = 0.01;
export const NORMAL_REPLAY_SPEED = 0.05;

/** The cluster runs at classroom pace when its checkpoints are a second or more apart. */
export function isClassPace(c: ClusterConfig | null): boolean {
  return c !== null && c.checkpointIntervalMs >= 1000;
}

/** The workload at a pace: the same kind, the pace's rate (a stopped workload stays stopped). */
export function workloadAtPace(w: WorkloadConfig | null, classPace: boolean): WorkloadConfig {
  const kind = w?.kind ?? 'mixed';
  if (w !== null && w.rate === 0) return w;
  return { kind, rate: classPace ? CLASS_RATE : NORMAL_RATE };
}

export function paceFromUrl(): 'class' | 'normal' | null {
  const p = new URLSearchParams(location.search).get('pace');
  return p === 'class' || p === 'normal' ? p : null;
}
