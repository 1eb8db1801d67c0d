import type { InspectorSelection } from '../views/Inspector';

/** What the address says: a simulation to replay, and the view (position, selection, time window). */

const SIM_KEYS = ['mode', 'cut', 'recovery', 'faults', 'nodes', 'sessions', 'requests', 'speed'];

/** Simulation settings from the URL (`?sim=<seed>&mode=…&cut=…&recovery=…&faults=0|1&nodes=…`). */
export function simulationFromUrl(): Record<string, string> | null {
  const q = new URLSearchParams(location.search);
  const seed = q.get('sim');
  if (seed === null) return null;
  const out: Record<string, string> = { sim: seed };
  for (const k of SIM_KEYS) {
    const v = q.get(k);
    if (v !== null) out[k] = v;
  }
  return out;
}

/** The view a shared URL asks for: replay position, selection, time window. */
export interface ViewFromUrl {
  at: number | null;
  sel: string | null;
  win: number | 'all' | null;
}

export function viewFromUrl(): ViewFromUrl {
  const q = new URLSearchParams(location.search);
  const at = q.get('at');
  const win = q.get('win');
  return {
    at: at === null || !/^\d+$/.test(at) ? null : Number(at),
    sel: q.get('sel'),
    win: win === null ? null : win === 'all' ? 'all' : /^\d+$/.test(win) ? Number(win) : null,
  };
}

/** One query parameter of the address (`tour`, `scenario`), read once. */
export function urlParam(name: string): string | null {
  return new URLSearchParams(location.search).get(name);
}

export function selectionToParam(s: InspectorSelection): string | null {
  if (s === null) return null;
  if (s.kind === 'version') return s.key;
  if (s.kind === 'node') return `node:${s.node}`;
  return `req:${s.session}#${s.seq}`;
}

export function selectionFromParam(p: string | null): InspectorSelection {
  if (p === null || p === '') return null;
  if (p.startsWith('node:')) return { kind: 'node', node: p.slice(5) };
  const r = /^req:(.+)#(\d+)$/.exec(p);
  if (r !== null) return { kind: 'request', session: r[1]!, seq: Number(r[2]) };
  return { kind: 'version', key: p };
}

/** Replaces the address's query without a navigation (an empty query leaves the bare path). */
export function replaceQuery(q: URLSearchParams): void {
  const next = q.toString();
  history.replaceState(null, '', `${location.pathname}${next === '' ? '' : `?${next}`}`);
}
