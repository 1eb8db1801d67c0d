import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { MIGRATIONS } from '../../src/storage/migrations';
import { PgliteStorage } from '../../src/storage/pglite';

/** Empties the storage tables (between tests sharing one database). */
export async function resetTables(exec: (sql: string) => Promise<unknown>): Promise<void> {
  await exec('TRUNCATE dse_checkpoints');
  await exec('UPDATE dse_coordinator SET world_line = 0, cut = NULL, recovery_cuts = NULL, nodes = NULL, updated_at = NULL WHERE id = 1');
}

/**
 * A fresh PGlite data folder, copied from a template made once per machine (PGlite's initdb costs
 * seconds of CPU; a copy costs a fraction). The template is keyed by the PGlite version and the schema,
 * and made aside then renamed into place, so test files starting together never see half of one.
 * The first start on a folder of its own is still tested (pglite.test.ts, the benchmark).
 */
export async function freshPgliteDir(prefix: string): Promise<string> {
  const pkg = JSON.parse(
    fs.readFileSync(path.join(path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), '..', 'package.json'), 'utf8'),
  ) as { version: string };
  const key = createHash('sha256').update(JSON.stringify(MIGRATIONS)).digest('hex').slice(0, 12);
  const template = path.join(os.tmpdir(), `dse-pglite-template-${pkg.version}-${key}`);
  if (!fs.existsSync(path.join(template, 'pglite', 'PG_VERSION'))) {
    const aside = fs.mkdtempSync(`${template}.making-`);
    const db = await PgliteStorage.open({ dataDir: aside });
    await db.close();
    try {
      fs.renameSync(aside, template);
    } catch {
      // Another test file made it first.
      fs.rmSync(aside, { recursive: true, force: true });
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(template, dir, { recursive: true });
  return dir;
}
