import type { InspectionEvent, Mode, NodeId } from '@dse/shared';
import type { Runtime } from '../embedded/runtime';
import { createRuntime } from '../embedded/runtime';
import type { RunningServer } from '../server/server';
import { servicesApp } from '../services';
import type { OpenedStorage } from '../storage/open';
import type { CpuSnapshot } from './live/cpu';
import { cpuSnapshot } from './live/cpu';
import type { BenchTarget, KillSample, Tick } from './live/phases';
import { liveTarget, runRecovery, setMode, waitFor } from './live/phases';

/** Where the benchmark runs the DSE runtime: node processes with a server, or everything in this process. */
export type DeploymentKind = 'processes' | 'embedded';
export const DEPLOYMENT_KINDS: readonly DeploymentKind[] = ['processes', 'embedded'];

export interface Deployment {
  readonly kind: DeploymentKind;
  readonly target: BenchTarget;
  /** How messages travel, for the report. */
  readonly network: string;
  setMode(mode: Mode): Promise<void>;
  cpu(): CpuSnapshot;
  /** Kill → first commit on the new world-line, `kills` times, in speculative mode. */
  recovery(kills: number, tick: Tick): Promise<KillSample[]>;
  close(): Promise<void>;
}

export function processesDeployment(server: RunningServer, network: string): Deployment {
  return {
    kind: 'processes',
    target: liveTarget(server),
    network,
    setMode: (mode) => setMode(server, mode),
    cpu: () => cpuSnapshot(server),
    recovery: (kills, tick) => runRecovery(server, kills, tick),
    close: () => server.close(),
  };
}

/**
 * The embedded runtime (`createRuntime`): one per mode (a mode switch starts it again on the same
 * storage, as the live cluster restarts its nodes). Its nodes run the services app.
 */
export async function embeddedDeployment(storage: OpenedStorage, nodes: number, checkpointIntervalMs: number, firstMode: Mode): Promise<Deployment> {
  let mode = firstMode;
  let events: ((e: InspectionEvent) => void) | null = null;
  const start = (m: Mode): Promise<Runtime> =>
    createRuntime({ app: servicesApp, nodes, storage: storage.storage, mode: m, checkpointIntervalMs, onEvent: (e) => events?.(e) });
  let rt = await start(mode);
  const target: BenchTarget = {
    get host() {
      return rt.host;
    },
    nodeIds: (): NodeId[] => [...rt.nodes],
  };
  const switchMode = async (m: Mode): Promise<void> => {
    if (m === mode) return;
    await rt.close();
    mode = m;
    rt = await start(m);
  };
  return {
    kind: 'embedded',
    target,
    network: 'in memory, in one process',
    setMode: switchMode,
    cpu() {
      const u = process.cpuUsage();
      return { wallMs: performance.now(), serverMs: (u.user + u.system) / 1000, nodesMs: 0, pids: [] };
    },
    async recovery(kills, tick) {
      await switchMode('speculative');
      const out: KillSample[] = [];
      const seen: InspectionEvent[] = [];
      events = (e) => {
        if (e.type === 'nodeFailed' || e.type === 'worldLineChanged' || e.type === 'cutAdvanced' || e.type === 'rollback') seen.push(e);
      };
      // A light load, so that there is speculative work to lose: 8 sessions, like a client, sending only to
      // nodes it knows are up (a session waiting on the dead node would wait for its restart, which comes
      // only after the first commit); a request stuck for long is given up and the session replaced.
      let stop = false;
      const { KvClient } = await import('../services');
      const load = Promise.all(
        Array.from({ length: 8 }, async () => {
          let kv = new KvClient(rt.host.session(), { nodes: rt.nodes });
          for (let i = 0; !stop; i++) {
            let key = `k${Math.floor(Math.random() * 1000)}`;
            for (let t = 0; t < 50 && rt.coordinator.members.get(kv.nodeOf(key)) !== 'up'; t++) key = `k${Math.floor(Math.random() * 1000)}`;
            try {
              await Promise.race([
                i % 2 === 0 ? kv.put(key, i) : kv.get(key),
                new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000)),
              ]);
            } catch {
              kv = new KvClient(rt.host.session(), { nodes: rt.nodes });
            }
            await new Promise((r) => setTimeout(r, 10));
          }
        }),
      );
      try {
        for (let k = 0; k < kills; k++) {
          const victim = rt.nodes[k % rt.nodes.length]!;
          const before = { ...rt.coordinator.cut };
          await waitFor('the cut to advance on every node', () => Object.keys(before).every((n) => (rt.coordinator.cut[n] ?? 0) > before[n]!), 60_000, 2);
          const w = rt.coordinator.worldLine;
          seen.length = 0;
          const t0 = rt.host.now;
          rt.crash(victim);
          const find = (pred: (e: InspectionEvent) => boolean): InspectionEvent | undefined => seen.find(pred);
          const failed = await waitFor('the failure', () => find((e) => e.type === 'nodeFailed' && e.node === victim), 60_000, 1);
          const wl = await waitFor('the new world-line', () => find((e) => e.type === 'worldLineChanged' && e.worldLine === w + 1), 60_000, 1);
          const cut = await waitFor(
            'the first commit on the new world-line',
            () => find((e) => e.type === 'cutAdvanced' && e.worldLine === w + 1),
            30_000,
            1,
          ).catch(() => null);
          let rolledBack = 0;
          for (const e of seen) if (e.type === 'rollback' && e.worldLine === w + 1 && e.discarded !== null) rolledBack += e.discarded.to - e.discarded.from + 1;
          out.push({
            victim,
            detectMs: failed.t - t0,
            worldLineMs: wl.t - t0,
            killToFirstCommitMs: cut === null ? 30_000 : cut.t - t0,
            rolledBackVersions: rolledBack,
            stalled: cut === null,
          });
          rt.restart(victim);
          await waitFor('the node back', () => rt.coordinator.members.get(victim) === 'up', 30_000, 2);
          tick(1, `recovery: kill ${k + 1}/${kills}`);
        }
      } finally {
        stop = true;
        events = null;
        await load;
      }
      return out;
    },
    close: () => rt.close(),
  };
}
