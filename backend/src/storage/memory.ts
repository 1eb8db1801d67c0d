import type { Json, NodeId, Version, WorldLine } from '@dse/shared';
import { DseError } from '@dse/shared';
import { DELTA_ROW_WEIGHT } from '../core/checkpoint';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Storage } from '../core/ports';

/**
 * Storage in memory: the simulator's and the unit tests'. It keeps the same contract as the SQL
 * storages (fencing by world-line, one atomic batch, delta chains, pruning), so the contract suite
 * runs against it too.
 */
export class MemoryStorage implements Storage {
  /** node → version → world-line → record */
  private rows = new Map<NodeId, Map<Version, Map<WorldLine, CheckpointRecord>>>();
  private coordinator: CoordinatorRecord | null = null;
  private fence: WorldLine = 0;

  writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void> {
    try {
      this.writeSync(records);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal the synchronous core of `writeCheckpoints` (the simulator times it itself). */
  writeSync(records: readonly CheckpointRecord[]): void {
    for (const r of records) {
      if (r.worldLine < this.fence)
        throw new DseError('StaleWorldLine', `checkpoint ${r.node}@${r.version} of world-line ${r.worldLine}: world-line ${this.fence} has started`);
    }
    for (const r of records) {
      let byVersion = this.rows.get(r.node);
      if (byVersion === undefined) this.rows.set(r.node, (byVersion = new Map<number, Map<number, CheckpointRecord>>()));
      let byWorld = byVersion.get(r.version);
      if (byWorld === undefined) byVersion.set(r.version, (byWorld = new Map<number, CheckpointRecord>()));
      if (!byWorld.has(r.worldLine)) byWorld.set(r.worldLine, r);
    }
  }

  loadCheckpoint(node: NodeId, version: Version): Promise<LoadedCheckpoint | null> {
    try {
      return Promise.resolve(this.loadSync(node, version));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal */
  loadSync(node: NodeId, version: Version): LoadedCheckpoint | null {
    const top = this.rowAt(node, version, Infinity);
    if (top === undefined) return null;
    const chain: CheckpointRecord[] = [top];
    let cur = top;
    while (!cur.full && cur.prevVersion !== 0) {
      const prev = this.rowAt(node, cur.prevVersion, cur.worldLine);
      if (prev === undefined) throw new DseError('StorageCorrupt', `checkpoint ${node}@${cur.version} needs ${cur.prevVersion}, which is gone`);
      chain.push(prev);
      cur = prev;
    }
    const state = new Map<string, Json>();
    for (let i = chain.length - 1; i >= 0; i--) applyChanges(state, chain[i]!);
    return { node, worldLine: top.worldLine, version, deps: { ...top.deps }, state };
  }

  private rowAt(node: NodeId, version: Version, maxWorldLine: WorldLine): CheckpointRecord | undefined {
    const byWorld = this.rows.get(node)?.get(version);
    if (byWorld === undefined) return undefined;
    let best: CheckpointRecord | undefined;
    for (const [w, r] of byWorld) if (w <= maxWorldLine && (best === undefined || w > best.worldLine)) best = r;
    return best;
  }

  listCheckpoints(worldLine: WorldLine): Promise<CheckpointMeta[]> {
    const out: CheckpointMeta[] = [];
    for (const byVersion of this.rows.values()) {
      for (const byWorld of byVersion.values()) {
        for (const r of byWorld.values()) {
          if (r.worldLine <= worldLine) out.push({ node: r.node, worldLine: r.worldLine, version: r.version, prevVersion: r.prevVersion, deps: { ...r.deps } });
        }
      }
    }
    out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.version - b.version || a.worldLine - b.worldLine));
    return Promise.resolve(out);
  }

  loadCoordinator(): Promise<CoordinatorRecord | null> {
    return Promise.resolve(this.coordinator === null ? null : structuredClone(this.coordinator));
  }

  saveCoordinator(record: CoordinatorRecord): Promise<void> {
    try {
      this.saveCoordinatorSync(record);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal */
  saveCoordinatorSync(record: CoordinatorRecord): void {
    // The SQL storages refuse these too (their input checks): keep the contract the same.
    for (const n of record.gone ?? []) if (record.nodes.includes(n)) throw new DseError('BadRequest', `saveCoordinator: ${n} is both a member and gone`);
    if (record.kept !== undefined) {
      for (const n in record.cut)
        if ((record.kept[n] ?? Infinity) < record.cut[n]!) throw new DseError('BadRequest', `saveCoordinator: the restore point of ${n} is below its cut`);
    }
    if (
      this.coordinator !== null &&
      (record.worldLine < this.coordinator.worldLine || (record.starts === true && record.worldLine === this.coordinator.worldLine))
    ) {
      throw new DseError(
        'StaleWorldLine',
        `coordinator record of world-line ${record.worldLine}: ${this.coordinator.worldLine} is ${record.worldLine < this.coordinator.worldLine ? 'newer' : 'started already'}`,
      );
    }
    if (this.coordinator !== null && record.worldLine === this.coordinator.worldLine) {
      const lower = lowerCut(this.coordinator.cut, record.cut);
      if (lower !== null) throw new DseError('StaleCut', `coordinator record of world-line ${record.worldLine}: ${lower}`);
    }
    if (record.worldLine > this.fence) {
      this.fence = record.worldLine;
      // Versions above the restore points from ended world-lines were rolled back: drop them with the fence.
      const kept = record.kept ?? record.cut;
      for (const [node, byVersion] of this.rows) {
        const c = kept[node] ?? record.cut[node] ?? 0;
        for (const [v, byWorld] of byVersion) {
          if (v <= c) continue;
          for (const w of [...byWorld.keys()]) if (w < record.worldLine) byWorld.delete(w);
          if (byWorld.size === 0) byVersion.delete(v);
        }
      }
    }
    const { starts: _starts, gone, ...rest } = record;
    const stored: CoordinatorRecord = gone !== undefined && gone.length > 0 ? { ...rest, gone } : rest;
    this.coordinator = structuredClone(stored);
  }

  prune(node: NodeId, version: Version): Promise<void> {
    try {
      this.pruneSync(node, version);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal */
  pruneSync(node: NodeId, version: Version): void {
    const byVersion = this.rows.get(node);
    const top = this.rowAt(node, version, Infinity);
    if (byVersion === undefined || top === undefined) return;
    // What reading `version` needs: its chain down to a full snapshot (as the SQL storage, in keys).
    const weight = (r: CheckpointRecord): number => r.changes.set.length + r.changes.del.length + DELTA_ROW_WEIGHT;
    let base = top;
    let deltaWeight = 0;
    while (!base.full && base.prevVersion !== 0) {
      deltaWeight += weight(base);
      const prev = this.rowAt(node, base.prevVersion, base.worldLine);
      if (prev === undefined) throw new DseError('StorageCorrupt', `checkpoint ${node}@${base.version} needs ${base.prevVersion}, which is gone`);
      base = prev;
    }
    if (!base.full) deltaWeight += weight(base);
    if (deltaWeight <= 2 * (base.full ? weight(base) : 0)) {
      // Keep the full snapshot and the deltas after it; nothing is rewritten.
      for (const v of [...byVersion.keys()]) if (v < base.version) byVersion.delete(v);
      return;
    }
    // The deltas outweigh twice their snapshot (restores chained onto restored versions): the kept
    // version becomes a full snapshot, so nothing below it is needed to read it.
    const loaded = this.loadSync(node, version)!;
    if (!top.full) {
      byVersion.get(version)!.set(top.worldLine, { ...top, full: true, prevVersion: 0, changes: { set: [...loaded.state], del: [] } });
    }
    for (const v of [...byVersion.keys()]) if (v < version) byVersion.delete(v);
  }

  /** Rows held (for tests and benchmarks). */
  rowCount(node?: NodeId): number {
    let n = 0;
    for (const [id, byVersion] of this.rows) {
      if (node !== undefined && id !== node) continue;
      for (const byWorld of byVersion.values()) n += byWorld.size;
    }
    return n;
  }
}

/** Where `next` is below `stored` (a node's cut went back), as words; null when it is not. */
export function lowerCut(stored: Readonly<Record<NodeId, Version>>, next: Readonly<Record<NodeId, Version>>): string | null {
  for (const n in stored) {
    if ((next[n] ?? 0) < stored[n]!) return `the cut of ${n} would go back from ${stored[n]} to ${next[n] ?? 0}`;
  }
  return null;
}

export function applyChanges(state: Map<string, Json>, r: Pick<CheckpointRecord, 'full' | 'changes'>): void {
  if (r.full) state.clear();
  for (const [k, v] of r.changes.set) state.set(k, v);
  for (const k of r.changes.del) state.delete(k);
}
