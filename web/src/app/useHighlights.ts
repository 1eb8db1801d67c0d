import { useMemo, useState } from 'react';
import type { NodeId } from '@dse/shared';
import { dependencyIndex, explainRollback, killPreview, selectionOf, type DepIndex, type KillPreview, type RollbackExplanation } from '../model/analysis';
import type { PlaygroundModel } from '../model/model';
import { Derived } from '../live/derived';
import type { Highlight } from '../views/SpaceTime';

export interface HighlightInput {
  model: PlaygroundModel;
  rev: number;
  /** The node whose kill is previewed (hovering its kill button). */
  previewNode: NodeId | null;
  /** A tour asks a question: predict, then reveal, so no kill preview meanwhile. */
  asking: boolean;
  /** The world-line whose rollback is explained. */
  rollbackFocus: number | null;
  /** How far the cascade animation got (null: all of it). */
  cascadeStep: number | null;
  zoomRollback: boolean;
  selectedVersion: string | null;
  tourHighlight: ReadonlyMap<string, Highlight> | null;
}

export interface Highlights {
  index: DepIndex;
  preview: KillPreview | null;
  explanation: RollbackExplanation | null;
  highlight: ReadonlyMap<string, Highlight>;
  whyEdges: RollbackExplanation['why'];
  /** The versions a rollback zoom shows, and the time span they cover on the stage. */
  zoomKeys: Set<string> | null;
  zoomDomain: [number, number] | null;
}

/**
 * What the diagram and the graph mark: a kill's preview, else a rollback's explanation (step by step
 * while its cascade plays), else a tour's marks, else the selected version with what it depends on
 * and what depends on it.
 */
export function useHighlights(p: HighlightInput): Highlights {
  const { model, rev, previewNode, asking, rollbackFocus, cascadeStep, zoomRollback, selectedVersion, tourHighlight } = p;
  // The dependency index is rebuilt at most a few times a second: a busy cluster changes it with
  // every event, and nobody reads a graph faster than that.
  const [indexCache] = useState(() => new Derived(dependencyIndex, 300));
  const index = indexCache.get(model, rev);
  const preview = useMemo(() => (previewNode === null || asking ? null : killPreview(model, index, previewNode)), [model, index, previewNode, asking]);
  const focusRecord = rollbackFocus === null ? null : (model.rollbacks.find((r) => r.worldLine === rollbackFocus) ?? null);
  const explanation = useMemo(() => (focusRecord === null ? null : explainRollback(model, index, focusRecord)), [model, index, focusRecord]);
  const highlight = useMemo((): ReadonlyMap<string, Highlight> => {
    const h = new Map<string, Highlight>();
    if (preview !== null) {
      for (const k of preview.collateral) h.set(k, preview.kind === 'cut' ? 'collateral' : 'kept');
      for (const k of preview.dependent) h.set(k, 'must');
      for (const k of preview.lost) h.set(k, 'lost');
      return h;
    }
    if (explanation !== null) {
      for (const k of explanation.kept) h.set(k, 'kept');
      const steps = cascadeStep === null ? explanation.steps : explanation.steps.slice(0, cascadeStep + 1);
      for (const s of steps) h.set(s.key, s.depth === 0 ? 'lost' : 'cascade');
      return h;
    }
    if (tourHighlight !== null) return tourHighlight;
    if (selectedVersion !== null && model.versions.has(selectedVersion)) {
      const s = selectionOf(model, index, selectedVersion);
      for (const k of s.dependencies) h.set(k, 'dependency');
      for (const k of s.dependents) h.set(k, 'dependent');
      h.set(selectedVersion, 'selected');
    }
    return h;
  }, [preview, explanation, cascadeStep, selectedVersion, model, index, tourHighlight]);
  const whyEdges = useMemo(() => explanation?.why ?? [], [explanation]);
  const zoomKeys = useMemo(() => {
    if (!zoomRollback || explanation === null) return null;
    const s = new Set<string>([...explanation.record.discarded, ...explanation.kept]);
    for (const e of explanation.why) {
      s.add(e.from);
      s.add(e.to);
    }
    return s;
  }, [zoomRollback, explanation]);
  // Zoomed to a rollback, the stage shows its time span.
  const zoomDomain = useMemo((): [number, number] | null => {
    if (zoomKeys === null || explanation === null) return null;
    let t0 = explanation.record.t;
    for (const k of zoomKeys) {
      const v = model.versions.get(k);
      if (v !== undefined) t0 = Math.min(t0, v.openedAt);
    }
    const pad = Math.max(300, (explanation.record.t - t0) * 0.15);
    return [t0 - pad, explanation.record.t + pad];
  }, [zoomKeys, explanation, model]);
  return { index, preview, explanation, highlight, whyEdges, zoomKeys, zoomDomain };
}
