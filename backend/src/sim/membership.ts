import type { Json, NodeId } from '@dse/shared';
import { fromJson, isDseError, ownerOf, toJson, unitOfStateKey } from '@dse/shared';
import { removedReplyJson } from '../core/caller-table';
import type { RetiredNode, SentMessage } from '../core/removed';
import type { Session, SessionHost, SpeculativeResult } from '../core/session';
import type { PlacementView } from '../services/common';
import type { MembershipStatus } from '../services/membership';
import type { Checker, NodeView } from './checker';
import type { Rng } from './rng';

/** What the membership actor needs of the simulated world. */
export interface MembershipWorld {
  rng: Rng;
  host: SessionHost;
  /** Every node process of the world (members or not). */
  nodeIds: readonly NodeId[];
  sleep(ms: number): Promise<void>;
  now(): number;
  /** The node's process is running (not crashed, not removed). */
  isUp(id: NodeId): boolean;
  /**
   * Kills `id` for good and takes it out of the runtime (the coordinator forgets it once the recovery
   * of its failure is over); resolves with its committed app state, read from storage at the cut.
   */
  killAndRemove(id: NodeId): Promise<RetiredNode>;
  /**
   * Stops `id`, drained, without a failure when it can (it leaves, its last version commits, the
   * coordinator forgets it without a world-line); as `killAndRemove` when a fault gets in the way.
   */
  leaveAndRemove(id: NodeId): Promise<RetiredNode>;
  /** What `id`, removed for good, left: its committed state at its final cut entry, read from storage again. */
  readRetired(id: NodeId): Promise<RetiredNode>;
  /**
   * Whether the control plane stops half-way through this change, as a server killed between two nodes:
   * after how many of the `n` nodes it is sent to (from 1 to n - 1), or null.
   */
  interruptAfter(n: number): number | null;
  /** The planted bug `membership-interrupted-not-completed`: the control plane, started again, does not bring the nodes behind forward. */
  plantedNoCompletion: boolean;
  /** A line in the trace shown with a violation. */
  note(message: string): void;
  fail(message: string): void;
}

export type MembershipChangeKind = 'add' | 'drain' | 'remove-crashed';

/**
 * The changes made while the workload runs, by default. A member removed while down is not among them:
 * a session whose request was on its way to that node when it died waits for its answer for good (the
 * runtime has no way yet to decide a request to a node that is gone), so the run cannot settle. It is
 * made once the workload has settled instead (`removeOneCrashed`); `--kinds` can still ask for it during
 * the workload, to see that.
 */
export const DURING_WORKLOAD: readonly MembershipChangeKind[] = ['add', 'drain'];

/** How long (virtual ms) one change may take before the actor reports it as a liveness violation. */
const CHANGE_LIMIT_MS = 5000;

/**
 * The simulator's control plane for membership, as the live server's `MembershipControl` does it: one
 * change at a time, each the request `{pl: 'view', v, members, prev, inherit?}` sent through one session
 * to every node concerned (old ∪ new members; without the removed node when it is down), sent again
 * after a rollback until every answer has committed, then done once every member says (`{pl: 'status'}`)
 * it is at the version and waits for no hand-off (and a drained node holds no unit).
 *
 * Changes, drawn from the run's random source: add a node that is not a member; drain a live member
 * (the view without it goes to the old members; once it holds nothing it is stopped for good and a
 * `retire` change of the same members inherits its committed replies, as the live cluster does);
 * remove a member that is down (the actor kills it, the runtime forgets it once it has recovered from
 * the failure, and its committed state, read from storage at the frozen cut, goes as `inherit` to the
 * remaining members). At least two members stay.
 */
export class MembershipActor {
  readonly view: { version: number; members: NodeId[] };
  /** The changes made, for the run's result: `v<version> <kind> <node>`. */
  readonly changes: string[] = [];
  busy = false;
  private control: Session | null = null;
  /** How many times the control plane stopped half-way and started again. */
  restarts = 0;
  /** Nodes behind the newest change that the control plane, started again, brought forward. */
  completed = 0;
  private reader: Session | null = null;
  private readonly removed = new Set<NodeId>();

  constructor(
    private readonly w: MembershipWorld,
    founders: readonly NodeId[],
    /** Shared with the clients: they learn a newer version from WrongOwner answers too. */
    private readonly clientView: PlacementView,
    private readonly kinds: readonly MembershipChangeKind[] = DURING_WORKLOAD,
  ) {
    this.view = { version: 0, members: [...founders].sort() };
  }

  get members(): readonly NodeId[] {
    return this.view.members;
  }

  /** Runs `count` changes at random times within `withinMs`, one after the other. */
  async run(count: number, withinMs: number, stillOn: () => boolean): Promise<void> {
    const at = Array.from({ length: count }, () => 20 + this.w.rng.next() * withinMs).sort((a, b) => a - b);
    let now = 0;
    for (const t of at) {
      await this.w.sleep(Math.max(1, t - now));
      now = t;
      if (!stillOn()) return;
      const choice = this.choose();
      if (choice === null) continue;
      this.busy = true;
      try {
        await this.apply(choice.kind, choice.node);
      } finally {
        this.busy = false;
      }
    }
  }

  /** Kills a member (one of at least three) for good and removes it: its committed state goes to the others. */
  async removeOneCrashed(): Promise<void> {
    // One change at a time, as the live control plane does: a change of the run still under way goes first.
    while (this.busy) await this.w.sleep(5);
    if (this.view.members.length <= 2) return;
    const node = this.w.rng.pick(this.view.members);
    this.busy = true;
    try {
      await this.apply('remove-crashed', node);
    } finally {
      this.busy = false;
    }
  }

  private choose(): { kind: MembershipChangeKind; node: NodeId } | null {
    const { rng } = this.w;
    const members = this.view.members;
    const outside = this.w.nodeIds.filter((n) => !members.includes(n) && !this.removed.has(n));
    const options: { kind: MembershipChangeKind; node: NodeId }[] = [];
    for (const kind of this.kinds) {
      if (kind === 'add') for (const n of outside) options.push({ kind, node: n });
      if (members.length <= 2) continue;
      if (kind === 'drain') for (const n of members) options.push({ kind, node: n });
      // A node is killed for good only while another node can still be added (the world keeps enough nodes).
      if (kind === 'remove-crashed' && this.w.nodeIds.length - this.removed.size > 3) for (const n of members) options.push({ kind, node: n });
    }
    if (options.length === 0) return null;
    // Each kind equally likely, then the node.
    const kinds = [...new Set(options.map((o) => o.kind))];
    const kind = rng.pick(kinds);
    return rng.pick(options.filter((o) => o.kind === kind));
  }

  /**
   * `retire` follows every drain, as on the live cluster: the drained node (no member, holding nothing)
   * leaves and is stopped (without a world-line when no fault gets in the way), and a change of the same members inherits what is left of it, so that calls
   * still waiting on it are answered from its committed replies.
   */
  private async apply(kind: MembershipChangeKind | 'retire', node: NodeId): Promise<void> {
    const before = { version: this.view.version, members: [...this.view.members] };
    const v = before.version + 1;
    const started = this.w.now();
    // Who the change is sent to: the new members, and for a drain the node leaving too (it hands off).
    const members = kind === 'add' ? [...before.members, node].sort() : kind === 'retire' ? before.members : before.members.filter((n) => n !== node);
    const to = kind === 'drain' ? before.members : members;
    let inherit: { from: NodeId; state: Record<string, Json>; replies: Json[]; sent: SentMessage[]; applied: RetiredNode['applied'] } | undefined;
    if (kind === 'retire' || kind === 'remove-crashed') {
      // Stopped for good (a drained node holds nothing by now, and leaves quietly); what is left of it at the cut goes to its heirs.
      const left = kind === 'retire' ? await this.w.leaveAndRemove(node) : await this.w.killAndRemove(node);
      inherit = { from: node, state: left.state, replies: left.replies.map(removedReplyJson), sent: left.sent, applied: left.applied };
      this.removed.add(node);
    }
    this.changes.push(`v${v} ${kind} ${node}`);
    this.w.note(`membership v${v}: ${kind} ${node}${inherit !== undefined ? ` (its state at the cut read, ${Object.keys(inherit.state).length} keys)` : ''}`);
    const payload = toJson({ pl: 'view', v, members, prev: before.members, ...(inherit !== undefined ? { inherit } : {}) });
    const what = `membership version ${v} (${kind} ${node})`;
    // The control plane may stop half-way (a server killed between two nodes): the nodes told so far
    // keep the change (committed), the others do not. Started again, it finishes the change at the
    // nodes behind (`completeInterrupted`); a change nobody kept is made again, as a client would ask again.
    const cut = this.w.interruptAfter(to.length);
    let done = false;
    if (cut !== null) {
      await this.sendUntilCommitted(to.slice(0, cut), payload, what, started);
      this.w.note(`${what}: the control plane stops after ${to.slice(0, cut).join(', ')}, and starts again`);
      this.control = null;
      this.reader = null;
      this.restarts++;
      done = (await this.completeInterrupted(started)) >= v;
    }
    if (!done && !(await this.sendUntilCommitted(to, payload, what, started))) return;
    this.view.version = v;
    this.view.members = members;
    this.w.note(`membership v${v} committed: members ${members.join(',')}`);
    if (v > this.clientView.version) {
      this.clientView.version = v;
      this.clientView.members = [...members];
    }
    // Done once every member is at v and waits for nothing, and a drained node holds nothing.
    for (;;) {
      if (this.w.now() - started > CHANGE_LIMIT_MS) {
        this.w.fail(`membership version ${v} (${kind} ${node}): hand-offs not done after ${CHANGE_LIMIT_MS} ms`);
        return;
      }
      const asked = kind === 'drain' ? [...members, node] : members;
      const all = await Promise.all(asked.map((n) => this.status(n)));
      // A node behind the version (its apply rolled back after the control plane stopped half-way): finished there too.
      if (all.some((st) => st !== null && st.version < v)) await this.completeInterrupted(started);
      const ok = all.every((st, i) => {
        if (st === null || st.version < v || st.waitingFor.length > 0) return false;
        return asked[i] !== node || kind !== 'drain' || (Object.keys(st.units).length === 0 && st.pinned.length === 0);
      });
      if (ok) {
        this.w.note(`membership v${v}: hand-offs done`);
        if (kind === 'drain') await this.apply('retire', node);
        return;
      }
      await this.w.sleep(5);
    }
  }

  /**
   * Sends `payload` to every node of `to` until every answer has committed (a rollback takes the nodes'
   * views back with it: send again); false, with a liveness violation, past the change's time limit.
   */
  private async sendUntilCommitted(to: readonly NodeId[], payload: Json, what: string, started: number): Promise<boolean> {
    for (;;) {
      if (this.w.now() - started > CHANGE_LIMIT_MS) {
        this.w.fail(`${what} not committed after ${CHANGE_LIMIT_MS} ms`);
        return false;
      }
      // A control plane started again has sessions of its own.
      const s = (this.control ??= this.w.host.session(this.restarts === 0 ? 'membership' : `membership.${this.restarts}`));
      if (s.rolledBackError !== null) s.resume();
      try {
        const answers: SpeculativeResult[] = [];
        for (const n of to) answers.push(await s.request(n, payload));
        const refused = answers.find((a) => typeof a.result === 'object' && a.result !== null && 'error' in a.result);
        if (refused !== undefined) {
          // A node still waiting for the hand-offs of the version before (Conflict): again, shortly.
          await this.w.sleep(10);
          continue;
        }
        await Promise.all(answers.map((a) => a.commit()));
        return true;
      } catch (e) {
        if (!isDseError(e) || (e.code !== 'RolledBack' && e.code !== 'SessionRolledBack')) throw e;
        await this.w.sleep(5);
      }
    }
  }

  /**
   * As the live control plane does before every change (`MembershipControl.refresh`): reads every live
   * node's placement and sends the newest change again to the nodes behind it that it was for, with what a
   * node removed at that version left (read again from storage). Returns the newest version.
   */
  private async completeInterrupted(started: number): Promise<number> {
    for (;;) {
      const live = this.w.nodeIds.filter((n) => !this.removed.has(n) && this.w.isUp(n));
      const seen = await Promise.all(live.map((n) => this.status(n)));
      if (seen.some((s) => s === null) || seen.length === 0) {
        if (this.w.now() - started > CHANGE_LIMIT_MS) return this.view.version;
        await this.w.sleep(5);
        continue;
      }
      const all = seen as MembershipStatus[];
      const newest = all.reduce((a, b) => (b.version > a.version ? b : a));
      const prev = newest.prev ?? [];
      for (const s of all) {
        if (s.version >= newest.version || !(newest.members.includes(s.node) || prev.includes(s.node))) continue;
        // A member one version behind misses exactly what that version removed; a node added but never told
        // (no member in its own view) misses nothing of the removals before it joined.
        const missed = s.members.includes(s.node) && s.version === newest.version - 1 ? newest.gone.filter((g) => !s.gone.includes(g)) : [];
        const left = missed.length === 1 ? await this.w.readRetired(missed[0]!) : undefined;
        const inherit =
          left !== undefined
            ? { from: missed[0]!, state: left.state, replies: left.replies.map(removedReplyJson), sent: left.sent, applied: left.applied }
            : undefined;
        this.w.note(
          `membership: ${s.node} is at version ${s.version}, behind ${newest.version}: sent to it again${missed.length > 1 ? ` (it misses ${missed.join(', ')})` : ''}`,
        );
        if (this.w.plantedNoCompletion) continue;
        this.completed++;
        const change = toJson({ pl: 'view', v: newest.version, members: newest.members, prev, ...(inherit !== undefined ? { inherit } : {}) });
        if (!(await this.sendUntilCommitted([s.node], change, `membership version ${newest.version} at ${s.node}`, started))) return newest.version;
      }
      return newest.version;
    }
  }

  /** A node's membership status (speculative: enough to know the hand-offs arrived), or null if that failed. */
  private async status(n: NodeId): Promise<MembershipStatus | null> {
    const s = (this.reader ??= this.w.host.session('membership.status'));
    if (s.rolledBackError !== null) s.resume();
    try {
      const r = await s.request(n, { pl: 'status' });
      return fromJson<MembershipStatus>(r.result);
    } catch (e) {
      if (!isDseError(e) || (e.code !== 'RolledBack' && e.code !== 'SessionRolledBack')) throw e;
      return null;
    }
  }
}

const LEFTOVER = ['pl/held/', 'pl/pin/', 'pl/await/', 'pl/early/'];

/**
 * Invariant `placement`, at the end of a run with membership changes: every unit of service state is
 * held by exactly one node, its owner under the final members; every member is at the final version;
 * no request is still held for a hand-off, no unit pinned or awaited, no hand-off left unapplied.
 */
export function checkPlacement(c: Checker, t: number, views: ReadonlyMap<NodeId, NodeView>, view: { version: number; members: readonly NodeId[] }): void {
  const where = new Map<string, NodeId>();
  for (const [n, nv] of views) {
    const own = nv.appState.get('pl/view') as { v?: number } | undefined;
    if (view.members.includes(n) && (own?.v ?? 0) !== view.version)
      c.fail('placement', `${n} is at placement version ${own?.v ?? 0}, the members' is ${view.version}`, t);
    for (const [k, value] of nv.appState) {
      if (LEFTOVER.some((p) => k.startsWith(p))) {
        c.fail('placement', `${n} still holds ${k} after the run settled`, t);
        continue;
      }
      const unit = unitOfStateKey(k, value);
      if (unit === null) continue;
      const owner = ownerOf(unit, view.members);
      if (owner !== n)
        c.fail('placement', `${n} holds ${k} (unit ${unit}), whose owner is ${owner} (members ${view.members.join(',')}, version ${view.version})`, t);
      const other = where.get(unit);
      if (other !== undefined && other !== n) c.fail('placement', `unit ${unit} is on ${other} and on ${n}`, t);
      where.set(unit, n);
    }
  }
}
