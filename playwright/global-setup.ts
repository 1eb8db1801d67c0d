import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startPlayground } from './server';

export const STATE_FILE = join(ROOT, 'test-results', '.playwright-server.json');

export default async function globalSetup(): Promise<void> {
  if (process.env.DSE_BASE_URL !== undefined && process.env.DSE_BASE_URL !== '') return; // an already running server
  mkdirSync(join(ROOT, 'test-results'), { recursive: true });
  const s = await startPlayground();
  process.env.DSE_BASE_URL = s.url;
  writeFileSync(STATE_FILE, JSON.stringify({ pid: s.process.pid, dataDir: s.dataDir, url: s.url }));
  s.process.unref();
}
