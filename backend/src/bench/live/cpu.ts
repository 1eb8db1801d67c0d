import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RunningServer } from '../../server/server';

/**
 * CPU time of the server process (this one: relay, coordinator, sessions, storage client) and of the
 * node processes, for a phase: to see where a mode spends its time. Node processes are read from
 * /proc (Linux); elsewhere their figure is null.
 */
export interface CpuSnapshot {
  wallMs: number;
  serverMs: number;
  nodesMs: number | null;
  pids: number[];
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

function procCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state(0) … utime(11) stime(12)
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

export function cpuSnapshot(server: RunningServer): CpuSnapshot {
  const u = process.cpuUsage();
  const pids = server.cluster
    .info(0)
    .nodes.map((n) => n.pid)
    .filter((p): p is number => p !== null);
  let nodesMs: number | null = 0;
  for (const pid of pids) {
    const ms = procCpuMs(pid);
    if (ms === null) {
      nodesMs = null;
      break;
    }
    nodesMs += ms;
  }
  return { wallMs: performance.now(), serverMs: (u.user + u.system) / 1000, nodesMs, pids };
}

/** CPU use between two snapshots, in % of one core (null when the node processes changed or cannot be read). */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): { serverCpuPct: number; nodesCpuPct: number | null; wallMs: number } {
  const wall = Math.max(1, b.wallMs - a.wallMs);
  const samePids = a.pids.length === b.pids.length && a.pids.every((p, i) => p === b.pids[i]);
  return {
    serverCpuPct: Math.round(((b.serverMs - a.serverMs) / wall) * 1000) / 10,
    nodesCpuPct: a.nodesMs === null || b.nodesMs === null || !samePids ? null : Math.round(((b.nodesMs - a.nodesMs) / wall) * 1000) / 10,
    wallMs: Math.round(wall),
  };
}

/**
 * Event-loop delay of the server process (which relays every message): a stall here delays every
 * message in flight, whatever the CPU average says.
 */
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function loopDelayReset(): void {
  loop.reset();
}

export function loopDelayRead(): LoopDelay {
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  return { p50Ms: ms(loop.percentile(50)), p99Ms: ms(loop.percentile(99)), maxMs: ms(loop.max) };
}
