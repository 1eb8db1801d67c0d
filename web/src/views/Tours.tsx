import { useCallback, useEffect, useRef, useState } from 'react';
import type { ClusterConfig, NodeId, WorkloadConfig } from '@dse/shared';
import type { PlaygroundModel } from '../model/model';
import { dependencyIndex, explainRollback, killPreview } from '../model/analysis';
import { answerLatencies, percentiles } from '../model/stats';

/**
 * Guided tours: short scripted lessons that set up a scenario on the live cluster through the
 * ordinary commands, pause live updates at the interesting moment, ask the learner to predict what
 * happens, then show the answer from the events that really came (never from a script).
 */

/** What a tour may do with the page and the cluster. */
export interface TourApi {
  model(): PlaygroundModel;
  setConfig(patch: Partial<ClusterConfig>): Promise<boolean>;
  setWorkload(w: WorkloadConfig): Promise<boolean>;
  kill(node: NodeId): Promise<boolean>;
  restart(node: NodeId): Promise<boolean>;
  /** Pause (true) or resume (false) live updates of the page. */
  pause(on: boolean): void;
  /** Show the kill preview of a node in the diagram (null hides it). */
  preview(node: NodeId | null): void;
  /** Highlight what the recovery to this world-line discarded (null clears). */
  focusRollback(worldLine: number | null): void;
  /** Polls the model (live updates must be running) until `pred` holds or the time is up. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean>;
  sleep(ms: number): Promise<void>;
  /** Values a tour keeps between its steps. */
  memo: Record<string, unknown>;
}

export interface Reveal {
  /** What happened, from the events. */
  text: string;
  /** Index of the choice that the events bear out, or null when they do not decide it. */
  correct: number | null;
}

export interface TourStep {
  /** What the learner reads. */
  text: string;
  /** Sets the scene when the step opens; may return facts (from events) to show under the text. */
  enter?(api: TourApi): Promise<string | undefined>;
  /** A prediction to make before moving on. */
  predict?: { question: string; choices: string[]; reveal(api: TourApi, picked: number): Promise<Reveal> };
}

export interface Tour {
  id: string;
  title: string;
  steps: TourStep[];
  /** Puts the cluster back the way a tour left it (also when the learner closes the tour early). */
  cleanup?(api: TourApi): Promise<void>;
}

const uncommittedNow = (m: PlaygroundModel): string[] => {
  const out: string[] = [];
  for (const id of m.laneIds()) for (const v of m.lane(id)) if (v.worldLine === m.worldLine && (v.state === 'speculative' || v.state === 'persisting')) out.push(v.key);
  return out;
};

const countBy = (keys: readonly string[], m: PlaygroundModel): string =>
  [...keys.reduce((acc, k) => acc.set(m.versions.get(k)?.node ?? k.split('|')[0]!, (acc.get(m.versions.get(k)?.node ?? k.split('|')[0]!) ?? 0) + 1), new Map<string, number>())]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([n, c]) => `${n}: ${c}`)
    .join(', ') || 'none';

async function ensureRunning(api: TourApi, workload: WorkloadConfig): Promise<void> {
  const m = api.model();
  api.memo.workloadBefore ??= m.workload;
  api.memo.modeBefore ??= m.mode;
  api.pause(false);
  for (const id of m.laneIds()) if (m.nodes.get(id)?.status === 'down') await api.restart(id);
  if (m.mode !== 'speculative') await api.setConfig({ mode: 'speculative' });
  await api.setWorkload(workload);
  await api.waitFor(() => api.model().laneIds().every((id) => api.model().nodes.get(id)?.status === 'up'), 20_000);
  // Wait for some fresh speculative work to look at.
  await api.waitFor(() => uncommittedNow(api.model()).length >= 3, 10_000);
}

async function restoreCluster(api: TourApi): Promise<void> {
  api.pause(false);
  api.preview(null);
  api.focusRollback(null);
  const m = api.model();
  const net = api.memo.networkBefore as Partial<ClusterConfig> | undefined;
  if (net !== undefined) await api.setConfig(net);
  for (const id of m.laneIds()) if (m.nodes.get(id)?.status === 'down') await api.restart(id);
  const mode = api.memo.modeBefore as ClusterConfig['mode'] | null | undefined;
  if (mode !== undefined && mode !== null && m.mode !== mode) await api.setConfig({ mode });
  const w = api.memo.workloadBefore as WorkloadConfig | null | undefined;
  if (w !== undefined && w !== null) await api.setWorkload(w);
}

export const TOURS: Tour[] = [
  {
    id: 'speculation',
    title: 'What speculation is, and what a commit is',
    steps: [
      {
        text: 'Each node runs its work in versions. A version is speculative (orange, hatched) as soon as it opens: its effects — replies included — go out before anything is on disk. The tour starts a small workload and pauses the view.',
        async enter(api) {
          await ensureRunning(api, { kind: 'chain', rate: 20 });
          api.pause(true);
          const keys = uncommittedNow(api.model());
          api.memo.watched = keys;
          return `Paused. Uncommitted versions right now (per node): ${countBy(keys, api.model())}.`;
        },
        predict: {
          question: 'Nothing fails in the next few seconds. What becomes of these uncommitted versions?',
          choices: ['They commit: the committed cut (black line) moves past them', 'They roll back', 'They stay speculative for ever'],
          async reveal(api) {
            const keys = (api.memo.watched as string[] | undefined) ?? [];
            api.pause(false);
            const settled = (): boolean => keys.every((k) => {
              const s = api.model().versions.get(k)?.state;
              return s === undefined || s === 'committed' || s === 'rolled-back';
            });
            await api.waitFor(settled, 8_000);
            api.pause(true);
            const m = api.model();
            let committed = 0, rolledBack = 0, open = 0;
            for (const k of keys) {
              const s = m.versions.get(k)?.state;
              if (s === 'committed' || s === undefined) committed++; // undefined: settled and compressed into counts
              else if (s === 'rolled-back') rolledBack++;
              else open++;
            }
            const best = Math.max(committed, rolledBack, open);
            return {
              text: `Of the ${keys.length} versions: ${committed} committed, ${rolledBack} rolled back, ${open} still uncommitted.`,
              correct: keys.length === 0 ? null : best === committed ? 0 : best === rolledBack ? 1 : 2,
            };
          },
        },
      },
      {
        text: 'A version commits once it is persisted (sky blue, dotted) and every version it depends on has committed too: the cut is the latest set of versions no failure can take back. Only then is a reply final — the speculative answer came earlier, which is the whole point of speculation.',
      },
    ],
    cleanup: restoreCluster,
  },
  {
    id: 'kill',
    title: 'A kill and its rollback cascade',
    steps: [
      {
        text: 'The tour runs a chain workload: nodes replicate puts to each other, so versions on one node depend on versions on others. It pauses and shows what n2’s uncommitted work is (red), what depends on it (purple), and the other uncommitted versions.',
        async enter(api) {
          await ensureRunning(api, { kind: 'chain', rate: 30 });
          api.pause(true);
          const m = api.model();
          const p = killPreview(m, dependencyIndex(m), 'n2');
          api.memo.preview = p;
          api.memo.worldLine = m.worldLine;
          api.preview('n2');
          return `Paused at world-line ${m.worldLine}. n2 has ${p.lost.length} uncommitted versions; ${p.dependent.length} versions on other nodes depend on them; ${p.collateral.length} other uncommitted versions.`;
        },
        predict: {
          question: 'If n2 is killed now, which versions roll back?',
          choices: ['Only n2’s uncommitted versions', 'n2’s, and the versions on other nodes that depend on them', 'Every uncommitted version on every node (the whole cluster returns to the cut)'],
          async reveal(api) {
            const wl = api.memo.worldLine as number;
            api.preview(null);
            // Killed while the view is still paused, so the kill lands at the moment the learner saw.
            await api.kill('n2');
            api.pause(false);
            const found = await api.waitFor(() => api.model().rollbacks.some((r) => r.worldLine > wl && r.failed.includes('n2')), 20_000);
            const m = api.model();
            const rec = m.rollbacks.find((r) => r.worldLine > wl && r.failed.includes('n2'));
            api.pause(true);
            if (!found || rec === undefined) return { text: 'No recovery for n2 was reported in 20 s, so there is no answer to show.', correct: null };
            api.focusRollback(rec.worldLine);
            api.memo.recoveryWorldLine = rec.worldLine;
            const others = rec.discarded.filter((k) => (m.versions.get(k)?.node ?? k.split('|')[0]) !== 'n2');
            // Versions elsewhere with no dependency path to n2's lost ones went only because the whole
            // cluster went back to the cut.
            const steps = explainRollback(m, dependencyIndex(m), rec).steps;
            const unexplained = steps.filter((st) => st.depth === null && (m.versions.get(st.key)?.node ?? st.key.split('|')[0]) !== 'n2');
            const correct = others.length === 0 ? 0 : unexplained.length > 0 ? 2 : 1;
            return {
              text: `World-line ${rec.worldLine}: the recovery discarded ${rec.discarded.length} versions (per node: ${countBy(rec.discarded, m)}); ${rec.roots.length} were lost with n2 itself; ${others.length - unexplained.length} on other nodes depended on them, ${unexplained.length} had no dependency on them. They are highlighted in the diagram; the Rollbacks tab explains each one.`,
              correct,
            };
          },
        },
      },
      {
        text: 'The tour restarts n2. It recovers from storage at its restore point and the cut starts moving again.',
        async enter(api) {
          api.pause(false);
          api.focusRollback(null);
          await api.restart('n2');
          const ok = await api.waitFor(() => api.model().nodes.get('n2')?.status === 'up', 20_000);
          return ok ? `n2 is up again, in world-line ${api.model().worldLine}.` : 'n2 did not report up within 20 s.';
        },
      },
    ],
    cleanup: restoreCluster,
  },
  {
    id: 'stale',
    title: 'Stale messages from an old world-line',
    steps: [
      {
        text: 'The tour slows the network (150 ms delay, 100 ms jitter) under a chain workload, so many messages between nodes are in flight at any moment, and pauses. Every message carries the world-line it was sent in.',
        async enter(api) {
          const c = api.model().config;
          if (c !== null) api.memo.networkBefore = { networkDelayMs: c.networkDelayMs, networkJitterMs: c.networkJitterMs, messageLoss: c.messageLoss };
          await ensureRunning(api, { kind: 'chain', rate: 40 });
          await api.setConfig({ networkDelayMs: 150, networkJitterMs: 100, messageLoss: 0 });
          const inFlight = (): number[] => {
            const m = api.model();
            const out: number[] = [];
            for (const msg of m.messages.values()) if (msg.kind === 'app' && msg.worldLine === m.worldLine && msg.deliveredAt === null && msg.rejectedAt === null && !msg.superseded) out.push(msg.uid);
            return out;
          };
          await api.waitFor(() => inFlight().length >= 3, 10_000);
          api.pause(true);
          api.memo.worldLine = api.model().worldLine;
          return `Paused at world-line ${api.model().worldLine}: ${inFlight().length} messages between nodes are in flight (dotted arrows).`;
        },
        predict: {
          question: 'The tour now kills n2, which starts a new world-line. What becomes of the messages in flight from the old world-line when they arrive?',
          choices: ['They are delivered as usual', 'The receivers reject them: they come from an older world-line (✕)', 'They vanish without a trace'],
          async reveal(api) {
            const wl = api.memo.worldLine as number;
            await api.kill('n2');
            api.pause(false);
            await api.waitFor(() => api.model().rollbacks.some((r) => r.worldLine > wl), 20_000);
            // Give the delayed messages time to arrive (delay + jitter, with room to spare).
            await api.sleep(1500);
            api.pause(true);
            const m = api.model();
            const rec = m.rollbacks.find((r) => r.worldLine > wl);
            if (rec === undefined) return { text: 'No new world-line was reported in 20 s, so there is no answer to show.', correct: null };
            const t0 = rec.t;
            // The messages of the old world-line still on their way when the new world-line began.
            let delivered = 0, rejected = 0, unseen = 0;
            for (const x of m.messages.values()) {
              // Node-to-node messages sent shortly before (the network delays them at most 250 ms now).
              if (x.kind !== 'app' || x.superseded || x.worldLine > wl || x.sentAt >= t0 || x.sentAt < t0 - 2000) continue;
              const arrived = x.rejectedAt ?? x.deliveredAt;
              if (arrived !== null && arrived < t0) continue;
              if (x.rejectedAt !== null) rejected++;
              else if (x.deliveredAt !== null) delivered++;
              else unseen++;
            }
            const total = delivered + rejected + unseen;
            const best = Math.max(delivered, rejected, unseen);
            return {
              text: `Of the ${total} messages of world-line ${wl} still on their way when world-line ${rec.worldLine} began: ${rejected} rejected as stale, ${delivered} delivered (they reached a receiver that had not yet moved to the new world-line), ${unseen} with no arrival seen (for instance to the killed n2). ${m.totals.rejected} stale messages rejected so far in total.`,
              correct: total === 0 ? null : best === rejected ? 1 : best === delivered ? 0 : 2,
            };
          },
        },
      },
      {
        text: 'A receiver compares a message’s world-line with its own: a message from an older world-line may depend on versions the recovery discarded, so it is dropped, and its sender (rolled back too) will send again what still matters. The tour restarts n2 and restores the network when you finish.',
      },
    ],
    cleanup: restoreCluster,
  },
  {
    id: 'durable',
    title: 'Why durable mode is slower',
    steps: [
      {
        text: 'In speculative mode a reply leaves as soon as the work is done; in durable mode it waits until the version is on disk and committed. The tour measures request latency in speculative mode for a few seconds.',
        async enter(api) {
          await ensureRunning(api, { kind: 'kv', rate: 30 });
          // Only the requests sent from now on count: the cluster's earlier history is not part of the lesson.
          const since = api.model().lastT;
          api.memo.since = since;
          await api.sleep(3000);
          const s = percentiles(answerLatencies(api.model(), since).get('speculative') ?? []);
          return s !== null ? `Speculative: p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms to the answer (${s.count} requests).` : 'No answered requests seen yet.';
        },
        predict: {
          question: 'The tour switches the cluster to durable mode (the nodes restart). Which mode answers requests faster?',
          choices: ['Speculative', 'Durable', 'About the same'],
          async reveal(api) {
            await api.setConfig({ mode: 'durable' });
            const since = api.memo.since as number;
            const durableCount = (): number => answerLatencies(api.model(), since).get('durable')?.length ?? 0;
            await api.waitFor(() => durableCount() >= 20, 20_000);
            const lat = answerLatencies(api.model(), since);
            const spec = percentiles(lat.get('speculative') ?? []);
            const dur = percentiles(lat.get('durable') ?? []);
            if (spec === null || dur === null) return { text: 'Not enough answers in both modes to compare.', correct: null };
            const ratio = dur.p50 / Math.max(0.001, spec.p50);
            return {
              text: `Answer latency p50 / p99: speculative ${spec.p50.toFixed(1)} / ${spec.p99.toFixed(1)} ms (${spec.count}), durable ${dur.p50.toFixed(1)} / ${dur.p99.toFixed(1)} ms (${dur.count}): durable p50 is ${ratio.toFixed(1)}× speculative.`,
              correct: ratio > 1.2 ? 0 : ratio < 0.8 ? 1 : 2,
            };
          },
        },
      },
      {
        text: 'Durable mode pays a storage commit (and the wait for the versions it depends on) before every reply. The tour switches back to speculative mode when you close it.',
      },
    ],
    cleanup: restoreCluster,
  },
];

/** The tour panel: choose a tour, read a step, predict, see what really happened. */
export function Tours({ makeApi, disabled }: { makeApi: () => TourApi; disabled: boolean }) {
  const [tour, setTour] = useState<Tour | null>(null);
  const [step, setStep] = useState(0);
  const [facts, setFacts] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const [picked, setPicked] = useState<number | null>(null);
  const [reveal, setReveal] = useState<Reveal | null>(null);
  const apiRef = useRef<TourApi | null>(null);
  const gen = useRef(0);

  const enterStep = useCallback(async (t: Tour, i: number) => {
    const my = ++gen.current;
    setStep(i);
    setFacts(null);
    setPicked(null);
    setReveal(null);
    const s = t.steps[i]!;
    if (s.enter === undefined) return;
    setRunning(true);
    try {
      const f = await s.enter(apiRef.current!);
      if (gen.current === my) setFacts(f ?? null);
    } catch (e) {
      if (gen.current === my) setFacts(`The step could not set up its scenario: ${String(e)}`);
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

  const close = useCallback(async () => {
    const t = tour;
    gen.current++;
    setRunning(true);
    try {
      if (t?.cleanup !== undefined && apiRef.current !== null) await t.cleanup(apiRef.current);
    } finally {
      apiRef.current = null;
      setTour(null);
      setRunning(false);
    }
  }, [tour]);

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
        if (gen.current === my) setReveal({ text: `Could not show the answer: ${String(e)}`, correct: null });
      } finally {
        if (gen.current === my) setRunning(false);
      }
    },
    [tour, step],
  );

  useEffect(() => () => void (gen.current++), []);

  if (tour === null) {
    return (
      <div className="tours" data-testid="tours">
        <strong>Guided tours</strong>{' '}
        {TOURS.map((t) => (
          <button key={t.id} type="button" disabled={disabled} onClick={() => start(t)} data-testid={`tour-start-${t.id}`}>
            {t.title}
          </button>
        ))}
      </div>
    );
  }
  const s = tour.steps[step]!;
  const last = step === tour.steps.length - 1;
  const canNext = !running && (s.predict === undefined || reveal !== null);
  return (
    <section className="tours tour-open" data-testid="tour" aria-live="polite">
      <strong>
        {tour.title} — step {step + 1} of {tour.steps.length}
      </strong>
      <p data-testid="tour-step">{s.text}</p>
      {running && <p className="muted" data-testid="tour-busy">working on the live cluster…</p>}
      {facts !== null && <p data-testid="tour-facts">{facts}</p>}
      {s.predict !== undefined && (picked !== null || !running) && (
        <fieldset disabled={picked !== null || running} data-testid="tour-predict">
          <legend>Predict: {s.predict.question}</legend>
          {s.predict.choices.map((c, i) => (
            <label key={c} className="tour-choice">
              <input type="radio" name="tour-choice" checked={picked === i} onChange={() => void choose(i)} data-testid={`tour-choice-${i}`} /> {c}
              {reveal !== null && reveal.correct === i ? ' ← what happened' : ''}
            </label>
          ))}
        </fieldset>
      )}
      {reveal !== null && (
        <p data-testid="tour-answer" data-correct={reveal.correct === null ? '' : String(reveal.correct)}>
          {picked !== null && reveal.correct !== null ? (picked === reveal.correct ? 'Your prediction held. ' : 'Not this time. ') : ''}
          {reveal.text}
        </p>
      )}
      <button type="button" disabled={!canNext} onClick={() => (last ? void close() : void enterStep(tour, step + 1))} data-testid="tour-next">
        {last ? 'finish' : 'next'}
      </button>{' '}
      <button type="button" onClick={() => void close()} data-testid="tour-close">
        close tour
      </button>
    </section>
  );
}
