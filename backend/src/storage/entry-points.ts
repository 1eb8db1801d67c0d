import { fileURLToPath } from 'node:url';

/**
 * Where a program this one starts in a process (or worker) of its own lives, and how Node runs it.
 *
 * From the TypeScript sources (tests, `npm run sim`, the benchmarks under tsx) a program is its `.ts`
 * file, run with the tsx loader. From the build (`npm run build`: `scripts/build-backend.mjs` bundles
 * each program into `backend/dist/<dir>/<name>.js`; `npm start` runs the server from there) it is the
 * bundle beside the running one, run by plain Node: no TypeScript compiled at run time, which is most
 * of a node process's memory (about 85 MB under tsx).
 *
 * Every bundle sits one folder below `backend/dist/`, as every source file sits one folder below
 * `backend/src/`, so `../../` is `backend/` from either; `import.meta.url` in a bundle is the
 * bundle's own file, so this module must be at that depth too.
 */
const HERE = import.meta.url;

/** The build folder this code runs from (`dist`, or another `dist-…` given to the build script), or null under tsx. */
const BUILD_DIR = /\/backend\/(dist[^/]*)\/[^/]+\/[^/]+\.js$/.exec(HERE)?.[1] ?? null;

/** True when this code runs from the build (`backend/dist/…/*.js`), false under tsx from the sources. */
export const COMPILED = BUILD_DIR !== null;

const BACKEND = new URL('../../', HERE);

export interface EntryPoint {
  /** The file to run. */
  file: string;
  /** Node flags it needs before the file (the TypeScript loader, from the sources). */
  nodeArgs: string[];
}

/**
 * The program `program` (a path under `backend/src/` without its extension, e.g. `live/node-main`):
 * its bundle when this code runs from the build, its source with tsx otherwise.
 */
export function entryPoint(program: string): EntryPoint {
  if (BUILD_DIR !== null) return { file: fileURLToPath(new URL(`${BUILD_DIR}/${program}.js`, BACKEND)), nodeArgs: [] };
  return { file: fileURLToPath(new URL(`src/${program}.ts`, BACKEND)), nodeArgs: ['--import', 'tsx'] };
}
