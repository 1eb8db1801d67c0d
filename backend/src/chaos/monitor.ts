import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterInfo, Cut, InspectionEvent, NodeId, NumberedEvent, RecoveryKind, WorldLine } from '@dse/shared';
import { wallNow } from '../live/clock';
import { HttpClient, IoClient } from './api';
import type { RunContext } from './run-context';
import { sleep } from './run-context';
import type { Application } from './verify';
import { CutWatch } from './verify';

// The monitor: cluster polls and the event stream.

/** The cut standing still this long with every node up is reported (a log line and an event file; not a violation). */
const STALL_MS = 10_000;
/** Events kept for a stall report: about versions, checkpoints, recoveries and the cut. */
const STALL_EVENTS_MAX = 20_000;
const STALL_EVENT_TYPES: ReadonlySet<InspectionEvent['type']> = new Set([
  'versionOpened',
  'checkpointStarted',
  'checkpointPersisted',
  'checkpointFailed',
  'rollback',
  'worldLineChanged',
  'recoveryPlan',
  'cutAdvanced',
  'nodeFailed',
  'nodeRestarted',
]);

export class Monitor {
  cluster: ClusterInfo | null = null;
  readonly cuts = new CutWatch();
  readonly applications = new Map<string, Application[]>();
  /** Each world-line's restore points as its `worldLineChanged` announced them (`kept`, over the cut). */
  readonly restorePoints = new Map<WorldLine, Cut>();
  /** Versions kept by the recoveries seen (`recoveryPlan.kept`), once per world-line. */
  private readonly keptPerWorldLine = new Map<WorldLine, number>();
  readonly recoveryKinds = new Set<RecoveryKind>();
  private readonly nodeWorldLine = new Map<NodeId, WorldLine>();
  private io: IoClient | null = null;
  private lastEvent = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly http: HttpClient;
  private polling = false;
  highestWorldLine = 0;
  /** Times the cut stood still for `STALL_MS` with every node up. */
  cutStalls = 0;
  private cutKey = '';
  private cutMovedAt = 0;
  private stallReported = '';
  private readonly recent: InspectionEvent[] = [];

  constructor(private readonly ctx: RunContext) {
    this.http = new HttpClient(ctx.server.url, { localAddress: '127.0.0.1', timeoutMs: 10_000 });
  }

  async attach(): Promise<void> {
    this.detach();
    this.lastEvent = 0;
    this.cluster = null;
    this.nodeWorldLine.clear();
    try {
      this.io = await IoClient.connect(this.ctx.server.url, { onEvents: (evs) => this.onEvents(evs) });
    } catch (e) {
      this.ctx.o.log(`monitor: the event stream did not connect (${e instanceof Error ? e.message : String(e)}); exactly-once is checked on fewer events`);
    }
    this.timer = setInterval(() => void this.poll(), 400);
    await this.poll();
  }

  detach(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.io?.close();
    this.io = null;
  }

  async poll(): Promise<ClusterInfo | null> {
    if (this.polling) return this.cluster;
    this.polling = true;
    try {
      const a = await this.http.request('GET', '/api/cluster');
      if ('status' in a && a.status === 200) {
        const c = a.json as ClusterInfo;
        this.cluster = c;
        this.cuts.observe(c.worldLine, c.cut, `GET /api/cluster (server start ${this.ctx.incarnation})`);
        if (c.worldLine > this.highestWorldLine) this.highestWorldLine = c.worldLine;
        this.watchStall(c);
      }
    } finally {
      this.polling = false;
    }
    return this.cluster;
  }

  private onEvents(events: readonly NumberedEvent[]): void {
    for (const e of events) {
      if (e.n <= this.lastEvent) continue; // a resync snapshot repeats events already seen
      this.lastEvent = e.n;
      this.onEvent(e);
    }
  }

  /** Reports the cut standing still with every node up (time counts only while all are up). */
  private watchStall(c: ClusterInfo): void {
    const now = wallNow();
    const key = `${this.ctx.incarnation}/${c.worldLine} ${JSON.stringify(c.cut)}`;
    const allUp = c.nodes.length > 0 && c.nodes.every((n) => n.status === 'up');
    if (key !== this.cutKey || !allUp) {
      this.cutKey = key;
      this.cutMovedAt = now;
      return;
    }
    if (now - this.cutMovedAt < STALL_MS || this.stallReported === key) return;
    this.stallReported = key;
    this.cutStalls++;
    const file = join(tmpdir(), `dse-chaos-stall-${this.ctx.o.seed}-${process.pid}-${this.cutStalls}.jsonl`);
    try {
      writeFileSync(file, [JSON.stringify(c), ...this.recent.map((e) => JSON.stringify(e))].join('\n') + '\n');
    } catch {
      // a diagnostic only
    }
    const nodes = c.nodes.map((n) => `${n.id}: version ${n.version}, persisted ${n.persistedVersion}, committed ${n.committedVersion}`).join('; ');
    this.ctx.o.log(
      `  the cut has not moved for ${((now - this.cutMovedAt) / 1000).toFixed(0)} s with every node up (world-line ${c.worldLine}, cut ${JSON.stringify(c.cut)}; ${nodes}); the cluster and the last ${this.recent.length} version, checkpoint, recovery and cut events: ${file}`,
    );
  }

  private onEvent(e: InspectionEvent): void {
    if (STALL_EVENT_TYPES.has(e.type)) {
      this.recent.push(e);
      if (this.recent.length > 2 * STALL_EVENTS_MAX) this.recent.splice(0, this.recent.length - STALL_EVENTS_MAX);
    }
    switch (e.type) {
      case 'versionOpened':
      case 'rollback':
        this.nodeWorldLine.set(e.node, e.worldLine);
        return;
      case 'worldLineChanged':
        // Absent `kept` (a server from before precise recovery): every node restored the cut.
        if (!this.restorePoints.has(e.worldLine)) this.restorePoints.set(e.worldLine, { ...e.cut, ...((e as { kept?: Cut }).kept ?? {}) });
        if (e.recovery !== undefined) this.recoveryKinds.add(e.recovery);
        if (e.worldLine > this.highestWorldLine) this.highestWorldLine = e.worldLine;
        return;
      case 'recoveryPlan':
        this.keptPerWorldLine.set(e.worldLine, e.kept.length);
        return;
      case 'stateChanged': {
        const wl = this.nodeWorldLine.get(e.node);
        if (wl === undefined) return;
        for (const k of Object.keys(e.set)) {
          if (!k.startsWith(this.ctx.keyPrefix)) continue;
          let l = this.applications.get(k);
          if (l === undefined) this.applications.set(k, (l = []));
          l.push(
            this.ctx.o.membership === true
              ? { node: e.node, worldLine: wl, version: e.version, inc: this.ctx.incarnation, t: e.t }
              : { node: e.node, worldLine: wl, version: e.version },
          );
        }
        // With membership changes a key moves: its deletion by a hand-off is part of its history.
        if (this.ctx.o.membership === true) {
          for (const k of e.deleted) {
            if (!k.startsWith(this.ctx.keyPrefix)) continue;
            let l = this.applications.get(k);
            if (l === undefined) this.applications.set(k, (l = []));
            l.push({ node: e.node, worldLine: wl, version: e.version, inc: this.ctx.incarnation, t: e.t, del: true });
          }
        }
        return;
      }
      default:
        return;
    }
  }

  get keptVersions(): number {
    let n = 0;
    for (const k of this.keptPerWorldLine.values()) n += k;
    return n;
  }

  close(): void {
    this.detach();
    this.http.close();
  }
}

/** Polls until every node is up; false after `timeoutMs`. */
export async function waitAllUp(monitor: Monitor, timeoutMs: number): Promise<boolean> {
  const end = wallNow() + timeoutMs;
  while (wallNow() < end) {
    const c = await monitor.poll();
    if (c !== null && c.nodes.length > 0 && c.nodes.every((n) => n.status === 'up')) return true;
    await sleep(250);
  }
  return false;
}
