import { startPlayground, stopPlayground } from './server';

/**
 * Starts one real server (with its node processes) for the run and returns its teardown, so that
 * two runs at once (two engineers, two terminals) never stop each other's server.
 */
export default async function globalSetup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.DSE_BASE_URL !== undefined && process.env.DSE_BASE_URL !== '') return undefined; // an already running server
  const s = await startPlayground();
  process.env.DSE_BASE_URL = s.url;
  const pid = s.process.pid!;
  return () => stopPlayground(pid, s.dataDir);
}
