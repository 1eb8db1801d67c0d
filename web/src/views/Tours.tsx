import { useCallback, useEffect, useRef, useState } from 'react';
import type { ClusterConfig, Command, CommandResults, CommandType, Json, NodeId, WorkloadConfig } from '@dse/shared';
import type { PlaygroundModel, VersionView } from '../model/model';
import { dependencyIndex, explainRollback, killPreview, selectionOf } from '../model/analysis';
import { deriveServices } from '../model/services';
import { answerLatencies, percentiles } from '../model/stats';
import { CLASS_PACE, CLASS_RATE } from '../pace';
import type { Highlight } from './SpaceTime';

/**
 * Guided tours: short lessons on the live cluster, one idea per step. Each sets its scene through
 * the ordinary commands at classroom pace, holds the cluster (a real hold: no new work, no
 * checkpoint) while it asks the learner to predict, and grades the prediction from the events of
 * that very run. A question is asked only when its choices differ; when the cluster does not offer
 * such a state, the tour sets it up again. Nothing on the page shows the answer before the choice.
 */

export type DrawerTab = 'nodes' | 'graph' | 'rollbacks' | 'requests' | 'events' | 'services' | 'race' | 'charts';

/** A command's answer, or its error (tours show refusals such as SessionRolledBack as facts). */
export type CallResult<C extends CommandType> = { ok: true; value: CommandResults[C] } | { ok: false; code: string; message: string };

/** What a tour may do with the page and the cluster. */
export interface TourApi {
  model(): PlaygroundModel;
  call<C extends CommandType>(c: Extract<Command, { type: C }>, timeoutMs?: number): Promise<CallResult<C>>;
  setConfig(patch: Partial<ClusterConfig>): Promise<boolean>;
  setWorkload(w: WorkloadConfig): Promise<boolean>;
  kill(node: NodeId): Promise<boolean>;
  restart(node: NodeId): Promise<boolean>;
  /** Holds (true) or releases (false) the cluster itself. */
  hold(on: boolean): Promise<boolean>;
  /** The tour's highlight on the stage (the rest dims); null clears it. */
  highlight(h: ReadonlyMap<string, Highlight> | null): void;
  /** Highlight what the recovery to this world-line discarded and kept, with its why-edges (null clears). */
  focusRollback(worldLine: number | null): void;
  selectRequest(r: { session: string; seq: number } | null): void;
  openDrawer(tab: DrawerTab | null): void;
  /** Polls the model until `pred` holds or the time is up. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean>;
  sleep(ms: number): Promise<void>;
  /** Values a tour keeps between its steps. */
  memo: Record<string, unknown>;
}

export interface Reveal {
  /** What happened, from the events. */
  text: string;
  /** The choices the events bear out (several when the run makes more than one true); empty when they do not decide. */
  correct: number[];
}

export interface TourStep {
  /** What the learner reads (two or three sentences). */
  text: string;
  /** Sets the scene when the step opens; returns facts (from events) to show under the text. */
  enter?(api: TourApi): Promise<string | undefined>;
  /** A prediction to make before moving on. */
  predict?: { question: string; choices: string[]; reveal(api: TourApi, picked: number): Promise<Reveal> };
}

export interface Tour {
  id: string;
  title: string;
  /** One line for the list of tours. */
  blurb: string;
  steps: TourStep[];
}

// ------------------------------------------------------------------ helpers

const uncommitted = (v: VersionView | undefined): boolean => v !== undefined && (v.state === 'speculative' || v.state === 'persisting');

const uncommittedNow = (m: PlaygroundModel): string[] => {
  const out: string[] = [];
  for (const id of m.laneIds()) for (const v of m.lane(id)) if (uncommitted(v)) out.push(v.key);
  return out;
};

/**
 * Uncommitted versions of the current world-line with work in them: closed (a checkpoint), or open
 * with a message applied. A node's empty open version is not work: an idle node leaves it open.
 */
function workNow(m: PlaygroundModel): string[] {
  const applied = new Set<string>();
  for (const x of m.messages.values()) if (x.deliveredVersion !== null && x.deliveredAt !== null) applied.add(`${x.to}|${x.deliveredVersion}`);
  const out: string[] = [];
  for (const id of m.laneIds())
    for (const v of m.lane(id)) {
      if (!uncommitted(v) || v.worldLine !== m.worldLine) continue;
      if (v.checkpointAt !== null || applied.has(`${v.node}|${v.version}`)) out.push(v.key);
    }
  return out;
}

const name = (m: PlaygroundModel, k: string): string => {
  const v = m.versions.get(k);
  return v === undefined
    ? k
        .split('|')
        .filter((_, i) => i !== 1)
        .join(' v')
    : `${v.node} v${v.version}`;
};

const names = (m: PlaygroundModel, keys: readonly string[], max = 6): string =>
  keys.length === 0
    ? 'none'
    : keys
        .slice(0, max)
        .map((k) => name(m, k))
        .join(', ') + (keys.length > max ? ` and ${keys.length - max} more` : '');

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

const focusOf = (keys: Iterable<string>, kind: Highlight = 'focus'): Map<string, Highlight> => new Map([...keys].map((k) => [k, kind]));

/** What the tour found, to put back when it ends. */
interface Before {
  config: Partial<ClusterConfig>;
  workload: WorkloadConfig | null;
}

/** Puts the cluster in the tour's scene: nodes up, speculative mode, precise recovery, classroom pace, this workload. */
async function prepare(api: TourApi, workload: WorkloadConfig, extra: Partial<ClusterConfig> = {}): Promise<void> {
  const m = api.model();
  if (api.memo.before === undefined) {
    const c = m.config;
    const before: Before = {
      config:
        c === null
          ? {}
          : {
              mode: c.mode,
              recovery: c.recovery,
              checkpointIntervalMs: c.checkpointIntervalMs,
              networkDelayMs: c.networkDelayMs,
              networkJitterMs: c.networkJitterMs,
              messageLoss: c.messageLoss,
            },
      workload: m.workload,
    };
    api.memo.before = before;
  }
  await api.hold(false);
  for (const id of m.laneIds()) if (m.nodes.get(id)?.status === 'down') await api.restart(id);
  const c = m.config;
  const want: Partial<ClusterConfig> = { ...CLASS_PACE, messageLoss: 0, recovery: 'precise', ...extra };
  if (c?.mode !== 'speculative') await api.setConfig({ mode: 'speculative' });
  const patch: Partial<ClusterConfig> = {};
  for (const [k, v] of Object.entries(want) as [keyof ClusterConfig, never][]) if (c === null || c[k] !== v) (patch as Record<string, unknown>)[k] = v;
  if (Object.keys(patch).length > 0) await api.setConfig(patch);
  await api.setWorkload(workload);
  await api.waitFor(
    () =>
      api
        .model()
        .laneIds()
        .every((id) => api.model().nodes.get(id)?.status === 'up'),
    30_000,
  );
}

/** Puts back what the tour found (also when the learner closes it early). */
export async function restoreCluster(api: TourApi): Promise<void> {
  api.highlight(null);
  api.focusRollback(null);
  api.selectRequest(null);
  await api.hold(false);
  const m = api.model();
  for (const id of m.laneIds()) if (m.nodes.get(id)?.status === 'down') await api.restart(id);
  const before = api.memo.before as Before | undefined;
  if (before === undefined) return;
  const c = m.config;
  const patch: Partial<ClusterConfig> = {};
  for (const [k, v] of Object.entries(before.config) as [keyof ClusterConfig, never][]) if (c === null || c[k] !== v) (patch as Record<string, unknown>)[k] = v;
  if (Object.keys(patch).length > 0) await api.setConfig(patch);
  if (before.workload !== null) await api.setWorkload(before.workload);
}

/**
 * Holds the cluster and lets what is already on the wire land: a message that arrives may still be
 * passed on once (a chained put) and may close a version by the commit-ordering rule, whose write
 * then lands; two network trips plus the writes, with room.
 */
async function holdStill(api: TourApi): Promise<void> {
  await api.hold(true);
  const c = api.model().config;
  await api.sleep(Math.min(4000, 2 * ((c?.networkDelayMs ?? 0) + (c?.networkJitterMs ?? 0)) + 600));
}

/** The caller id the events use for an API session (the server adds `@<boot>` to the name). */
function callerOf(m: PlaygroundModel, session: string): string | null {
  for (const r of m.sessions.values()) if (r.session === session || r.session.startsWith(`${session}@`)) return r.session;
  return null;
}

function sessionEvent(
  m: PlaygroundModel,
  caller: string,
  seq: number,
  status: 'speculative' | 'committed' | 'rolledBack',
): { t: number; result: Json; deps: Record<string, number> } | null {
  for (let i = m.events.length - 1; i >= 0; i--) {
    const e = m.events[i]!;
    if (e.type === 'sessionResult' && e.session === caller && e.seq === seq && e.status === status) return { t: e.t, result: e.result, deps: e.deps };
  }
  return null;
}

const short = (j: Json): string => {
  const s = JSON.stringify(j);
  return s.length > 80 ? `${s.slice(0, 79)}…` : s;
};

// ------------------------------------------------------------------ the tours

const INTRO: Tour = {
  id: 'start',
  title: 'Start here: what DSE is',
  blurb: 'durable execution without waiting for the disk, in five short steps',
  steps: [
    {
      text: 'Each lane is a node: a process that owns state and runs requests. Time runs to the right. The tour slows the cluster to classroom pace: a checkpoint every 1.5 s, a quarter-second network delay, a gentle workload.',
      async enter(api) {
        await prepare(api, { kind: 'chain', rate: CLASS_RATE });
        await api.waitFor(() => uncommittedNow(api.model()).length >= 3, 15_000);
        const m = api.model();
        return `${plural(m.laneIds().length, 'node')}, world-line ${m.worldLine}. The arrows are messages: from clients (top lane) to nodes, and between nodes.`;
      },
    },
    {
      text: 'Durable execution (Temporal, Azure Durable Functions) writes every step to storage before the next one runs: each step waits for the disk. DSE runs ahead instead. A node cuts its work into versions; a version is speculative (orange, hatched) until its checkpoint is on disk.',
      async enter(api) {
        await api.waitFor(() => uncommittedNow(api.model()).length >= 2, 10_000);
        const keys = uncommittedNow(api.model());
        api.highlight(focusOf(keys));
        return `Outlined: the ${plural(keys.length, 'version')} not yet committed right now. Their replies have already gone out.`;
      },
    },
    {
      text: 'When a node receives a message, its open version depends on the version that sent it. The runtime records every such dependency, across nodes.',
      async enter(api) {
        const m = api.model();
        const index = dependencyIndex(m);
        const withDeps = [...m.versions.values()]
          .filter((v) => Object.keys(v.deps).length > 0 && v.state !== 'rolled-back')
          .sort((a, b) => b.openedAt - a.openedAt)[0];
        if (withDeps === undefined) {
          api.highlight(null);
          return 'No version with a dependency on another node is in view yet.';
        }
        const s = selectionOf(m, index, withDeps.key);
        const h = new Map<string, Highlight>();
        for (const k of s.dependencies) h.set(k, 'dependency');
        h.set(withDeps.key, 'selected');
        api.highlight(h);
        return `${withDeps.node} v${withDeps.version} (black) depends on ${Object.entries(withDeps.deps)
          .map(([n, v]) => `${n} v${v}`)
          .join(', ')} (blue, dashed).`;
      },
    },
    {
      text: 'A version commits once it is persisted and everything it depends on has committed. The black line is the committed cut: what no failure can take back. It moves right as checkpoints land.',
      async enter(api) {
        const m = api.model();
        const keys: string[] = [];
        for (const id of m.laneIds()) {
          const c = m.cut[id] ?? 0;
          const v = [...m.lane(id)].reverse().find((x) => x.version === c && x.state === 'committed');
          if (v !== undefined) keys.push(v.key);
        }
        api.highlight(focusOf(keys));
        return `The cut now: ${m
          .laneIds()
          .map((id) => `${id} v${m.cut[id] ?? 0}`)
          .join(', ')} (outlined).`;
      },
    },
    {
      text: 'When a node fails, its unpersisted versions are lost, and everything that depends on them rolls back, on every node: the cluster goes on in a new world-line. The other tours let you predict each part of this, then watch it happen.',
      async enter(api) {
        api.highlight(null);
        return 'Next: “Speculation and commit”, then “A kill and what precise recovery rolls back”.';
      },
    },
  ],
};

const SPECULATION: Tour = {
  id: 'speculation',
  title: 'Speculation and commit',
  blurb: 'what becomes of speculative work when nothing fails',
  steps: [
    {
      text: 'Each node runs its work in versions. A version is speculative (orange, hatched) as soon as it opens: its effects, replies included, go out before anything is on disk.',
      async enter(api) {
        await prepare(api, { kind: 'chain', rate: CLASS_RATE });
        await api.waitFor(() => uncommittedNow(api.model()).length >= 3, 15_000);
        return `Uncommitted versions right now: ${plural(uncommittedNow(api.model()).length, 'version')}.`;
      },
    },
    {
      text: 'The tour holds the cluster: no new requests, no checkpoints. The outlined versions are the uncommitted ones now.',
      async enter(api) {
        for (let i = 0; i < 5; i++) {
          await holdStill(api);
          const keys = workNow(api.model());
          if (keys.length > 0) {
            api.memo.watched = keys;
            api.highlight(focusOf(keys));
            return `Held. ${plural(keys.length, 'uncommitted version')}: ${names(api.model(), keys)}.`;
          }
          await api.hold(false);
          await api.sleep(1500);
        }
        api.memo.noQuestion = true;
        return 'Nothing stayed uncommitted long enough to ask about.';
      },
      predict: {
        question: 'The tour releases the cluster. Nothing fails. What becomes of the outlined versions within a few checkpoints?',
        choices: ['They commit: the committed cut moves past them', 'They roll back', 'They stay speculative for good'],
        async reveal(api) {
          const keys = (api.memo.watched as string[] | undefined) ?? [];
          await api.hold(false);
          const settled = (): boolean => keys.every((k) => !uncommitted(api.model().versions.get(k)));
          await api.waitFor(settled, 15_000);
          const m = api.model();
          let committed = 0;
          let rolledBack = 0;
          let open = 0;
          for (const k of keys) {
            const s = m.versions.get(k)?.state;
            if (s === 'committed' || s === undefined)
              committed++; // undefined: settled and compressed into counts
            else if (s === 'rolled-back') rolledBack++;
            else open++;
          }
          return {
            text: `Of the ${plural(keys.length, 'version')}: ${committed} committed, ${rolledBack} rolled back, ${open} still uncommitted after 15 s.`,
            correct: rolledBack > 0 ? [1] : open === 0 ? [0] : [],
          };
        },
      },
    },
    {
      text: 'Between speculative and committed a version is persisting (sky blue, dotted): its checkpoint is being written, or is written (a dot) and waits for what it depends on to commit.',
      async enter(api) {
        await api.waitFor(() => [...api.model().versions.values()].some((v) => v.state === 'persisting'), 6000);
        const m = api.model();
        const p = [...m.versions.values()]
          .filter((v) => v.state === 'persisting')
          .sort((a, b) => (b.persistedAt === null ? 0 : 1) - (a.persistedAt === null ? 0 : 1));
        api.highlight(focusOf(p.map((v) => v.key)));
        return p.length === 0
          ? 'No version is persisting at this instant; watch the lanes for the dotted ones.'
          : `Persisting now: ${names(
              m,
              p.map((v) => v.key),
            )}.`;
      },
    },
    {
      text: 'So a client gets its answer at once, and its commit a checkpoint or two later. Anything that leaves the system for good, an e-mail or a payment, waits for the commit: the tour “Sessions and output commit” shows why.',
      async enter(api) {
        api.highlight(null);
        const m = api.model();
        const lags: number[] = [];
        const ans: number[] = [];
        for (const r of m.sessions.values()) {
          if (r.sentAt !== null && r.speculativeAt !== null) ans.push(r.speculativeAt - r.sentAt);
          if (r.speculativeAt !== null && r.committedAt !== null) lags.push(r.committedAt - r.speculativeAt);
        }
        const a = percentiles(ans.slice(-40));
        const l = percentiles(lags.slice(-40));
        return a !== null && l !== null
          ? `Lately: answers ${a.p50.toFixed(0)} ms after the request (p50), commits ${l.p50.toFixed(0)} ms after the answer.`
          : undefined;
      },
    },
  ],
};

/**
 * A node whose kill makes the kill question a real one: it has unpersisted work, versions of other
 * nodes depend on it, and some other node has uncommitted versions none of which does. (Whole nodes,
 * because a recovery rolls a node back from its first dependent version's checkpoint on: a version
 * beside a dependent one on the same node may go with it.)
 */
function killCandidate(m: PlaygroundModel): { node: NodeId; lost: string[]; dependent: string[]; kept: string[] } | null {
  const index = dependencyIndex(m);
  const open = new Set(workNow(m));
  let best: { node: NodeId; lost: string[]; dependent: string[]; kept: string[] } | null = null;
  for (const id of m.laneIds()) {
    if (m.nodes.get(id)?.status !== 'up') continue;
    const p = killPreview(m, index, id);
    const dependent = p.dependent.filter((k) => m.versions.get(k)?.node !== id);
    const touched = new Set(dependent.map((k) => m.versions.get(k)?.node));
    // Only open versions with work count as surely kept: a closed one may still commit while the
    // cluster holds (its write was on its way), and then there is nothing left to keep.
    const kept = p.collateral.filter((k) => {
      const v = m.versions.get(k);
      return v !== undefined && v.node !== id && !touched.has(v.node) && v.closedAt === null && open.has(k);
    });
    if (p.lost.length === 0 || dependent.length === 0 || kept.length === 0) continue;
    if (best === null || dependent.length > best.dependent.length) best = { node: id, lost: p.lost, dependent, kept };
  }
  return best;
}

const KILL: Tour = {
  id: 'kill',
  title: 'A kill and what precise recovery rolls back',
  blurb: 'which versions depend on the lost ones?',
  steps: [
    {
      text: 'The workload mixes plain puts with chained ones: a node applies the put and replicates it to one or two other nodes, so versions on one node come to depend on versions of others. Recovery is precise: after a failure only what depends on lost state rolls back.',
      async enter(api) {
        await prepare(api, { kind: 'mixed', rate: 3 });
        await api.waitFor(() => uncommittedNow(api.model()).length >= 4, 15_000);
        return `${plural(uncommittedNow(api.model()).length, 'uncommitted version')} in the cluster now.`;
      },
    },
    {
      text: 'The tour holds the cluster. Outlined in red: the versions of one node that are not on disk yet. If that node dies now they are lost. Follow the arrows out of them.',
      async enter(api) {
        // Set the situation up until the choices differ: some other node depends on the lost
        // versions and some uncommitted version elsewhere does not.
        for (let i = 0; i < 20; i++) {
          await holdStill(api);
          const c = killCandidate(api.model());
          if (c !== null) {
            api.memo.victim = c.node;
            api.memo.worldLine = api.model().worldLine;
            api.highlight(focusOf(c.lost, 'lost'));
            return `Held at world-line ${api.model().worldLine}. ${c.node}'s unpersisted ${c.lost.length === 1 ? 'version' : 'versions'}: ${names(api.model(), c.lost)}.`;
          }
          await api.hold(false);
          await api.sleep(1200);
        }
        api.memo.noQuestion = true;
        return 'The cluster offered no state where the choices below differ (no node had unpersisted work others depended on). Close the tour and try again.';
      },
      predict: {
        question: 'The tour kills that node now. Which versions roll back?',
        choices: [
          'Only its unpersisted versions (outlined)',
          'Those, and every version on other nodes that depends on them',
          'Every uncommitted version on every node',
        ],
        async reveal(api) {
          const victim = api.memo.victim as NodeId;
          const wl = api.memo.worldLine as number;
          api.highlight(null);
          await api.kill(victim);
          const found = await api.waitFor(() => api.model().rollbacks.some((r) => r.worldLine > wl && r.failed.includes(victim) && r.plan !== null), 20_000);
          // The nodes carry out the plan (their rollback events) a moment after it.
          await api.sleep(800);
          const m = api.model();
          const rec = m.rollbacks.find((r) => r.worldLine > wl && r.failed.includes(victim));
          if (!found || rec === undefined) return { text: `No recovery for ${victim} was reported in 20 s, so there is nothing to grade.`, correct: [] };
          api.memo.recoveryWorldLine = rec.worldLine;
          api.focusRollback(rec.worldLine);
          const onOthers = rec.discarded.filter((k) => m.versions.get(k)?.node !== victim);
          const keptOthers = rec.kept.filter((k) => m.versions.get(k)?.node !== victim);
          const x = explainRollback(m, dependencyIndex(m), rec);
          const dependency = x.steps.filter((s) => s.cause === 'dependency' && m.versions.get(s.key)?.node !== victim);
          const correct = onOthers.length === 0 ? [0] : keptOthers.length === 0 ? [1, 2] : [1];
          return {
            text: `World-line ${rec.worldLine} (${rec.recovery ?? 'precise'} recovery): lost with ${victim}: ${names(m, rec.roots)}. Rolled back on other nodes because they depend on lost state: ${names(m, onOthers)}${dependency[0] !== undefined ? ` (for instance ${dependency[0].reason})` : ''}. Kept: ${plural(keptOthers.length, 'uncommitted version')} on other nodes (${names(m, keptOthers, 4)}).`,
            correct,
          };
        },
      },
    },
    {
      text: 'Each rolled-back version has a reason, from the coordinator’s recovery plan: lost with its node, or a dependency path to a lost version. The purple arrows on the stage are those paths; the drawer’s Rollbacks tab lists them.',
      async enter(api) {
        api.openDrawer('rollbacks');
        const m = api.model();
        const rec = m.rollbacks.find((r) => r.worldLine === api.memo.recoveryWorldLine);
        if (rec === undefined) return undefined;
        const x = explainRollback(m, dependencyIndex(m), rec);
        return x.steps
          .slice(0, 4)
          .map((s) => `${name(m, s.key)}: ${s.reason}`)
          .join(' · ');
      },
    },
    {
      text: 'The tour restarts the node and releases the cluster. The node recovers from storage at its restore point; the kept versions commit as usual.',
      async enter(api) {
        const victim = api.memo.victim as NodeId | undefined;
        api.openDrawer(null);
        api.focusRollback(null);
        await api.hold(false);
        if (victim === undefined) return undefined;
        await api.restart(victim);
        const ok = await api.waitFor(() => api.model().nodes.get(victim)?.status === 'up', 30_000);
        return ok ? `${victim} is up again, in world-line ${api.model().worldLine}.` : `${victim} did not report up within 30 s.`;
      },
    },
    {
      text: 'Compare recovery “cut”, the simple baseline: it takes every node back to the committed cut, so every uncommitted version goes, whatever it depends on. Precise recovery keeps the work that never saw lost state.',
    },
  ],
};

const STALE: Tour = {
  id: 'stale',
  title: 'Stale messages from an old world-line',
  blurb: 'what a node does with a message from before a failure',
  steps: [
    {
      text: 'Every message carries the world-line it was sent in. The tour slows the network further (0.8 s delay, up to 0.3 s jitter) so that many messages between nodes are on their way at once: the dotted arrows.',
      async enter(api) {
        await prepare(api, { kind: 'chain', rate: 4 }, { networkDelayMs: 800, networkJitterMs: 300 });
        await api.sleep(2000);
        return undefined;
      },
    },
    {
      text: 'The tour holds the cluster while you think. Then it will release it, kill a node while messages are in flight, and watch them arrive at nodes that already moved to the new world-line.',
      async enter(api) {
        await holdStill(api);
        return `Held at world-line ${api.model().worldLine}.`;
      },
      predict: {
        question: 'A message sent in the old world-line arrives at a node already in the new one. What does the node do?',
        choices: ['Applies it as usual', 'Rejects it (✕): it may depend on discarded state', 'Nothing: such messages never arrive'],
        async reveal(api) {
          for (let attempt = 0; attempt < 2; attempt++) {
            await api.hold(false);
            const inFlight = (victim: NodeId): number => {
              const m = api.model();
              let n = 0;
              for (const x of m.messages.values())
                if (
                  x.kind === 'app' &&
                  x.to !== victim &&
                  x.from !== victim &&
                  x.worldLine === m.worldLine &&
                  x.deliveredAt === null &&
                  x.rejectedAt === null &&
                  !x.superseded &&
                  x.lostAt === null
                )
                  n++;
              return n;
            };
            const victim = api.model().laneIds()[1] ?? api.model().laneIds()[0]!;
            await api.waitFor(() => inFlight(victim) >= 3, 10_000);
            const wl = api.model().worldLine;
            api.memo.victim = victim;
            await api.kill(victim);
            await api.waitFor(() => api.model().rollbacks.some((r) => r.worldLine > wl), 20_000);
            // Let the delayed messages land (delay + jitter, with room), then hold for the reading.
            await api.sleep(1800);
            await api.hold(true);
            const m = api.model();
            const rec = m.rollbacks.find((r) => r.worldLine > wl);
            if (rec === undefined) return { text: 'No new world-line was reported in 20 s, so there is nothing to grade.', correct: [] };
            // When each receiver moved to the new world-line: its rollback event.
            const moved = new Map<string, number>();
            for (const e of m.events) if (e.type === 'rollback' && e.worldLine === rec.worldLine && !moved.has(e.node)) moved.set(e.node, e.t);
            let rejected = 0;
            let appliedLate = 0;
            let lostToVictim = 0;
            const rejectedIds: string[] = [];
            for (const x of m.messages.values()) {
              if (x.worldLine >= rec.worldLine || x.sentAt > rec.t) continue;
              if (x.to === victim && x.deliveredAt === null && x.rejectedAt === null) {
                if (x.sentAt > rec.t - 2000) lostToVictim++;
                continue;
              }
              const at = moved.get(x.to);
              if (at === undefined) continue;
              if (x.rejectedAt !== null && x.rejectedAt >= at) {
                rejected++;
                rejectedIds.push(x.id);
              } else if (x.deliveredAt !== null && x.deliveredAt > at) appliedLate++;
            }
            api.memo.rejectedIds = rejectedIds;
            api.memo.newWorldLine = rec.worldLine;
            if (rejected + appliedLate === 0 && attempt === 0) {
              // Nothing arrived late this time: restart the node and set it up again.
              await api.restart(victim);
              await api.waitFor(() => api.model().nodes.get(victim)?.status === 'up', 30_000);
              continue;
            }
            return {
              text: `After the kill of ${victim} (world-line ${wl} → ${rec.worldLine}): ${plural(rejected, 'message')} of world-line ${wl} arrived at a node already in world-line ${rec.worldLine} and ${rejected === 1 ? 'was' : 'were'} rejected (✕ on the stage); ${appliedLate} applied there; ${plural(lostToVictim, 'message')} to ${victim} itself found it down.`,
              correct: rejected > 0 && appliedLate === 0 ? [1] : appliedLate > 0 ? [0] : [],
            };
          }
          return { text: 'No message of the old world-line arrived late, twice: nothing to grade.', correct: [] };
        },
      },
    },
    {
      text: 'A rejected message is not lost work: if the version that sent it was kept, the sender sends it again under the new world-line (same id), and the receiver’s dedup table makes a second copy harmless. If the sender was rolled back, what it sent is gone with it.',
      async enter(api) {
        const m = api.model();
        const ids = new Set((api.memo.rejectedIds as string[] | undefined) ?? []);
        const wl = api.memo.newWorldLine as number | undefined;
        let resent = 0;
        for (const x of m.messages.values()) if (ids.has(x.id) && x.resend && wl !== undefined && x.worldLine >= wl) resent++;
        return `Of the ${plural(ids.size, 'rejected message')}, ${resent} ${resent === 1 ? 'was' : 'were'} sent again in world-line ${wl ?? '?'}.`;
      },
    },
    {
      text: 'The tour restarts the node, releases the cluster and puts the network back as it found it when you finish.',
      async enter(api) {
        await api.hold(false);
        const victim = api.memo.victim as NodeId | undefined;
        if (victim !== undefined && api.model().nodes.get(victim)?.status === 'down') {
          await api.restart(victim);
          await api.waitFor(() => api.model().nodes.get(victim)?.status === 'up', 30_000);
        }
        return undefined;
      },
    },
  ],
};

const SESSIONS: Tour = {
  id: 'sessions',
  title: 'Sessions and output commit',
  blurb: 'why the e-mail waits for commit(), and what a rolled-back session does',
  steps: [
    {
      text: 'A client talks to the cluster in a session. The tour sends a put from a session of its own: the answer comes back at once, speculatively, with the versions it depends on. Its path is in the side panel’s inspector.',
      async enter(api) {
        await prepare(api, { kind: 'kv', rate: 1 });
        const session = `tour-${Date.now().toString(36)}`;
        api.memo.session = session;
        const r = await api.call<'request'>({ type: 'request', session, op: 'put', key: 'welcome-mail', value: 'queued' });
        if (!r.ok) return `The request failed: ${r.code}: ${r.message}`;
        await api.waitFor(() => callerOf(api.model(), session) !== null, 3000);
        const caller = callerOf(api.model(), session);
        if (caller !== null) api.selectRequest({ session: caller, seq: r.value.seq });
        return `Request ${r.value.seq} of session ${session}: answered by ${r.value.node}, ${r.value.status}, ${short(r.value.result)}; depends on ${
          Object.entries(r.value.deps)
            .map(([n, v]) => `${n} v${v}`)
            .join(', ') || 'nothing'
        }.`;
      },
    },
    {
      text: 'The tour sends a second put and holds the cluster at once: the version that applied it is still open, not on disk. The client already holds the answer.',
      async enter(api) {
        const session = api.memo.session as string;
        for (let i = 0; i < 6; i++) {
          await api.hold(false);
          const r = await api.call<'request'>({ type: 'request', session, op: 'put', key: 'welcome-mail', value: 'sent?' });
          await api.hold(true);
          if (!r.ok) return `The request failed: ${r.code}: ${r.message}`;
          await api.sleep(400);
          const m = api.model();
          const caller = callerOf(m, session);
          const v = [...m.lane(r.value.node)].reverse().find((x) => x.version === r.value.deps[r.value.node]);
          if (caller !== null && v !== undefined && v.persistedAt === null && uncommitted(v)) {
            api.memo.caller = caller;
            api.memo.seq = r.value.seq;
            api.memo.victim = r.value.node;
            api.memo.worldLine = m.worldLine;
            api.selectRequest({ session: caller, seq: r.value.seq });
            api.highlight(focusOf([v.key], 'lost'));
            return `Held. Request ${r.value.seq} was answered by ${r.value.node} in v${v.version} (outlined), which is not persisted.`;
          }
        }
        api.memo.noQuestion = true;
        return 'Each answer was already on disk by the time the cluster held: nothing to ask.';
      },
      predict: {
        question: 'The tour kills the node that answered. What becomes of the answer the client already holds?',
        choices: ['It stands: the client has seen it', 'It is rolled back: the session is told RolledBack', 'It commits once the node restarts'],
        async reveal(api) {
          const caller = api.memo.caller as string;
          const seq = api.memo.seq as number;
          const victim = api.memo.victim as NodeId;
          api.highlight(null);
          await api.kill(victim);
          await api.waitFor(
            () => sessionEvent(api.model(), caller, seq, 'rolledBack') !== null || sessionEvent(api.model(), caller, seq, 'committed') !== null,
            20_000,
          );
          const m = api.model();
          const rb = sessionEvent(m, caller, seq, 'rolledBack');
          const cm = sessionEvent(m, caller, seq, 'committed');
          api.memo.rolledBack = rb !== null;
          if (rb !== null)
            return {
              text: `The session got RolledBack for request ${seq} in world-line ${m.worldLine}: its answer depended on ${victim}'s lost version. Had the e-mail gone out with the speculative answer, it would have announced a write that never happened.`,
              correct: [1],
            };
          if (cm !== null) return { text: `Request ${seq} committed: its version was persisted after all.`, correct: [0, 2] };
          return { text: `No commit and no rollback of request ${seq} were reported in 20 s.`, correct: [] };
        },
      },
    },
    {
      text: 'A rolled-back session stays rolled back: every later request fails with a definite SessionRolledBack until the client acknowledges with resume(). So the requests that survive are always a prefix of what it sent.',
      async enter(api) {
        const session = api.memo.session as string;
        const victim = api.memo.victim as NodeId | undefined;
        await api.hold(false);
        if (victim !== undefined) {
          await api.restart(victim);
          await api.waitFor(() => api.model().nodes.get(victim)?.status === 'up', 30_000);
        }
        const r = await api.call<'request'>({ type: 'request', session, op: 'put', key: 'welcome-mail', value: 'again' });
        const first = r.ok
          ? `The next request was accepted (${r.value.status}): the session was not rolled back.`
          : `The next request was refused: ${r.code}: ${r.message}.`;
        const res = await api.call<'resumeSession'>({ type: 'resumeSession', session });
        return `${first} ${res.ok ? (res.value.resumed ? 'After resume() the session takes requests again.' : 'resume(): nothing to acknowledge.') : `resume failed: ${res.code}`}`;
      },
    },
    {
      text: 'Output commit: the tour sends the put again and waits for commit() before it “sends the e-mail”. The answer comes at once; the commit when the versions it depends on are on disk.',
      async enter(api) {
        const session = api.memo.session as string;
        const r = await api.call<'request'>({ type: 'request', session, op: 'put', key: 'welcome-mail', value: 'sent' });
        if (!r.ok) return `The request failed: ${r.code}: ${r.message}`;
        await api.waitFor(() => callerOf(api.model(), session) !== null, 3000);
        const caller = callerOf(api.model(), session);
        if (caller === null) return undefined;
        api.selectRequest({ session: caller, seq: r.value.seq });
        await api.waitFor(() => sessionEvent(api.model(), caller, r.value.seq, 'committed') !== null, 15_000);
        const q = api.model().sessions.get(`${caller}#${r.value.seq}`);
        if (q?.committedAt == null || q.speculativeAt === null || q.sentAt === null) return 'The commit did not come within 15 s.';
        return `Request ${r.value.seq}: answered after ${(q.speculativeAt - q.sentAt).toFixed(0)} ms, committed ${(q.committedAt - q.speculativeAt).toFixed(0)} ms later. Only now does the e-mail go.`;
      },
    },
  ],
};

const SAGA: Tour = {
  id: 'saga',
  title: 'A workflow saga with a compensation',
  blurb: 'a business failure is undone by the application, not by the runtime',
  steps: [
    {
      text: 'A workflow (a saga) runs its steps one after another on different nodes: here a trip, booking a flight, a hotel and a car, then paying. Each step has a compensation that undoes it.',
      async enter(api) {
        await prepare(api, { kind: 'kv', rate: 0 });
        const nodes = api.model().laneIds();
        const at = (i: number): NodeId => nodes[i % nodes.length]!;
        const id = `tour-trip-${Date.now().toString(36)}`;
        const legs: [string, string, boolean][] = [
          ['flight', 'LIS-BER', false],
          ['hotel', 'Mitte', false],
          ['car', 'compact', false],
          ['payment', 'card', true],
        ];
        api.memo.workflow = id;
        api.memo.steps = legs.map(([kind, item, decline], step) => ({
          name: `${kind} ${item}`,
          node: at(step),
          do: { svc: 'travel', op: 'reserve', wf: id, step, item: `${item}-${id}`, capacity: null, decline },
          undo: { svc: 'travel', op: 'cancel', wf: id, step },
        }));
        return `Trip ${id}: ${legs.map(([k], i) => `${k} on ${at(i)}`).join(', ')}.`;
      },
    },
    {
      text: 'The tour holds the cluster while you think. The bank will decline the payment, the last step: a business failure, not a crash.',
      async enter(api) {
        await holdStill(api);
        return undefined;
      },
      predict: {
        question: 'What happens to the flight, hotel and car booked before the payment was declined?',
        choices: [
          'They stay booked: the workflow just stops',
          'The workflow cancels them, last first (compensations)',
          'The runtime rolls their versions back, as after a crash',
        ],
        async reveal(api) {
          const id = api.memo.workflow as string;
          const steps = api.memo.steps as Json;
          const wlBefore = api.model().worldLine;
          const rollbacksBefore = api.model().totals.rolledBack;
          await api.hold(false);
          const r = await api.call<'service'>({ type: 'service', svc: 'wf', payload: { op: 'start', id, steps } }, 60_000);
          if (!r.ok) return { text: `The workflow could not start: ${r.code}: ${r.message}`, correct: [] };
          api.memo.start = r.value;
          await api.waitFor(
            () => deriveServices(api.model()).workflows.some((w) => w.id === id && (w.status === 'failed' || w.status === 'completed')),
            15_000,
          );
          const m = api.model();
          const wf = deriveServices(m).workflows.find((w) => w.id === id);
          const out = r.value.result as { status?: string; compensated?: number[] } | null;
          const compensated = wf?.compensated ?? out?.compensated ?? [];
          const cancelled = wf?.steps.filter((s) => s.status === 'compensated' || s.status === 'cancelled').map((s) => s.name) ?? [];
          const runtimeRollback = m.worldLine > wlBefore || m.totals.rolledBack > rollbacksBefore;
          const correct: number[] = [];
          if (compensated.length === 0 && !runtimeRollback) correct.push(0);
          if (compensated.length > 0) correct.push(1);
          if (runtimeRollback) correct.push(2);
          return {
            text: `The workflow ${out?.status ?? wf?.status ?? '?'}: payment declined. Compensations ran for steps ${compensated.map((s) => s + 1).join(', ') || 'none'} in that order (${cancelled.join(', ') || 'nothing cancelled'}). ${runtimeRollback ? 'The cluster also rolled versions back meanwhile.' : 'No version rolled back: the world-line stayed ' + m.worldLine + '.'}`,
            correct,
          };
        },
      },
    },
    {
      text: 'The drawer’s Service state tab shows the workflow’s steps: booked, then cancelled by its compensation, in reverse order. The inspector shows the start request’s path and its answer, the workflow’s outcome.',
      async enter(api) {
        api.openDrawer('services');
        const start = api.memo.start as { session: string; seq: number } | undefined;
        if (start !== undefined) {
          const caller = callerOf(api.model(), start.session) ?? start.session;
          api.selectRequest({ session: caller, seq: start.seq });
        }
        return undefined;
      },
    },
    {
      text: 'A compensation is the application’s own undo of a step that happened (the booking existed; cancelling it is new work, committed like any other). A rollback is the runtime’s: it makes speculative work that depended on lost state never have happened. A saga needs both.',
      async enter(api) {
        api.openDrawer(null);
        return undefined;
      },
    },
  ],
};

const DURABLE: Tour = {
  id: 'durable',
  title: 'Durable against speculative: the race',
  blurb: 'what waiting for the disk at every step costs',
  steps: [
    {
      text: 'In speculative mode a reply leaves as soon as the work is done. In durable mode, the durable-execution baseline, every step is persisted before its messages and replies are released. The tour sets the network delay to 0 so that only persistence differs, and measures speculative mode for a few seconds.',
      async enter(api) {
        await prepare(api, { kind: 'kv', rate: 10 }, { networkDelayMs: 0, networkJitterMs: 0 });
        const since = api.model().lastT;
        api.memo.since = since;
        await api.sleep(3000);
        const s = percentiles(answerLatencies(api.model(), since).get('speculative') ?? []);
        return s !== null
          ? `Speculative: p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms from request to answer (${plural(s.count, 'request')}).`
          : 'No answered requests seen yet.';
      },
    },
    {
      text: 'The tour holds the cluster while you think. Then it switches the cluster to durable mode (the nodes restart from the committed cut) and measures again.',
      async enter(api) {
        await holdStill(api);
        return undefined;
      },
      predict: {
        question: 'Which mode answers requests faster?',
        choices: ['Speculative', 'Durable', 'About the same'],
        async reveal(api) {
          await api.hold(false);
          await api.setConfig({ mode: 'durable' });
          const since = api.memo.since as number;
          const durableCount = (): number => answerLatencies(api.model(), since).get('durable')?.length ?? 0;
          await api.waitFor(() => durableCount() >= 20, 25_000);
          const lat = answerLatencies(api.model(), since);
          const spec = percentiles(lat.get('speculative') ?? []);
          const dur = percentiles(lat.get('durable') ?? []);
          if (spec === null || dur === null) return { text: 'Not enough answers in both modes to compare.', correct: [] };
          const ratio = dur.p50 / Math.max(0.001, spec.p50);
          api.memo.ratio = ratio;
          return {
            text: `Answer latency p50 / p99: speculative ${spec.p50.toFixed(1)} / ${spec.p99.toFixed(1)} ms (${spec.count}), durable ${dur.p50.toFixed(1)} / ${dur.p99.toFixed(1)} ms (${dur.count}): durable p50 is ${ratio.toFixed(1)}× speculative.`,
            correct: ratio > 1.2 ? [0] : ratio < 0.8 ? [1] : [2],
          };
        },
      },
    },
    {
      text: 'The commit is another matter: in speculative mode it comes when the checkpoint lands, a checkpoint interval later; in durable mode the answer already waited for it. DSE moves the wait off the answer’s path, onto the commit’s, and only what must be final waits.',
      async enter(api) {
        const m = api.model();
        const since = api.memo.since as number;
        const byMode = new Map<string, number[]>();
        for (const r of m.sessions.values()) {
          if (r.sentAt === null || r.sentAt < since || r.committedAt === null || r.mode === null) continue;
          let l = byMode.get(r.mode);
          if (l === undefined) byMode.set(r.mode, (l = []));
          l.push(r.committedAt - r.sentAt);
        }
        const fmt = (mode: string): string => {
          const p = percentiles(byMode.get(mode) ?? []);
          return p === null ? `${mode}: no commits seen` : `${mode} ${p.p50.toFixed(0)} ms`;
        };
        return `Request to commit, p50: ${fmt('speculative')}, ${fmt('durable')}.`;
      },
    },
    {
      text: 'The drawer’s Race tab runs this comparison in rounds, with distributions. The tour switches the cluster back to speculative mode when you finish.',
      async enter(api) {
        await api.setConfig({ mode: 'speculative' });
        return undefined;
      },
    },
  ],
};

export const TOURS: Tour[] = [INTRO, SPECULATION, KILL, STALE, SESSIONS, SAGA, DURABLE];

/** The tour panel: choose a tour, read a step, predict, see what really happened. */
export function Tours({
  makeApi,
  disabled,
  onOpen,
  startId,
}: {
  makeApi: () => TourApi;
  disabled: boolean;
  onOpen(state: { id: string; step: number; asking: boolean } | null): void;
  startId: string | null;
}) {
  const [tour, setTour] = useState<Tour | null>(null);
  const [step, setStep] = useState(0);
  const [facts, setFacts] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const [picked, setPicked] = useState<number | null>(null);
  const [reveal, setReveal] = useState<Reveal | null>(null);
  const [noQuestion, setNoQuestion] = useState(false);
  const apiRef = useRef<TourApi | null>(null);
  const gen = useRef(0);

  const enterStep = useCallback(async (t: Tour, i: number) => {
    const my = ++gen.current;
    setStep(i);
    setFacts(null);
    setPicked(null);
    setReveal(null);
    setNoQuestion(false);
    const api = apiRef.current!;
    delete api.memo.noQuestion;
    const s = t.steps[i]!;
    if (s.enter === undefined) return;
    setRunning(true);
    try {
      const f = await s.enter(api);
      if (gen.current === my) {
        setFacts(f ?? null);
        setNoQuestion(api.memo.noQuestion === true);
      }
    } catch (e) {
      if (gen.current === my) setFacts(`The step could not set up its scene: ${String(e)}`);
    } finally {
      if (gen.current === my) setRunning(false);
    }
  }, []);

  const start = useCallback(
    (t: Tour) => {
      apiRef.current = makeApi();
      setTour(t);
      void enterStep(t, 0);
    },
    [makeApi, enterStep],
  );

  const started = useRef(false);
  useEffect(() => {
    if (started.current || startId === null || disabled) return;
    const t = TOURS.find((x) => x.id === startId);
    if (t === undefined) return;
    started.current = true;
    // Starting a tour drives the cluster (its first step sets up a scene through the server): an
    // effect of the connection coming up, not state derived from props.
    // eslint-disable-next-line react-hooks/set-state-in-effect
    start(t);
  }, [startId, disabled, start]);

  const close = useCallback(async () => {
    gen.current++;
    setRunning(true);
    try {
      if (apiRef.current !== null) await restoreCluster(apiRef.current);
    } finally {
      apiRef.current = null;
      setTour(null);
      setRunning(false);
    }
  }, []);

  const choose = useCallback(
    async (i: number) => {
      if (tour === null) return;
      const p = tour.steps[step]!.predict;
      if (p === undefined) return;
      const my = gen.current;
      setPicked(i);
      setRunning(true);
      try {
        const r = await p.reveal(apiRef.current!, i);
        if (gen.current === my) setReveal(r);
      } catch (e) {
        if (gen.current === my) setReveal({ text: `Could not show the answer: ${String(e)}`, correct: [] });
      } finally {
        if (gen.current === my) setRunning(false);
      }
    },
    [tour, step],
  );

  useEffect(() => () => void gen.current++, []);

  const s = tour?.steps[step];
  const asking = s?.predict !== undefined && !noQuestion && reveal === null && !running;
  useEffect(() => {
    onOpen(tour === null ? null : { id: tour.id, step, asking: s?.predict !== undefined && reveal === null && !noQuestion });
  }, [tour, step, s, reveal, noQuestion, onOpen]);

  if (tour === null || s === undefined) {
    return (
      <section className="tours" data-testid="tours" aria-label="Guided tours">
        <h2>Learn</h2>
        <ul className="tour-list">
          {TOURS.map((t) => (
            <li key={t.id}>
              <button
                type="button"
                disabled={disabled}
                onClick={() => start(t)}
                data-testid={`tour-start-${t.id}`}
                className={t.id === 'start' ? 'primary' : undefined}
              >
                {t.title}
              </button>
              <span className="muted"> {t.blurb}</span>
            </li>
          ))}
        </ul>
        {disabled && <p className="muted">Tours run on the live cluster.</p>}
      </section>
    );
  }
  const last = step === tour.steps.length - 1;
  const canNext = !running && (s.predict === undefined || noQuestion || reveal !== null);
  return (
    <section className="tours tour-open" data-testid="tour" aria-live="polite" aria-label={`Tour: ${tour.title}`}>
      <h2>{tour.title}</h2>
      <div className="muted tour-progress" data-testid="tour-progress">
        step {step + 1} of {tour.steps.length}
      </div>
      <p data-testid="tour-step">{s.text}</p>
      {running && (
        <p className="muted" data-testid="tour-busy">
          working on the live cluster…
        </p>
      )}
      {facts !== null && (
        <p data-testid="tour-facts" className="tour-facts">
          {facts}
        </p>
      )}
      {s.predict !== undefined && !noQuestion && (picked !== null || !running) && (
        <fieldset disabled={picked !== null || running} data-testid="tour-predict" className="tour-predict">
          <legend>Predict: {s.predict.question}</legend>
          {s.predict.choices.map((c, i) => (
            <label key={c} className={`tour-choice${reveal !== null && reveal.correct.includes(i) ? ' right' : ''}`}>
              <input type="radio" name="tour-choice" checked={picked === i} onChange={() => void choose(i)} data-testid={`tour-choice-${i}`} /> {c}
              {reveal !== null && reveal.correct.includes(i) ? <strong> ← what happened</strong> : ''}
            </label>
          ))}
        </fieldset>
      )}
      {reveal !== null && (
        <p
          data-testid="tour-answer"
          data-correct={reveal.correct.join(',')}
          data-verdict={picked === null || reveal.correct.length === 0 ? 'undecided' : reveal.correct.includes(picked) ? 'right' : 'wrong'}
          className="tour-answer"
        >
          <strong>
            {picked !== null && reveal.correct.length > 0
              ? reveal.correct.includes(picked)
                ? 'Your prediction held. '
                : 'Not this time. '
              : 'The events do not decide it this time. '}
          </strong>
          {reveal.text}
        </p>
      )}
      <div className="tour-buttons">
        <button
          type="button"
          className="primary"
          disabled={!canNext}
          onClick={() => (last ? void close() : void enterStep(tour, step + 1))}
          data-testid="tour-next"
        >
          {last ? 'finish' : 'next'}
        </button>
        <button type="button" onClick={() => void close()} data-testid="tour-close">
          close tour
        </button>
        {asking && <span className="muted"> choose an answer to go on</span>}
      </div>
    </section>
  );
}
