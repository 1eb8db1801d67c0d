#!/usr/bin/env node
// `npm run build`: bundles the backend's programs into plain JavaScript under backend/dist/, so that
// `npm start` runs the server and its node processes with no TypeScript loader (tsx compiles every
// module at run time, in every process: most of a node process's memory). One bundle per program,
// each one folder below backend/dist/ as its source is one folder below backend/src/ (see
// backend/src/storage/entry-points.ts, which finds them). Packages from node_modules stay imports (PGlite
// loads its WebAssembly beside its own files); the workspace's own `@dse/shared` is bundled in.
// `--out backend/dist-NAME` builds elsewhere (a long benchmark keeps running its own build while the
// sources change).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The programs: the server, a node process, the workers the server starts, and the live benchmarks. */
const PROGRAMS = ['server/main', 'live/node-main', 'server/sim-worker', 'storage/pglite-worker', 'bench/scale', 'bench/soak'];

/** Bare imports other than the workspace's own stay imports, resolved from node_modules at run time. */
const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind === 'entry-point' || args.path.startsWith('@dse/') || args.path.startsWith('node:')) return undefined;
      return { path: args.path, external: true };
    });
  },
};

const outArg = process.argv.indexOf('--out');
const outdir = outArg >= 0 ? process.argv[outArg + 1] : 'backend/dist';
if (outdir === undefined || !/^backend\/dist[^/]*$/.test(outdir)) {
  process.stderr.write('usage: node scripts/build-backend.mjs [--out backend/dist-NAME]\n');
  process.exit(2);
}

const t0 = performance.now();
rmSync(`${ROOT}${outdir}`, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: Object.fromEntries(PROGRAMS.map((p) => [p, `backend/src/${p}.ts`])),
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [externalPackages],
});
process.stdout.write(`backend built into ${outdir}/ in ${Math.round(performance.now() - t0)} ms\n`);
