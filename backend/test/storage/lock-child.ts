import { isDseError } from '@dse/shared';
import { openStorage } from '../../src/storage/open';

/** Tries to open the PGlite folder `argv[2]` and prints what happened as one JSON line. */
try {
  const s = await openStorage({ kind: 'pglite', dataDir: process.argv[2]! });
  console.log(JSON.stringify({ ok: true, describe: s.describe }));
  await s.close();
} catch (e) {
  console.log(JSON.stringify(isDseError(e) ? { code: e.code, message: e.message } : { code: 'other', message: String(e) }));
}
