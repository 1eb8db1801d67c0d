import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from 'node:util';

/**
 * `parseArgs` for a command line: an unknown or malformed option prints one line that names it, then
 * the usage, and exits with status 2 (no stack trace).
 */
export function parseCommandLine<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    const first = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    process.stderr.write(`${first}\n${usage}\n`);
    process.exit(2);
  }
}
