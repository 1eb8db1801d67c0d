import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NodeId } from '@dse/shared';
import { DseError } from '@dse/shared';
import type { ClusterContext, NodeEntry } from './cluster-context';
import { newEntry } from './cluster-context';
import { wallNow } from './clock';
import type { LogLevel } from '../log';
import { jsonLogLine, LOG_LEVELS } from '../log';
import { entryPoint } from '../storage/entry-points';

/** The node program: compiled JavaScript when the server runs from the build, else the source under tsx. */
const NODE_MAIN = entryPoint('live/node-main');
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The node processes' lives: spawned here (or joined from elsewhere, see `NodeGateway`), killed,
 * restarted, added and removed on command, restarted after a delay when `autoRestart` is on.
 *
 * Failure detection: a spawned process's exit is reported to the coordinator at once; a node the
 * server has not heard from for `heartbeatTimeoutMs` (hung, SIGSTOP, network cut) is failed and its
 * process killed, so that a failed node never comes back with its old memory.
 */
export class ProcessSupervisor {
  private monitor: NodeJS.Timeout | null = null;
  private lastMonitorAt = 0;

  constructor(
    private readonly cx: ClusterContext,
    /** A member's address changed or it is gone: every node needs the new peer table. */
    private readonly peersChanged: () => void,
  ) {}

  /** Spawns the first node processes and starts watching heartbeats. */
  start(ids: readonly NodeId[]): void {
    for (const id of ids) {
      this.cx.nodes.set(id, newEntry(id, 'local'));
      this.spawnNode(id);
    }
    this.lastMonitorAt = wallNow();
    this.monitor = setInterval(() => this.checkHeartbeats(), Math.max(20, Math.floor(this.cx.config().heartbeatTimeoutMs / 4)));
  }

  /** The heartbeat timeout changed: the monitor checks at the new pace. */
  heartbeatTimeoutChanged(): void {
    if (this.monitor === null) return;
    clearInterval(this.monitor);
    this.monitor = setInterval(() => this.checkHeartbeats(), Math.max(20, Math.floor(this.cx.config().heartbeatTimeoutMs / 4)));
  }

  /** Stops watching and stops every process (SIGTERM, then SIGKILL), resolved when all have exited. */
  async stop(): Promise<void> {
    if (this.monitor !== null) clearInterval(this.monitor);
    const exits: Promise<void>[] = [];
    for (const e of this.cx.nodes.values()) {
      if (e.restartTimer !== null) clearTimeout(e.restartTimer);
      e.conn?.disconnect(true);
      const p = e.proc;
      if (p !== null && p.exitCode === null && p.signalCode === null) {
        exits.push(
          new Promise<void>((resolve) => {
            // SIGTERM first (a node exits at once, and a profiler started by DSE_NODE_FLAGS gets to write), SIGKILL after 1 s.
            const t = setTimeout(() => {
              p.kill('SIGKILL');
            }, 1000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
        );
      }
    }
    await Promise.all(exits);
  }

  // ------------------------------------------------------------------ commands

  private entryOrThrow(id: unknown): NodeEntry {
    const e = typeof id === 'string' ? this.cx.nodes.get(id) : undefined;
    if (e === undefined || e.removed) throw new DseError('NotFound', `no node ${String(id)}`);
    return e;
  }

  kill(id: NodeId): void {
    const e = this.entryOrThrow(id);
    if (e.proc === null && e.conn === null) throw new DseError('Conflict', `node ${id} is down already`);
    this.terminate(e);
  }

  restart(id: NodeId): void {
    const e = this.entryOrThrow(id);
    if (e.origin === 'remote') throw new DseError('Conflict', `node ${id} joined from another host: restart it there`);
    if (e.proc !== null) {
      // A crash and a restart: the new process starts with empty memory and recovers from storage.
      e.respawn = true;
      this.terminate(e);
      return;
    }
    if (e.restartTimer !== null) {
      clearTimeout(e.restartTimer);
      e.restartTimer = null;
    }
    this.spawnNode(id);
  }

  addNode(id?: NodeId): NodeId {
    const nodes = this.cx.nodes;
    const nodesMax = this.cx.opts.limits.nodesMax;
    const live = [...nodes.values()].filter((e) => !e.removed).length;
    if (live >= nodesMax) throw new DseError('LimitExceeded', `the cluster has ${live} nodes, the most allowed (${nodesMax})`);
    let nid = id;
    if (nid === undefined) {
      for (let k = 1; ; k++) {
        if (!nodes.has(`n${k}`)) {
          nid = `n${k}`;
          break;
        }
      }
    } else if (nodes.has(nid)) {
      throw new DseError('Conflict', `node ${nid} exists already${nodes.get(nid)!.removed ? ' (being removed)' : ''}`);
    }
    nodes.set(nid, newEntry(nid, 'local'));
    this.cx.coordinator().addNode(nid);
    this.cx.opts.emit({ type: 'nodeAdded', t: this.cx.clock.now(), node: nid });
    this.spawnNode(nid);
    return nid;
  }

  removeNode(id: NodeId, left = false): void {
    const e = this.entryOrThrow(id);
    e.left = left;
    const live = [...this.cx.nodes.values()].filter((x) => !x.removed).length;
    if (live <= 1) throw new DseError('Conflict', 'the last node cannot be removed');
    e.removed = true;
    if (e.restartTimer !== null) clearTimeout(e.restartTimer);
    if (e.proc !== null || e.conn !== null) this.terminate(e);
    else this.finishRemove(e);
  }

  private finishRemove(e: NodeEntry): void {
    if (this.cx.nodes.get(e.id) !== e) return;
    this.cx.nodes.delete(e.id);
    this.cx.coordinator().removeNode(e.id);
    this.peersChanged();
    this.cx.opts.emit({ type: 'nodeRemoved', t: this.cx.clock.now(), node: e.id, ...(e.left ? { left: true } : {}) });
  }

  // ------------------------------------------------------------------ processes

  private spawnNode(id: NodeId): void {
    const { opts } = this.cx;
    const entry = this.cx.nodes.get(id);
    if (entry === undefined || entry.removed || this.cx.shuttingDown() || entry.proc !== null) return;
    entry.origin = 'local';
    entry.starts++;
    entry.incarnation = `${id}.${entry.starts}.${Math.floor(wallNow())}`;
    entry.killing = false;
    entry.respawn = false;
    entry.restoredWorldLine = 0;
    entry.version = 0;
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (opts.token !== null) env.DSE_TOKEN = opts.token;
    else delete env.DSE_TOKEN;
    // On PostgreSQL, the nodes this server spawns write their checkpoints themselves (see NodeRunConfig.storage).
    if (opts.storage.url !== undefined && opts.storage.schema !== undefined) env.DATABASE_URL = opts.storage.url;
    // DSE_NODE_FLAGS: extra Node flags for the node processes (e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile them).
    const flags = (process.env.DSE_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const child = spawn(
      process.execPath,
      [...flags, ...NODE_MAIN.nodeArgs, NODE_MAIN.file, '--server', opts.serverUrl(), '--id', id, '--incarnation', entry.incarnation],
      {
        cwd: REPO_ROOT,
        env,
        // stdin: a pipe the node watches, so that it exits when this server is gone (see node-main.ts).
        stdio: ['pipe', 'ignore', 'pipe'],
      },
    );
    child.stdin?.on('error', () => undefined); // the node's end of its lifeline, closed when it exits
    entry.proc = child;
    entry.pid = child.pid ?? null;
    entry.lastHeard = wallNow();
    child.stderr?.setEncoding('utf8');
    let partial = '';
    child.stderr?.on('data', (chunk: string) => {
      if (opts.nodeStderr === false) return;
      // Whole lines only: a JSON log line split across two chunks is still one line.
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.nodeLine(id, line);
    });
    child.on('error', (err) => {
      opts.log('a node process could not start', { level: 'error', node: id, error: err.message });
    });
    child.on('exit', (code, signal) => this.onExit(entry, child, code, signal));
    opts.emit({ type: 'nodeProcess', t: this.cx.clock.now(), node: id, pid: entry.pid, state: 'spawned', code: null, signal: null });
  }

  /** A line a node process wrote on stderr: its JSON log lines as they are, anything else (a crash's trace) as a line of the server's. */
  private nodeLine(id: NodeId, line: string): void {
    const { opts } = this.cx;
    const json = jsonLogLine(line);
    if (json === null) opts.log(line, { level: 'warn', node: id, stream: 'stderr' });
    else if (opts.nodeLogLine !== undefined) opts.nodeLogLine(line);
    else {
      const { msg, level, time: _time, ...fields } = json;
      opts.log(String(msg), { ...fields, level: (LOG_LEVELS as readonly unknown[]).includes(level) ? (level as LogLevel) : 'info' });
    }
  }

  private onExit(entry: NodeEntry, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (entry.proc !== child) return;
    entry.proc = null;
    entry.pid = null;
    const conn = entry.conn;
    entry.conn = null;
    entry.address = null;
    conn?.disconnect(true);
    this.peersChanged();
    this.cx.opts.emit({ type: 'nodeProcess', t: this.cx.clock.now(), node: entry.id, pid: child.pid ?? null, state: 'exited', code, signal });
    this.onNodeGone(entry, entry.killing ? 'killed' : 'exit');
  }

  /** The node's process (or connection) is gone: tell the coordinator, and restart if asked to. */
  onNodeGone(entry: NodeEntry, reason: 'exit' | 'killed'): void {
    entry.killing = false;
    if (this.cx.shuttingDown()) return;
    this.cx.coordinator().nodeFailed(entry.id, reason);
    if (entry.removed) {
      this.finishRemove(entry);
      return;
    }
    if (entry.origin !== 'local') return;
    if (entry.respawn) {
      this.spawnNode(entry.id);
    } else if (this.cx.config().autoRestart) {
      if (entry.restartTimer !== null) clearTimeout(entry.restartTimer);
      entry.restartTimer = setTimeout(() => {
        entry.restartTimer = null;
        if (entry.proc === null && entry.conn === null) this.spawnNode(entry.id);
      }, this.cx.config().autoRestartDelayMs);
    }
  }

  /** Kills the node's process (SIGKILL) or, for a remote node, cuts its connection (its process then exits). */
  terminate(entry: NodeEntry): void {
    if (entry.proc !== null) {
      entry.killing = true;
      entry.proc.kill('SIGKILL');
    } else if (entry.conn !== null) {
      entry.killing = true;
      entry.conn.disconnect(true);
    }
  }

  private checkHeartbeats(): void {
    const config = this.cx.config();
    const now = wallNow();
    const interval = Math.max(20, Math.floor(config.heartbeatTimeoutMs / 4));
    const late = now - this.lastMonitorAt > interval + config.heartbeatTimeoutMs / 2;
    this.lastMonitorAt = now;
    // After a stall of the server itself, frames are still queued unread: judge no one this round.
    if (late) {
      for (const e of this.cx.nodes.values()) e.lastHeard = Math.max(e.lastHeard, now - interval);
      return;
    }
    for (const e of this.cx.nodes.values()) {
      if (now - e.lastHeard <= config.heartbeatTimeoutMs) continue;
      if (this.cx.coordinator().members.get(e.id) === 'up' || (e.conn !== null && e.proc !== null)) {
        e.lastHeard = now; // once
        if (this.cx.coordinator().members.get(e.id) === 'up') this.cx.coordinator().nodeFailed(e.id, 'heartbeat');
        else this.terminate(e);
      }
    }
  }
}
