// Starts the TypeScript side of the PGlite worker (worker threads do not inherit tsx's loader).
import { tsImport } from 'tsx/esm/api';

await tsImport('./pglite-worker.ts', import.meta.url);
