import type { InspectionEvent, Json, NodeId } from '@dse/shared';
import { DseError, fromJson, isDseError, toJson } from '@dse/shared';
import type { RetiredNode } from '../core/removed';
import type { Session, SpeculativeResult } from '../core/session';
import type { PlacementView } from '../services/common';
import type { MembershipStatus, ViewChange } from '../services/membership';

/** What the membership control needs of the cluster. */
export interface MembershipHost {
  session(name: string): Session;
  /** Node ids the server runs (removed ones excluded). */
  nodeIds(): NodeId[];
  status(id: NodeId): 'up' | 'recovering' | 'down';
  /**
   * Removes a node that is down for good: its versions above the cut roll back, the requests waiting on
   * it are decided; resolves to its committed app state (at the cut), read from storage.
   */
  retire(id: NodeId): Promise<RetiredNode>;
  /** What a node removed for good left (its committed state at its final cut entry), read from storage again. */
  readRetired(id: NodeId): Promise<RetiredNode>;
  log(line: string): void;
  emit(e: InspectionEvent): void;
  now(): number;
}

export interface MembershipChangeResult {
  version: number;
  members: NodeId[];
  /** `joined`: a new member; `drained`: a live node handed its units over; `restored`: a down node's committed state was taken over from storage. */
  how: 'joined' | 'drained' | 'restored';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The control plane's side of membership (the runtime's side is `services/membership.ts`): one change
 * at a time (another asked meanwhile is refused with a typed Conflict), each sent as a request to every node concerned through a session of the server, and
 * done when every answer has committed and every hand-off has arrived. The placement the server routes
 * by (`view`) is what the nodes hold: read from them at start and after every change.
 */
export class MembershipControl {
  /** The placement the server routes by; the typed clients of the workload share this object. */
  readonly view: PlacementView;
  /** When the change under way gives up (a typed Timeout): `timeoutMs` after it started. */
  private deadline = 0;
  private session: Session | null = null;

  constructor(
    private readonly host: MembershipHost,
    founders: readonly NodeId[],
    /** `timeoutMs`: how long one change may take; `waitMs`: how long a change waits for the one under way before it is refused. */
    private readonly opts: { timeoutMs: number; waitMs: number } = { timeoutMs: 25_000, waitMs: 10_000 },
  ) {
    this.view = { version: 0, members: [...new Set(founders)].sort() };
  }

  private sessions = 0;

  /**
   * The control plane's session. A new one (a new name) after a timeout: a session that asked a node
   * which then died waits to learn whether that request survived, and must not hold changes back.
   */
  private control(): Session {
    this.session ??= this.host.session(`membership.${++this.sessions}`);
    return this.session;
  }

  /**
   * Status reads go through sessions of their own, one per node: a session carries the dependencies of
   * its earlier answers, so one session reading every node would make each node's versions depend on
   * the others' (and a failure of one roll back what others did meanwhile). One stuck behind a dead
   * node holds no change back either.
   */
  private readonly statusSessions = new Map<NodeId, Session>();
  private reader(node: NodeId): Session {
    let s = this.statusSessions.get(node);
    if (s === undefined) {
      s = this.host.session(`membership.status.${node}.${++this.sessions}`);
      this.statusSessions.set(node, s);
    }
    return s;
  }

  /**
   * Runs `fn` as the one change under way (`what` names it); refused, before `fn` does anything, with a
   * typed Conflict when another is still running after `waitMs`.
   */
  async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    // A change under way is waited for a little (a remote node's join starts by itself, a remove may follow at once).
    for (const until = Date.now() + this.opts.waitMs; this.busy !== null && Date.now() < until;) await sleep(50);
    if (this.busy !== null) throw new DseError('Conflict', `a membership change is under way (${this.busy}): try again when it is done`);
    this.busy = what;
    this.deadline = Date.now() + this.opts.timeoutMs;
    try {
      return await fn();
    } finally {
      this.busy = null;
    }
  }

  /** The change under way, if any (one at a time: another is refused with a typed Conflict). */
  busy: string | null = null;

  /** Asks one node for its membership status (the answer is speculative: enough to route by). */
  async statusOf(node: NodeId, timeoutMs = 5000): Promise<MembershipStatus> {
    const s = this.reader(node);
    if (s.rolledBackError !== null) s.resume();
    const r = await withTimeout(s.request(node, { pl: 'status' }), timeoutMs, `membership status of ${node}`).catch((e: unknown) => {
      if (isDseError(e) && e.code === 'Timeout' && this.statusSessions.get(node) === s) this.statusSessions.delete(node);
      throw e;
    });
    if (typeof r.result === 'object' && r.result !== null && 'error' in r.result)
      throw new DseError('Conflict', `membership status of ${node}: ${JSON.stringify(r.result.error)}`);
    return fromJson<MembershipStatus>(r.result);
  }

  /**
   * Reads the newest placement the up nodes hold. `strict` (before a change): every up node must answer,
   * or the change is refused (a typed Timeout, nothing changed). A server just restarted knows no
   * placement until the nodes tell it; a change computed from what one lagging node said, or from none,
   * would send an old version number, which the nodes take for one they applied already (a chaos run
   * "removed" a down node as placement version 1 while the nodes were at 20, and its units were lost).
   */
  async refresh(strict = false): Promise<PlacementView> {
    // A read that fails for a moment (rolled back by a recovery under way) is asked again, for a while.
    const until = Math.min(this.deadline, Date.now() + 10_000);
    for (;;) {
      const up = this.host.nodeIds().filter((n) => this.host.status(n) === 'up');
      const all = await Promise.allSettled(up.map((n) => this.statusOf(n)));
      for (const s of all) {
        if (s.status !== 'fulfilled') continue;
        if (s.value.version > this.view.version) {
          this.view.version = s.value.version;
          this.view.members = [...s.value.members].sort();
        }
      }
      const silent = up.filter((_, i) => all[i]!.status !== 'fulfilled');
      if (strict && up.length > 0 && silent.length === 0) {
        await this.completeInterrupted(all.map((s) => (s as PromiseFulfilledResult<MembershipStatus>).value));
        return { ...this.view, members: [...this.view.members] };
      }
      if (!strict) return { ...this.view, members: [...this.view.members] };
      if (Date.now() > until)
        throw new DseError(
          'Timeout',
          `membership: the placement could not be read from ${silent.length > 0 ? silent.join(', ') : 'any node (none is up)'}; nothing changed, try again`,
        );
      await sleep(200);
    }
  }

  /** Makes `node` (already running) a member: the units it wins are handed to it. */
  join(node: NodeId): Promise<MembershipChangeResult> {
    return this.exclusive(`join ${node}`, () => this.joinNow(node));
  }

  /** `join`, inside `exclusive`. */
  async joinNow(node: NodeId): Promise<MembershipChangeResult> {
    {
      await this.waitUp([node]);
      const before = await this.refresh(true);
      if (before.members.includes(node)) return { version: before.version, members: before.members, how: 'joined' as const };
      await this.allUp(before.members, `${node} cannot join`);
      const members = [...before.members, node].sort();
      await this.change(before, members, [...before.members, node], `join ${node}`);
      return { version: this.view.version, members: [...this.view.members], how: 'joined' as const };
    }
  }

  /**
   * Takes `node` out of the members. Up: it hands its units over (a running workflow finishes first),
   * and is then stopped by the caller. Down: its committed state is read from storage and taken over by
   * the nodes that own its units now.
   */
  leave(node: NodeId): Promise<MembershipChangeResult> {
    return this.exclusive(`remove ${node}`, () => this.leaveNow(node));
  }

  /** `leave`, inside `exclusive`. */
  async leaveNow(node: NodeId): Promise<MembershipChangeResult> {
    const before = await this.refresh(true);
    if (!before.members.includes(node)) {
      // Out of the placement already, but still running: a drain that gave up waiting for a workflow.
      if (this.host.nodeIds().includes(node)) return this.retireLeft(node, false);
      return { version: before.version, members: before.members, how: 'drained' as const };
    }
    const members = before.members.filter((n) => n !== node);
    if (members.length === 0) throw new DseError('Conflict', 'the last member cannot leave');
    await this.allUp(members, `${node} cannot leave`);
    if (this.host.status(node) === 'up') {
      await this.change(before, members, before.members, `drain ${node}`);
      return this.retireLeft(node, await this.waitDrained(node));
    }
    const left = await this.host.retire(node);
    await this.change(before, members, members, `restore ${node}`, { from: node, ...left });
    return { version: this.view.version, members: [...this.view.members], how: 'restored' as const };
  }

  /**
   * Stops `node`, out of the placement, and tells the members what is left of it (a change of the same
   * members that inherits from it), as for a node removed while down: the replies its committed state holds
   * answer the calls still waiting on it (a workflow's step sent to it before the drain would otherwise
   * wait forever for a process that is gone), and a unit still there (`drained` false: a workflow that did
   * not finish in time) goes on at its owner, from its committed state.
   */
  private async retireLeft(node: NodeId, drained: boolean): Promise<MembershipChangeResult> {
    this.deadline = Date.now() + this.opts.timeoutMs;
    const left = await this.host.retire(node);
    const now = await this.refresh(true);
    await this.change(now, now.members, now.members, `retire ${node}`, { from: node, ...left });
    return { version: this.view.version, members: [...this.view.members], how: drained ? ('drained' as const) : ('restored' as const) };
  }

  /**
   * A change this control plane did not finish (the server stopped after some nodes had applied it, before
   * others): the nodes still before it get it now, the same change (what a removed node left read again from
   * storage), before anything else changes. Until then a member a version behind refuses every later change,
   * the members ahead wait for its hand-off, and a node added but not told answers from no placement at all.
   */
  private async completeInterrupted(seen: readonly MembershipStatus[]): Promise<void> {
    if (seen.length === 0) return;
    const newest = seen.reduce((a, b) => (b.version > a.version ? b : a));
    const prev = newest.prev ?? [];
    // Only the nodes the change was for: its members, and those it took out (a drained node hands off).
    const behind = seen.filter((s) => s.version < newest.version && (newest.members.includes(s.node) || prev.includes(s.node)));
    for (const s of behind) {
      // A member one version behind misses exactly what that version removed; a node added but never told
      // (no member in its own view) misses nothing of the removals before it joined, which it never had a part in.
      const missed = s.members.includes(s.node) && s.version === newest.version - 1 ? newest.gone.filter((g) => !(s.gone ?? []).includes(g)) : [];
      if (missed.length > 1)
        throw new DseError(
          'Conflict',
          `membership: ${s.node} is at placement version ${s.version} and misses what ${missed.join(', ')} left; it cannot catch up`,
        );
      const inherit = missed.length === 1 ? { from: missed[0]!, ...(await this.host.readRetired(missed[0]!)) } : undefined;
      this.host.log(
        `membership: ${s.node} is at placement version ${s.version}, the others at ${newest.version} (a change the server did not finish): sent to it now`,
      );
      await this.change({ version: newest.version - 1, members: prev }, newest.members, [s.node], `complete v${newest.version} at ${s.node}`, inherit);
    }
  }

  /** Sends version `before.version + 1` to every node of `to`, until every answer has committed; then waits for the hand-offs. */
  private async change(before: PlacementView, members: NodeId[], to: NodeId[], what: string, inherit?: ViewChange['inherit']): Promise<void> {
    const v = before.version + 1;
    const say = (phase: 'sent' | 'committed' | 'handedOver'): void =>
      this.host.emit({ type: 'placementChanged', t: this.host.now(), version: v, members: [...members], phase, change: what });
    const payload: Json = toJson({ pl: 'view', v, members, prev: before.members, ...(inherit !== undefined ? { inherit } : {}) });
    await this.waitUp(to);
    const deadline = this.deadline;
    for (let attempt = 1; ; attempt++) {
      if (Date.now() > deadline) throw new DseError('Timeout', `membership version ${v}: not committed in time (${this.opts.timeoutMs} ms for a change)`);
      const s = this.control();
      try {
        const answers: SpeculativeResult[] = [];
        if (attempt === 1) say('sent');
        for (const n of to) answers.push(await withTimeout(s.request(n, payload), 10_000, `membership version ${v} at ${n}`));
        const ahead = answers
          .map((a) => a.result as { already?: unknown; version?: unknown } | null)
          .find(
            (r): r is { already: true; version: number } =>
              r !== null && typeof r === 'object' && r.already === true && typeof r.version === 'number' && r.version > v,
          );
        if (ahead !== undefined) {
          // A node past this version: the placement this change was computed from is stale. Nothing changed
          // (a node at or past v ignores it); the next change reads the placement again.
          throw new DseError('Conflict', `membership version ${v}: the nodes are at version ${ahead.version} already; nothing changed, try again`);
        }
        const refused = answers.find((a) => typeof a.result === 'object' && a.result !== null && 'error' in a.result);
        if (refused !== undefined) {
          // A node still handing over the version before (Conflict): try again shortly.
          this.host.log(`membership version ${v}: ${JSON.stringify((refused.result as { error: Json }).error)}; trying again`);
          await sleep(200);
          continue;
        }
        await Promise.all(answers.map((a) => withTimeout(a.commit(), 20_000, `membership version ${v}: commit`)));
        break;
      } catch (e) {
        // Rolled back by a failure (the nodes' views went back with it): acknowledge and send again.
        this.host.log(`membership version ${v}, attempt ${attempt}: ${isDseError(e) ? e.code : String(e)}; sending again`);
        if (isDseError(e) && (e.code === 'RolledBack' || e.code === 'SessionRolledBack')) s.resume();
        else if (isDseError(e) && e.code === 'Timeout') {
          // A node that does not answer: a fresh session, in case this one is stuck behind it.
          this.session = null;
        } else throw e;
        await sleep(200);
      }
    }
    this.view.version = v;
    this.view.members = [...members];
    say('committed');
    await this.waitHandedOver(members);
    say('handedOver');
  }

  /**
   * Every member must take part in a change (each hands over what it loses, and must hear that it lost
   * it): with one down, the change is refused at once, a typed Conflict that says what to do.
   */
  private async allUp(members: readonly NodeId[], what: string): Promise<void> {
    // A recovery under way (members `recovering` for a moment) is waited out, briefly.
    const until = Math.min(this.deadline, Date.now() + 5000);
    while (Date.now() < until && members.some((n) => this.host.status(n) === 'recovering')) await sleep(100);
    const down = members.filter((n) => this.host.status(n) !== 'up');
    if (down.length > 0)
      throw new DseError(
        'Conflict',
        `${what} while ${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} not up: restart ${down.length === 1 ? 'it' : 'them'}, or remove ${down.length === 1 ? 'it' : 'them'}, first`,
      );
  }

  private async waitUp(nodes: readonly NodeId[]): Promise<void> {
    const deadline = this.deadline;
    while (nodes.some((n) => this.host.status(n) !== 'up')) {
      if (Date.now() > deadline)
        throw new DseError(
          'Timeout',
          `membership: ${nodes.filter((n) => this.host.status(n) !== 'up').join(', ')} not up in time (${this.opts.timeoutMs} ms for a change)`,
        );
      await sleep(100);
    }
  }

  /** Until no member waits for a hand-off of the current version. */
  private async waitHandedOver(members: readonly NodeId[]): Promise<void> {
    const deadline = this.deadline;
    for (;;) {
      const all = await Promise.allSettled(members.map((n) => this.statusOf(n)));
      if (all.every((s) => s.status === 'fulfilled' && s.value.version >= this.view.version && s.value.waitingFor.length === 0)) return;
      if (Date.now() > deadline)
        throw new DseError('Timeout', `membership version ${this.view.version}: hand-offs not arrived in time (${this.opts.timeoutMs} ms for a change)`);
      await sleep(100);
    }
  }

  /**
   * Until `node` holds no unit (its running workflows done and handed over), and what it did until then
   * has committed: whatever depends on it then survives its stop. False when a unit is still there at the
   * deadline (a workflow still running): it is then taken over from the node's committed state.
   */
  private async waitDrained(node: NodeId): Promise<boolean> {
    const deadline = this.deadline;
    for (;;) {
      const s0 = this.control();
      if (s0.rolledBackError !== null) s0.resume();
      const a = await withTimeout(s0.request(node, { pl: 'status' }), 5000, `membership status of ${node}`).catch(() => null);
      const s = a === null ? null : fromJson<MembershipStatus>(a.result);
      if (a !== null && s !== null && Object.keys(s.units ?? {}).length === 0 && (s.pinned ?? []).length === 0) {
        const done = await withTimeout(a.commit(), 20_000, `${node}: the drained state committed`).then(
          () => true,
          () => false,
        );
        if (done) return true;
      }
      if (Date.now() > deadline) {
        this.host.log(`membership: ${node} still holds units after ${this.opts.timeoutMs} ms (a workflow still running?): taken over from its committed state`);
        return false;
      }
      await sleep(100);
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | null = null;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DseError('Timeout', `${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}
