import { DseError } from '@dse/shared';
import type { SqlConnection } from './sql';

/**
 * The schema, as numbered migrations applied in order at start-up, each once, in one transaction with
 * its row in `dse_migrations`. A migration is never edited once released: changes come as new ones.
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'checkpoints and coordinator',
    statements: [
      // One row per (node, version, world-line). `changes` is the state (full) or the delta against
      // `prev_version`; `json` keeps it byte for byte (key order, any string) and is cheaper to write than jsonb.
      `CREATE TABLE dse_checkpoints (
        node text NOT NULL,
        version bigint NOT NULL CHECK (version > 0),
        world_line bigint NOT NULL CHECK (world_line > 0),
        prev_version bigint NOT NULL CHECK (prev_version >= 0 AND prev_version < version),
        is_full boolean NOT NULL,
        deps jsonb NOT NULL,
        changes json NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (node, version, world_line)
      )`,
      // Stored uncompressed: compressing every checkpoint costs more than the bytes it saves.
      `ALTER TABLE dse_checkpoints ALTER COLUMN changes SET STORAGE EXTERNAL`,
      `CREATE INDEX dse_checkpoints_world_line ON dse_checkpoints (world_line, node, version)`,
      // The coordinator's record, one row. `world_line` is also the fence: checkpoint writes of older
      // world-lines are refused. `cut` is null until the coordinator first saves.
      `CREATE TABLE dse_coordinator (
        id smallint PRIMARY KEY CHECK (id = 1),
        world_line bigint NOT NULL CHECK (world_line >= 0),
        cut jsonb,
        recovery_cuts jsonb,
        nodes jsonb,
        updated_at timestamptz
      )`,
      `INSERT INTO dse_coordinator (id, world_line) VALUES (1, 0)`,
    ],
  },
  {
    version: 2,
    name: 'restore points of precise recovery',
    statements: [
      // Each node's restore point in the current world-line (null: the cut, as saved by version 1).
      `ALTER TABLE dse_coordinator ADD COLUMN kept jsonb`,
    ],
  },
  {
    version: 3,
    name: 'nodes removed for good',
    statements: [
      // Nodes removed from the cluster for good (null: none): a coordinator started from the record never
      // counts them as members again.
      `ALTER TABLE dse_coordinator ADD COLUMN gone jsonb`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the schema (the connection's `search_path`) up to date. Concurrent starters are serialized
 * by a transaction-scoped advisory lock, so each migration runs once.
 * Returns the versions applied now.
 */
export async function migrate(c: SqlConnection): Promise<number[]> {
  const applied: number[] = [];
  await c.query('BEGIN');
  try {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('dse_migrations:' || current_schema()))`);
    await c.query(`CREATE TABLE IF NOT EXISTS dse_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const res = await c.query<{ version: number }>('SELECT version FROM dse_migrations ORDER BY version');
    const have = new Set(res.rows.map((r) => Number(r.version)));
    const newest = Math.max(0, ...have);
    if (newest > SCHEMA_VERSION) {
      throw new DseError(
        'StorageConflict',
        `the database schema is at version ${newest}, newer than this program's ${SCHEMA_VERSION}: run a newer version of the program`,
      );
    }
    for (const m of MIGRATIONS) {
      if (have.has(m.version)) continue;
      for (const s of m.statements) await c.query(s);
      await c.query('INSERT INTO dse_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return applied;
}
