import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * A floor under the production dependencies, because `npm audit` cannot reach its advisory endpoint
 * from this machine (docs/security.md, "Dependencies"): every copy of a package in package-lock.json
 * that production code can load must be at or above the version that fixed each high or critical
 * advisory we know of, and must not be a release known to be compromised. The list is by hand; it
 * guards against a lockfile that drifts back below a fix, not against advisories published later,
 * which only `npm audit` (run it where the endpoint answers) can tell.
 */

interface Advisory {
  pkg: string;
  id: string;
  /** Versions with this major (or 0.minor) below `fixed` are affected. */
  fixed: string;
  what: string;
}

const ADVISORIES: Advisory[] = [
  { pkg: 'ws', id: 'CVE-2024-37890 / GHSA-3h5v-q93c-6h6q', fixed: '8.17.1', what: 'DoS by a request with many HTTP headers' },
  { pkg: 'ws', id: 'CVE-2026-48779 / GHSA-96hv-2xvq-fx4p', fixed: '8.21.0', what: 'memory exhaustion by many tiny fragments' },
  { pkg: 'engine.io', id: 'CVE-2023-31125', fixed: '6.4.2', what: 'uncaught exception from a crafted request' },
  { pkg: 'engine.io', id: 'CVE-2026-59725', fixed: '6.6.7', what: 'DoS by invalid binary POST requests' },
  { pkg: 'socket.io-parser', id: 'CVE-2022-2421 / GHSA-qm95-pgcg-qqfq', fixed: '4.2.1', what: 'insufficient validation of decoded packets' },
  { pkg: 'socket.io-parser', id: 'CVE-2023-32695 / GHSA-cqmj-92xf-r6r9', fixed: '4.2.3', what: 'uncaught exception from a crafted packet' },
  { pkg: 'socket.io-parser', id: 'CVE-2026-33151 / GHSA-677m-j7p3-52f9', fixed: '4.2.6', what: 'unbounded number of binary attachments' },
  { pkg: 'socket.io-parser', id: 'CVE-2026-69185', fixed: '4.2.7', what: 'memory exhaustion by crafted packets' },
  { pkg: 'socket.io', id: 'CVE-2024-38355 / GHSA-25hc-qcg6-38wj', fixed: '4.6.2', what: 'uncaught exception from a crafted packet' },
  { pkg: 'cookie', id: 'CVE-2024-47764 / GHSA-pxg6-pf52-xh8x', fixed: '0.7.0', what: 'out-of-bounds characters in cookie name, path, domain' },
  { pkg: 'd3-color', id: 'GHSA-36jr-mh4h-2g58', fixed: '3.1.0', what: 'ReDoS' },
  { pkg: 'xmlhttprequest-ssl', id: 'CVE-2021-31597', fixed: '1.6.1', what: 'TLS certificates not checked' },
];

/** Releases published by a hijacked maintainer account (September 2025). */
const COMPROMISED: Record<string, string[]> = {
  debug: ['4.4.2'],
  'ansi-styles': ['6.2.2'],
  chalk: ['5.6.1'],
  'supports-color': ['10.2.1'],
};

type Version = [number, number, number];

function parse(v: string): Version {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (m === null) throw new Error(`not a version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function below(a: Version, b: Version): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

/** The same release line: same major, or same minor below 1.0. */
function sameLine(a: Version, b: Version): boolean {
  return a[0] === b[0] && (a[0] !== 0 || a[1] === b[1] || a[1] < b[1]);
}

interface LockEntry {
  version?: string;
  dev?: boolean;
  link?: boolean;
}

function productionCopies(): Map<string, string[]> {
  const lock = JSON.parse(readFileSync(join(__dirname, '../../../package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const out = new Map<string, string[]>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (entry.dev === true || entry.link === true || entry.version === undefined) continue;
    const at = path.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const name = path.slice(at + 'node_modules/'.length);
    out.set(name, [...(out.get(name) ?? []), entry.version]);
  }
  return out;
}

/** Every (package, version, advisory) that fails the floor. */
function violations(copies: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const a of ADVISORIES) {
    const fixed = parse(a.fixed);
    for (const v of copies.get(a.pkg) ?? []) {
      const have = parse(v);
      if (sameLine(have, fixed) && below(have, fixed)) bad.push(`${a.pkg}@${v}: ${a.id} (${a.what}), fixed in ${a.fixed}`);
    }
  }
  for (const [pkg, versions] of Object.entries(COMPROMISED)) {
    for (const v of copies.get(pkg) ?? []) if (versions.includes(v)) bad.push(`${pkg}@${v}: a compromised release`);
  }
  return bad;
}

describe('production dependencies against known advisories', () => {
  it('finds production copies in the lockfile (the check reads what it claims to read)', () => {
    const copies = productionCopies();
    for (const pkg of ['ws', 'engine.io', 'socket.io', 'socket.io-parser', 'pg', 'react-dom']) expect(copies.has(pkg), pkg).toBe(true);
  });

  it('has no production copy below a fix or on a compromised release', () => {
    expect(violations(productionCopies())).toEqual([]);
  });

  it('catches a copy below a fix and a compromised release', () => {
    const planted = new Map([
      ['ws', ['8.20.1', '7.5.10']],
      ['socket.io-parser', ['4.2.6']],
      ['debug', ['4.4.2']],
      ['cookie', ['0.6.0']],
    ]);
    const found = violations(planted);
    expect(found.some((s) => s.startsWith('ws@8.20.1') && s.includes('CVE-2026-48779'))).toBe(true);
    expect(found.some((s) => s.startsWith('ws@7.5.10'))).toBe(false); // another major: not covered by these entries
    expect(found.some((s) => s.startsWith('socket.io-parser@4.2.6') && s.includes('CVE-2026-69185'))).toBe(true);
    expect(found).toContain('debug@4.4.2: a compromised release');
    expect(found.some((s) => s.startsWith('cookie@0.6.0'))).toBe(true);
  });
});
