import type { Cut, Deps, Json, NodeId, Version, WorldLine } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import type { WorldLineStart } from '../core/messages';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Storage } from '../core/ports';
import { applyChanges, lowerCut } from './memory';

/**
 * Storage on SQL: one code path for PGlite and PostgreSQL. Both are reached through node-postgres's
 * client API (PGlite through its `node-postgres` connection), so the statements, the transactions and
 * the error translation below are the same for both. Values always travel as parameters.
 *
 * Tables (see migrations.ts): `dse_checkpoints` (one row per node, version and world-line) and
 * `dse_coordinator` (the coordinator's record; its `world_line` is the fence).
 *
 * Concurrency: every transaction that writes checkpoint rows first locks the coordinator row, shared
 * (checkpoint writes, prune) or exclusive (saveCoordinator). So a write of an older world-line either
 * commits before the fence moves (and its rows above the cut are then deleted with the move) or sees the
 * new fence and is refused: none survives a world-line change.
 */

/** What the storage needs of a database connection: node-postgres's `query`. */
export interface SqlConnection {
  query<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** Hands out a connection for the exclusive use of `fn` (a transaction), then takes it back. */
export interface SqlPool {
  withConnection<T>(fn: (c: SqlConnection) => Promise<T>): Promise<T>;
}

export interface SqlStorageOptions {
  /** For messages: which database this is ("PGlite in .data/", "PostgreSQL at host/db"). */
  label: string;
  /** Transactions aborted by a serialization failure or deadlock are run again this many times. */
  conflictRetries?: number;
}

interface ChainRow {
  version: string;
  world_line: string;
  prev_version: string;
  is_full: boolean;
  deps: string;
  changes: string;
}

// The row at `version` with the highest world-line, then, while a row is a delta, the row at its
// `prev_version` with the highest world-line not above its own: the same walk as MemoryStorage. One
// statement, so it reads one snapshot: a checkpoint half-written or half-pruned is never seen.
const CHAIN_SQL = `
WITH RECURSIVE chain AS (
  (SELECT version, world_line, prev_version, is_full, deps, changes, 0 AS depth
     FROM dse_checkpoints WHERE node = $1 AND version = $2
     ORDER BY world_line DESC LIMIT 1)
  UNION ALL
  SELECT p.version, p.world_line, p.prev_version, p.is_full, p.deps, p.changes, c.depth + 1
    FROM chain c CROSS JOIN LATERAL (
      SELECT k.version, k.world_line, k.prev_version, k.is_full, k.deps, k.changes
        FROM dse_checkpoints k
       WHERE k.node = $1 AND k.version = c.prev_version AND k.world_line <= c.world_line
       ORDER BY k.world_line DESC LIMIT 1) p
   WHERE NOT c.is_full AND c.prev_version <> 0 AND c.depth < $3
)
SELECT version::text, world_line::text, prev_version::text, is_full, deps::text AS deps, changes::text AS changes
  FROM chain ORDER BY depth`;

// The chain that reads `version`, as CHAIN_SQL walks it, without the changes: their size only
// (`pg_column_size` reads it from the row; `changes` is stored uncompressed, so it is the JSON's length).
const CHAIN_SIZES_SQL = `
WITH RECURSIVE chain AS (
  (SELECT version, world_line, prev_version, is_full, pg_column_size(changes) AS bytes, 0 AS depth
     FROM dse_checkpoints WHERE node = $1 AND version = $2
     ORDER BY world_line DESC LIMIT 1)
  UNION ALL
  SELECT p.version, p.world_line, p.prev_version, p.is_full, p.bytes, c.depth + 1
    FROM chain c CROSS JOIN LATERAL (
      SELECT k.version, k.world_line, k.prev_version, k.is_full, pg_column_size(k.changes) AS bytes
        FROM dse_checkpoints k
       WHERE k.node = $1 AND k.version = c.prev_version AND k.world_line <= c.world_line
       ORDER BY k.world_line DESC LIMIT 1) p
   WHERE NOT c.is_full AND c.prev_version <> 0 AND c.depth < $3
)
SELECT version::text, prev_version::text, is_full, bytes::text FROM chain ORDER BY depth`;

/**
 * A delta chain longer than this is treated as corrupt. The runtime's chains are far shorter: its
 * schedule weighs each delta row as `DELTA_ROW_WEIGHT` keys (at most about `state / 16` rows), and prune
 * compacts a chain whose rows outweigh twice its snapshot (`PRUNE_ROW_BYTES` each).
 */
const MAX_CHAIN = 1_000_000;

/** What prune counts a row as, beyond its changes: about `DELTA_ROW_WEIGHT` small keys. */
const PRUNE_ROW_BYTES = 512;

// One statement, so one transaction: the batch is written whole or not at all (group commit). The fence
// row is locked (shared) before the rows go in; when a newer world-line has started nothing is inserted
// and the fence comes back, for a definite StaleWorldLine.
const INSERT_SQL = `
WITH fence AS (SELECT world_line FROM dse_coordinator WHERE id = 1 FOR SHARE),
ins AS (
  INSERT INTO dse_checkpoints (node, version, world_line, prev_version, is_full, deps, changes)
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::jsonb[], $7::json[])
   WHERE (SELECT world_line FROM fence) <= $8
  ON CONFLICT (node, version, world_line) DO NOTHING
  RETURNING 1)
SELECT (SELECT world_line::text FROM fence) AS fence, (SELECT count(*) FROM ins)::int AS inserted`;

export class SqlStorage implements Storage {
  private readonly label: string;
  private readonly conflictRetries: number;

  constructor(
    private readonly pool: SqlPool,
    opts: SqlStorageOptions,
  ) {
    this.label = opts.label;
    this.conflictRetries = opts.conflictRetries ?? 5;
  }

  async writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void> {
    // Checked as unknown: narrowing the typed parameter would make its elements `any`.
    const list: unknown = records;
    if (!Array.isArray(list)) throw new DseError('BadRequest', 'writeCheckpoints: records must be an array');
    if (records.length === 0) return;
    const cols: [string[], string[], string[], string[], boolean[], string[], string[]] = [[], [], [], [], [], [], []];
    let minWorldLine = Infinity;
    for (const r of records) {
      checkRecord(r);
      cols[0].push(r.node);
      cols[1].push(String(r.version));
      cols[2].push(String(r.worldLine));
      cols[3].push(String(r.prevVersion));
      cols[4].push(r.full);
      cols[5].push(JSON.stringify(r.deps));
      cols[6].push(JSON.stringify(r.changes));
      minWorldLine = Math.min(minWorldLine, r.worldLine);
    }
    const res = await this.retrying('writeCheckpoints', (c) => c.query<{ fence: string | null }>(INSERT_SQL, [...cols, minWorldLine]));
    const fence = res.rows[0]?.fence;
    if (fence === null || fence === undefined) throw new DseError('StorageCorrupt', `${this.label}: the coordinator's row (the world-line fence) is missing`);
    if (minWorldLine < Number(fence)) {
      const r = records.find((x) => x.worldLine < Number(fence))!;
      throw new DseError('StaleWorldLine', `checkpoint ${r.node}@${r.version} of world-line ${r.worldLine}: world-line ${fence} has started`);
    }
  }

  async loadCheckpoint(node: NodeId, version: Version): Promise<LoadedCheckpoint | null> {
    checkNode(node, 'loadCheckpoint');
    checkInt(version, 0, 'loadCheckpoint: version');
    if (version === 0) return null;
    return this.run('loadCheckpoint', (c) => loadChain(c, node, version));
  }

  async listCheckpoints(worldLine: WorldLine): Promise<CheckpointMeta[]> {
    checkInt(worldLine, 0, 'listCheckpoints: world-line');
    const res = await this.run('listCheckpoints', (c) =>
      c.query<{ node: string; version: string; world_line: string; prev_version: string; deps: string }>(
        'SELECT node, version::text, world_line::text, prev_version::text, deps::text AS deps FROM dse_checkpoints WHERE world_line <= $1',
        [worldLine],
      ),
    );
    const out: CheckpointMeta[] = res.rows.map((r) => ({
      node: r.node,
      worldLine: Number(r.world_line),
      version: Number(r.version),
      prevVersion: Number(r.prev_version),
      deps: JSON.parse(r.deps) as Deps,
    }));
    // Sorted here rather than in SQL: the same order as MemoryStorage whatever the database's collation.
    out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.version - b.version || a.worldLine - b.worldLine));
    return out;
  }

  async loadCoordinator(): Promise<CoordinatorRecord | null> {
    const res = await this.run('loadCoordinator', (c) =>
      c.query<{ world_line: string; cut: string | null; kept: string | null; recovery_cuts: string | null; nodes: string | null; gone: string | null }>(
        'SELECT world_line::text, cut::text AS cut, kept::text AS kept, recovery_cuts::text AS recovery_cuts, nodes::text AS nodes, gone::text AS gone FROM dse_coordinator WHERE id = 1',
      ),
    );
    const row = res.rows[0];
    if (row === undefined) throw new DseError('StorageCorrupt', `${this.label}: the coordinator's row is missing`);
    if (row.cut === null) return null;
    const rec: CoordinatorRecord = {
      worldLine: Number(row.world_line),
      cut: JSON.parse(row.cut) as Cut,
      recoveryCuts: JSON.parse(row.recovery_cuts ?? '[]') as WorldLineStart[],
      nodes: JSON.parse(row.nodes ?? '[]') as NodeId[],
    };
    if (row.kept !== null) rec.kept = JSON.parse(row.kept) as Cut;
    if (row.gone !== null) rec.gone = JSON.parse(row.gone) as NodeId[];
    return rec;
  }

  async saveCoordinator(record: CoordinatorRecord): Promise<void> {
    checkCoordinator(record);
    const cut = JSON.stringify(record.cut);
    await this.transaction('saveCoordinator', async (c) => {
      const res = await c.query<{ world_line: string; saved: boolean; cut: string | null }>(
        'SELECT world_line::text, cut IS NOT NULL AS saved, cut::text AS cut FROM dse_coordinator WHERE id = 1 FOR UPDATE',
      );
      const row = res.rows[0];
      if (row === undefined) throw new DseError('StorageCorrupt', `${this.label}: the coordinator's row is missing`);
      const stored = Number(row.world_line);
      if (row.saved && (record.worldLine < stored || (record.starts === true && record.worldLine === stored))) {
        throw new DseError(
          'StaleWorldLine',
          `coordinator record of world-line ${record.worldLine}: ${stored} is ${record.worldLine < stored ? 'newer' : 'started already'}`,
        );
      }
      if (row.saved && row.cut !== null && record.worldLine === stored) {
        const lower = lowerCut(JSON.parse(row.cut) as Cut, record.cut);
        if (lower !== null) throw new DseError('StaleCut', `coordinator record of world-line ${record.worldLine}: ${lower}`);
      }
      if (record.worldLine > stored) {
        // Versions above the restore points from ended world-lines were rolled back: drop them with the fence.
        await c.query(
          `DELETE FROM dse_checkpoints WHERE world_line < $1 AND version > COALESCE(($2::jsonb ->> node)::bigint, ($3::jsonb ->> node)::bigint, 0)`,
          [record.worldLine, JSON.stringify(record.kept ?? record.cut), cut],
        );
      }
      await c.query(
        'UPDATE dse_coordinator SET world_line = GREATEST(world_line, $1), cut = $2, kept = $3, recovery_cuts = $4, nodes = $5, gone = $6, updated_at = now() WHERE id = 1',
        [
          record.worldLine,
          cut,
          record.kept === undefined ? null : JSON.stringify(record.kept),
          JSON.stringify(record.recoveryCuts),
          JSON.stringify(record.nodes),
          record.gone === undefined || record.gone.length === 0 ? null : JSON.stringify(record.gone),
        ],
      );
    });
  }

  async prune(node: NodeId, version: Version): Promise<void> {
    checkNode(node, 'prune');
    checkInt(version, 1, 'prune: version');
    // What reading `version` needs: its chain down to a full snapshot. Sizes only, not the changes.
    const res = await this.run('prune', (c) =>
      c.query<{ version: string; prev_version: string; is_full: boolean; bytes: string }>(CHAIN_SIZES_SQL, [node, version, MAX_CHAIN]),
    );
    const chain = res.rows;
    const base = chain[chain.length - 1];
    if (base === undefined) return;
    if (!base.is_full && base.prev_version !== '0')
      throw new DseError('StorageCorrupt', `checkpoint ${node}@${base.version} needs ${base.prev_version}, which is gone`);
    let deltaBytes = 0;
    for (const r of chain) if (!r.is_full) deltaBytes += Number(r.bytes) + PRUNE_ROW_BYTES;
    const fullBytes = base.is_full ? Number(base.bytes) + PRUNE_ROW_BYTES : 0;
    if (deltaBytes <= 2 * fullBytes) {
      // The usual case: keep the full snapshot and the deltas after it, drop what is below it. Nothing
      // is rewritten, so the cost follows the rows dropped, not the state's size. One statement, no
      // lock: prune touches committed versions only, below the cut, which no world-line change deletes,
      // and rows below `version`'s full snapshot are needed by no version at or above it.
      await this.run('prune', (c) => c.query('DELETE FROM dse_checkpoints WHERE node = $1 AND version < $2', [node, Number(base.version)]));
      return;
    }
    // The deltas outweigh twice their snapshot: more than the node's schedule writes, which happens when
    // restores chain onto restored versions (a restored node does not know how long its chain is). The
    // kept version becomes a full snapshot, so nothing below it is needed to read it: a cost of the
    // state's size, paid once per at least twice that in deltas.
    await this.transaction('prune', async (c) => {
      const loaded = await loadChain(c, node, version);
      if (loaded === null) return;
      if (!loaded.topFull) {
        await c.query('UPDATE dse_checkpoints SET is_full = true, prev_version = 0, changes = $4 WHERE node = $1 AND version = $2 AND world_line = $3', [
          node,
          version,
          loaded.worldLine,
          JSON.stringify({ set: [...loaded.state], del: [] }),
        ]);
      }
      await c.query('DELETE FROM dse_checkpoints WHERE node = $1 AND version < $2', [node, version]);
    });
  }

  /** Rows held (for tests and benchmarks). */
  async rowCount(node?: NodeId): Promise<number> {
    const res = await this.run('rowCount', (c) =>
      node === undefined
        ? c.query<{ n: string }>('SELECT count(*)::text AS n FROM dse_checkpoints')
        : c.query<{ n: string }>('SELECT count(*)::text AS n FROM dse_checkpoints WHERE node = $1', [node]),
    );
    return Number(res.rows[0]!.n);
  }

  /** Runs one statement (or a read that needs no transaction). */
  private async run<T>(what: string, fn: (c: SqlConnection) => Promise<T>): Promise<T> {
    try {
      return await this.pool.withConnection(fn);
    } catch (e) {
      throw translateError(e, `${this.label}: ${what}`);
    }
  }

  /** Runs one statement (its own transaction); runs it again after a serialization failure or a deadlock. */
  private async retrying<T>(what: string, fn: (c: SqlConnection) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.pool.withConnection(fn);
      } catch (e) {
        if (isConflict(e) && attempt < this.conflictRetries) continue;
        throw translateError(e, `${this.label}: ${what}`);
      }
    }
  }

  /** Runs `fn` in a transaction; runs it again after a serialization failure or a deadlock (nothing happened). */
  private async transaction<T>(what: string, fn: (c: SqlConnection) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.pool.withConnection(async (c) => {
          await c.query('BEGIN');
          let result: T;
          try {
            result = await fn(c);
          } catch (e) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
          await c.query('COMMIT');
          return result;
        });
      } catch (e) {
        if (isConflict(e) && attempt < this.conflictRetries) continue;
        throw translateError(e, `${this.label}: ${what}`);
      }
    }
  }
}

async function loadChain(c: SqlConnection, node: NodeId, version: Version): Promise<(LoadedCheckpoint & { topFull: boolean }) | null> {
  const res = await c.query<ChainRow>(CHAIN_SQL, [node, version, MAX_CHAIN]);
  const rows = res.rows;
  const top = rows[0];
  if (top === undefined) return null;
  const last = rows[rows.length - 1]!;
  if (!last.is_full && last.prev_version !== '0') {
    throw new DseError('StorageCorrupt', `checkpoint ${node}@${last.version} needs ${last.prev_version}, which is gone`);
  }
  const state = new Map<string, Json>();
  for (let i = rows.length - 1; i >= 0; i--) {
    const r = rows[i]!;
    let changes: unknown;
    try {
      changes = JSON.parse(r.changes);
    } catch {
      throw new DseError('StorageCorrupt', `checkpoint ${node}@${r.version}: its changes are not JSON`);
    }
    if (!isChanges(changes)) throw new DseError('StorageCorrupt', `checkpoint ${node}@${r.version}: its changes are malformed`);
    applyChanges(state, { full: r.is_full, changes });
  }
  return { node, worldLine: Number(top.world_line), version, deps: JSON.parse(top.deps) as Deps, state, topFull: top.is_full };
}

function isChanges(x: unknown): x is CheckpointRecord['changes'] {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as { set?: unknown; del?: unknown };
  return Array.isArray(o.set) && Array.isArray(o.del);
}

// ---------------------------------------------------------------- input checks (definite BadRequest)

function bad(message: string): DseError {
  return new DseError('BadRequest', message);
}

function checkInt(x: unknown, min: number, what: string): asserts x is number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) throw bad(`${what} must be an integer >= ${min}, not ${String(x)}`);
}

function checkNode(x: unknown, what: string): asserts x is string {
  // PostgreSQL text cannot hold NUL.
  if (typeof x !== 'string' || x.length === 0 || x.includes('\u0000'))
    throw bad(`${what}: a node id must be a non-empty string without NUL, not ${JSON.stringify(x)}`);
}

function checkVersionMap(x: unknown, what: string): void {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw bad(`${what} must be an object of versions`);
  for (const [k, v] of Object.entries(x)) {
    checkNode(k, what);
    checkInt(v, 0, `${what}[${k}]`);
  }
}

/** Deepest nesting of a stored value (arrays and objects): well within what JSON.stringify and both databases handle. */
export const MAX_JSON_DEPTH = 1000;

/**
 * Throws a definite `BadRequest` unless `value` can be stored and read back unchanged: the check the
 * storage applies to every state value. Exported so that an API can refuse such a value up front.
 * @public (no caller yet: knip would report it)
 */
export function assertStorableJson(value: unknown, where = 'value'): void {
  checkJson(value, where);
}

/** A JSON value that survives a round trip unchanged: no undefined, NaN, Infinity, functions, bigints or class instances. */
function checkJson(x: unknown, where: string, depth = 0): void {
  if (depth > MAX_JSON_DEPTH) throw bad(`${where}: nested deeper than ${MAX_JSON_DEPTH}`);
  switch (typeof x) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(x)) throw bad(`${where}: ${x} is not a JSON number`);
      return;
    case 'object': {
      if (x === null) return;
      if (Array.isArray(x)) {
        for (let i = 0; i < x.length; i++) checkJson(x[i], where, depth + 1);
        return;
      }
      const proto = Object.getPrototypeOf(x) as unknown;
      if (proto !== Object.prototype && proto !== null) throw bad(`${where}: a ${x.constructor?.name ?? 'class'} instance is not JSON`);
      for (const k in x) checkJson((x as Record<string, unknown>)[k], where, depth + 1);
      return;
    }
    default:
      throw bad(`${where}: a ${typeof x} is not JSON`);
  }
}

function checkRecord(r: CheckpointRecord): void {
  if (typeof r !== 'object' || r === null) throw bad('writeCheckpoints: a record must be an object');
  checkNode(r.node, 'writeCheckpoints');
  const id = `checkpoint ${r.node}@${String(r.version)}`;
  checkInt(r.version, 1, `${id}: version`);
  checkInt(r.worldLine, 1, `${id}: world-line`);
  checkInt(r.prevVersion, 0, `${id}: prevVersion`);
  if (r.prevVersion >= r.version) throw bad(`${id}: prevVersion ${r.prevVersion} must be below the version`);
  if (typeof r.full !== 'boolean') throw bad(`${id}: full must be a boolean`);
  checkVersionMap(r.deps, `${id}: deps`);
  const ch = r.changes as unknown;
  if (!isChanges(ch)) throw bad(`${id}: changes must be {set: [key, value][], del: key[]}`);
  for (const e of ch.set) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string') throw bad(`${id}: each changes.set entry must be [key, value]`);
    checkJson(e[1], `${id}: value of ${e[0]}`);
  }
  for (const k of ch.del) if (typeof k !== 'string') throw bad(`${id}: changes.del must hold keys`);
}

function checkCoordinator(r: CoordinatorRecord): void {
  if (typeof r !== 'object' || r === null) throw bad('saveCoordinator: the record must be an object');
  checkInt(r.worldLine, 1, 'saveCoordinator: world-line');
  checkVersionMap(r.cut, 'saveCoordinator: cut');
  if (r.kept !== undefined) {
    checkVersionMap(r.kept, 'saveCoordinator: kept');
    for (const n in r.cut) if ((r.kept[n] ?? Infinity) < r.cut[n]!) throw bad(`saveCoordinator: the restore point of ${n} is below its cut`);
  }
  if (!Array.isArray(r.recoveryCuts)) throw bad('saveCoordinator: recoveryCuts must be an array');
  for (const rc of r.recoveryCuts) {
    if (typeof rc !== 'object' || rc === null) throw bad('saveCoordinator: recoveryCuts entries must be {worldLine, cut}');
    checkInt(rc.worldLine, 1, 'saveCoordinator: recoveryCuts world-line');
    checkVersionMap(rc.cut, 'saveCoordinator: recoveryCuts cut');
    if (rc.kept !== undefined) checkVersionMap(rc.kept, 'saveCoordinator: recoveryCuts kept');
  }
  if (!Array.isArray(r.nodes)) throw bad('saveCoordinator: nodes must be an array');
  for (const n of r.nodes) checkNode(n, 'saveCoordinator: nodes');
  if (r.gone !== undefined) {
    if (!Array.isArray(r.gone)) throw bad('saveCoordinator: gone must be an array');
    for (const n of r.gone) {
      checkNode(n, 'saveCoordinator: gone');
      if (r.nodes.includes(n)) throw bad(`saveCoordinator: ${n} is both a member and gone`);
    }
  }
}

// ---------------------------------------------------------------- error translation

const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A transaction the database aborted whole (so nothing happened): worth running again. */
export function isConflict(e: unknown): boolean {
  const s = sqlState(e);
  return s === '40001' || s === '40P01';
}

/** The connection itself failed: the client must not be reused. */
export function isConnectionError(e: unknown): boolean {
  if (isDseError(e)) return false;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_ERRNOS.has(code)) return true;
  const s = sqlState(e);
  if (s !== undefined) return s.startsWith('08') || s === '57P01' || s === '57P02' || s === '57P03';
  const msg = e instanceof Error ? e.message : String(e);
  return /connection terminated|terminated unexpectedly|not queryable|timeout|connection (is )?closed|socket|closed/i.test(msg);
}

/**
 * A database error as the runtime's typed error. Definite where the database says the statement did not
 * take effect for a reason retrying will not change (bad input, a broken schema); indefinite
 * (`StorageUnavailable`) for a lost connection, a timeout, an exhausted server, or anything unknown: the
 * write may have happened, and writing again is idempotent.
 */
export function translateError(e: unknown, context: string): DseError {
  if (isDseError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const s = sqlState(e);
  if (s !== undefined) {
    const text = `${context}: ${msg} (SQLSTATE ${s})`;
    if (s === '40001' || s === '40P01') return new DseError('StorageConflict', text);
    if (s.startsWith('22') || s.startsWith('23')) return new DseError('BadRequest', text);
    if (s.startsWith('42') || s.startsWith('XX')) return new DseError('StorageCorrupt', text);
    return new DseError('StorageUnavailable', text);
  }
  return new DseError('StorageUnavailable', `${context}: ${msg}`);
}
