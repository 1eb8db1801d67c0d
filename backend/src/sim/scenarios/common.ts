import type { Json, NodeId, Version } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { wrongOwnerOf } from '../../services/common';
import type { Session } from '../../core/session';
import type { Checker, NodeView, RequestOutcome } from '../checker';
import type { WorkloadEnv } from '../scenario';

/** Runs `body` once per session; counts those done; keeps errors other than a rollback (workload bugs). */
export class SessionLoops {
  done = 0;
  total = -1;
  readonly errors: string[] = [];

  start(env: WorkloadEnv, body: (s: Session, index: number) => Promise<void>): Session[] {
    this.total = env.sessions;
    const sessions = Array.from({ length: env.sessions }, () => env.host.session());
    sessions.forEach((s, i) => {
      body(s, i).then(
        () => this.done++,
        (e: unknown) => {
          this.errors.push(`session ${s.id}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
          this.done++;
        },
      );
    });
    return sessions;
  }

  get allDone(): boolean {
    return this.done === this.total;
  }

  report(c: Checker, t: number): void {
    for (const e of this.errors) c.fail('internal', `workload: ${e}`, t);
  }
}

/**
 * Awaits `p`; a rollback (definite: it did not happen) gives null. A request refused because the session
 * is rolled back (`SessionRolledBack`: it was never sent) gives null too, and the client resumes; so does
 * a `WrongOwner` the client stopped following (during a membership change: it changed nothing).
 */
export async function orRolledBack<T>(client: { resume(): void }, p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (isDseError(e) && e.code === 'RolledBack') return null;
    // The members were changing: the owners named one another until the client gave up following them
    // (a typed answer that changed nothing, like a refusal).
    if (isDseError(e) && e.code === 'WrongOwner') return null;
    // Sent to a node removed meanwhile: it never ran.
    if (isDseError(e) && e.code === 'NodeRemoved') return null;
    // Under way at a node removed meanwhile: no answer will come (what it did is checked in state).
    if (isDseError(e) && e.code === 'Orphaned') return null;
    if (isDseError(e) && e.code === 'SessionRolledBack') {
      client.resume();
      return null;
    }
    throw e;
  }
}

/**
 * No orphans in service state: every service record carries the version that wrote it (`v`); a node
 * restored to `toVersion` must hold none written above it.
 */
export function checkRecordVersions(c: Checker, node: NodeId, toVersion: Version, view: NodeView, t: number, prefixes: readonly string[]): void {
  for (const [key, value] of view.appState) {
    if (!prefixes.some((p) => key.startsWith(p))) continue;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const v = value.v;
    if (typeof v === 'number' && v > toVersion) c.fail('no-orphans', `${node} restored to ${toVersion} still holds ${key} written at ${v}`, t);
  }
}

/** A node's state as a `get`, for the services' own readers. */
export function getter(view: NodeView | undefined): { get(key: string): Json | undefined } {
  return { get: (key) => view?.appState.get(key) };
}

export function obj(j: Json): Record<string, Json> {
  return typeof j === 'object' && j !== null && !Array.isArray(j) ? j : {};
}

/**
 * Outcomes of one service op, with payload and result as objects. A request answered `WrongOwner` (the
 * node did not own the unit: it changed nothing, and the client sent it again to the owner) is left out.
 */
export function outcomesOf(
  outcomes: readonly RequestOutcome[],
  svc: string,
  op?: string,
): { o: RequestOutcome; p: Record<string, Json>; r: Record<string, Json> }[] {
  const out = [];
  for (const o of outcomes) {
    const p = obj(o.payload);
    if (p.svc !== svc || (op !== undefined && p.op !== op)) continue;
    if (wrongOwnerOf(o.result) !== null) continue;
    out.push({ o, p, r: obj(o.result) });
  }
  return out;
}

/** The members at the end of the run (the units' owners): the membership actor's last, or the nodes. */
export function membersOf(env: Pick<WorkloadEnv, 'nodes' | 'members'> | null): readonly NodeId[] {
  if (env === null) return [];
  return env.members?.() ?? env.nodes;
}

/** With membership, the nodes whose state holds `key` (a unit moves: it may be anywhere). */
export function holders(views: ReadonlyMap<NodeId, NodeView>, key: string): NodeId[] {
  const out: NodeId[] = [];
  for (const [n, v] of views) if (v.appState.has(key)) out.push(n);
  return out;
}
