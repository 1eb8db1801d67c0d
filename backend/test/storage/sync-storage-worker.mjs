// Starts the TypeScript worker of sync-storage.ts (worker threads do not inherit tsx's loader).
import { tsImport } from 'tsx/esm/api';

await tsImport('./sync-storage-worker.ts', import.meta.url);
