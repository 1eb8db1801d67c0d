import type { InspectionEvent } from '@dse/shared';
import type { LogFn } from '../log';

/**
 * The cluster's events an operator wants in the server's log, one line each: node processes spawned,
 * joined and exited, failures, world-lines, membership. Events of the nodes' own (versions, messages,
 * checkpoints, rollbacks) are logged by the node processes themselves, at the source, and the rest is
 * the event stream's (the playground, `GET /api/cluster`).
 */
export function logEvent(log: LogFn, e: InspectionEvent): void {
  switch (e.type) {
    case 'nodeProcess':
      log(`node process ${e.state}`, {
        level: e.state === 'exited' && e.code !== 0 && e.code !== null ? 'warn' : 'info',
        node: e.node,
        nodePid: e.pid,
        ...(e.state === 'exited' ? { code: e.code, signal: e.signal } : {}),
      });
      return;
    case 'nodeFailed':
      log('node failed', { level: 'warn', node: e.node, reason: e.reason });
      return;
    case 'nodeRestarted':
      log('node restarted', { level: 'info', node: e.node });
      return;
    case 'worldLineChanged':
      log('new world-line', { level: 'info', worldLine: e.worldLine, failed: e.failed, reason: e.reason, recovery: e.recovery, cut: e.cut });
      return;
    case 'nodeAdded':
    case 'nodeRemoved':
      log(e.type === 'nodeAdded' ? 'node added' : 'node removed', { level: 'info', node: e.node });
      return;
    case 'placementChanged':
      if (e.phase === 'committed') log('membership changed', { level: 'info', membershipVersion: e.version, members: e.members, change: e.change });
      return;
    case 'modeChanged':
      log('mode changed', { level: 'info', mode: e.mode });
      return;
    default:
      return;
  }
}
