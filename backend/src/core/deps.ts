import type { Cut, Deps } from '@dse/shared';

/** Adds `b` into `a` keeping the highest version per node; returns `a`. */
export function mergeInto(a: Deps, b: Readonly<Deps>): Deps {
  for (const node in b) {
    const v = b[node]!;
    if ((a[node] ?? 0) < v) a[node] = v;
  }
  return a;
}

export function merged(a: Readonly<Deps>, b: Readonly<Deps>): Deps {
  return mergeInto({ ...a }, b);
}

/** True when every dependency is at or below the cut. */
export function covers(cut: Readonly<Cut>, deps: Readonly<Deps>): boolean {
  for (const node in deps) {
    if ((cut[node] ?? 0) < deps[node]!) return false;
  }
  return true;
}

export function maxVersion(deps: Readonly<Deps>): number {
  let m = 0;
  for (const node in deps) if (deps[node]! > m) m = deps[node]!;
  return m;
}

export function cutsEqual(a: Readonly<Cut>, b: Readonly<Cut>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
