import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Issue 20, item 7: an unknown or malformed option prints one line naming it and the usage, and exits 2; no stack trace. */
describe('command lines fail well', () => {
  const cases: [string, string[], RegExp][] = [
    ['sim', ['backend/src/sim/cli.ts', '--node', '16'], /^Unknown option '--node'/],
    ['sim', ['backend/src/sim/cli.ts', '--nodes', '0'], /^--nodes must be an integer from 1 to \d+, not 0$/],
    ['sim', ['backend/src/sim/cli.ts', '--requests', 'many'], /^--requests must be a positive integer, not many$/],
    ['chaos', ['backend/src/chaos/cli.ts', '--bogus'], /^Unknown option '--bogus'/],
    ['bench', ['backend/src/bench/bench.ts', '--deployment'], /^Option '--deployment <value>' argument missing/],
    ['node', ['backend/src/live/node-main.ts', '--q'], /^Unknown option '--q'/],
  ];
  for (const [name, args, first] of cases) {
    it(`${name}: ${args.slice(1).join(' ')}`, () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(first);
      expect(lines[1]).toMatch(/^usage: npm run /);
      expect(r.stderr).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
    }, 60_000);
  }
});
