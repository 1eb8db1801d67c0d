import type { ClusterConfig, Command, CommandReply, ErrorBody, Limits, WorkloadConfig } from '@dse/shared';
import { errorBody, isDseError } from '@dse/shared';
import type { Cluster } from '../live/cluster';
import type { Requests } from '../live/requests';
import type { Workload } from '../live/workload';
import type { SimulationRunner } from './simulation';
import type { EventStream } from './stream';
import * as v from './validate';
import type { LogFn } from '../log';

/** The settings a command is validated against (a patch is checked as applied to them). */
export interface CurrentSettings {
  config: ClusterConfig;
  workload: WorkloadConfig;
}

export interface CommandDeps {
  cluster: Cluster;
  workload: Workload;
  requests: Requests;
  stream: EventStream;
  simulation: SimulationRunner;
  limits: Limits;
  log: LogFn;
}

export interface Commands {
  current(): CurrentSettings;
  /** Runs a command exactly as HTTP and Socket.IO do; errors come back as replies, never thrown. */
  exec: (cmd: Command) => Promise<CommandReply>;
}

/** What every command does, whichever way it came (HTTP, Socket.IO, or a caller in this process). */
export function createCommands(d: CommandDeps): Commands {
  const { cluster, workload, requests, stream, simulation, limits, log } = d;
  const current = (): CurrentSettings => ({ config: cluster.config, workload: workload.config });
  const exec = async (unchecked: Command): Promise<CommandReply> => {
    try {
      // Validated here too, so that in-process callers get exactly what HTTP and Socket.IO get.
      const cmd = v.command(unchecked, limits, current());
      switch (cmd.type) {
        case 'health':
          return { ok: true };
        case 'cluster':
          return { ok: true, ...cluster.info(stream.lastEvent) };
        case 'getConfig':
          return { ok: true, config: { ...cluster.config }, workload: { ...workload.config }, limits };
        case 'kill':
          cluster.kill(cmd.node);
          return { ok: true, node: cmd.node };
        case 'restart':
          cluster.restart(cmd.node);
          return { ok: true, node: cmd.node };
        case 'addNode': {
          const r = await cluster.addNode(cmd.id);
          workload.rotate();
          return { ok: true, node: r.node, version: r.version, members: r.members, how: 'joined' };
        }
        case 'removeNode': {
          const r = await cluster.removeNode(cmd.node);
          workload.rotate();
          return { ok: true, node: r.node, version: r.version, members: r.members, how: r.how === 'joined' ? 'drained' : r.how };
        }
        case 'config':
          return { ok: true, config: await cluster.configure(cmd.config) };
        case 'workload':
          workload.set({ kind: cmd.workload.kind ?? workload.config.kind, rate: cmd.workload.rate ?? workload.config.rate });
          stream.push({ type: 'workloadChanged', t: cluster.clock.now(), workload: { ...workload.config } });
          return { ok: true, workload: { ...workload.config } };
        case 'request': {
          const { type: _t, ...body } = cmd;
          return { ok: true, ...(await requests.submit(body)) };
        }
        case 'service': {
          const { type: _t, ...body } = cmd;
          return { ok: true, ...(await requests.submitService(body)) };
        }
        case 'getRequest':
          return { ok: true, ...requests.get(cmd.id) };
        case 'resumeSession':
          return { ok: true, session: cmd.session, resumed: requests.resume(cmd.session) };
        case 'simulate': {
          const { type: _t, ...body } = cmd;
          return { ok: true, ...(await simulation.run(body)) };
        }
      }
    } catch (e) {
      if (!isDseError(e)) log(`internal error on ${unchecked.type}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { level: 'error' });
      const reply: { error: ErrorBody; id?: string } = { error: errorBody(e) };
      const rid = (e as { requestId?: unknown }).requestId;
      if (typeof rid === 'string') reply.id = rid;
      return reply;
    }
  };
  return { current, exec };
}
