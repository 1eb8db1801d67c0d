import { useEffect, useRef } from 'react';
import type { NodeId } from '@dse/shared';
import type { PlaygroundModel } from '../model/model';

/** What the keys do (see the help panel): each a plain action of the page. */
export interface KeyActions {
  model(): PlaygroundModel;
  live: boolean;
  selectedNode: NodeId | null;
  selectedVersion: string | null;
  toggleHelp(): void;
  /** Esc: close what is open and clear every selection and highlight. */
  clear(): void;
  togglePlay(): void;
  kill(n: NodeId): void;
  restart(n: NodeId): void;
  /** `[` and `]`: a shorter or longer time window; `a`: all of it. */
  windowStep(by: -1 | 1): void;
  windowAll(): void;
  step(): void;
  exportTrace(): void;
  importTrace(): void;
  /** `/`: the event table's filter. */
  findEvents(): void;
  selectVersion(key: string): void;
  selectNode(n: NodeId): void;
}

/** The page's keyboard shortcuts (none while typing in a field, where Esc leaves the field). */
export function useKeyboard(actions: KeyActions): void {
  // One listener for the page's life, reading the newest actions.
  const latest = useRef(actions);
  useEffect(() => {
    latest.current = actions;
  });
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const t = e.target as HTMLElement | null;
      if (t !== null && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) {
        if (e.key === 'Escape') t.blur();
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (handleKey(e.key, latest.current)) e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}

/** Does what `key` does; false when the key does nothing here. */
function handleKey(key: string, a: KeyActions): boolean {
  switch (key) {
    case '?':
      a.toggleHelp();
      return true;
    case 'Escape':
      a.clear();
      return true;
    case ' ':
    case 'p':
      a.togglePlay();
      return true;
    case 'k':
      if (a.live && a.selectedNode !== null) a.kill(a.selectedNode);
      return true;
    case 'r':
      if (a.live && a.selectedNode !== null) a.restart(a.selectedNode);
      return true;
    case '[':
      a.windowStep(-1);
      return true;
    case ']':
      a.windowStep(1);
      return true;
    case 'a':
      a.windowAll();
      return true;
    case 's':
      a.step();
      return true;
    case 'e':
      a.exportTrace();
      return true;
    case 'i':
      a.importTrace();
      return true;
    case '/':
      a.findEvents();
      return true;
    case 'ArrowLeft':
    case 'ArrowRight':
    case 'ArrowUp':
    case 'ArrowDown': {
      const next = walkDiagram(a.model(), a.selectedVersion, a.selectedNode, key);
      if (next === undefined) return false;
      a.selectVersion(next);
      return true;
    }
    default:
      if (/^[1-9]$/.test(key)) {
        const id = a.model().laneIds()[Number(key) - 1];
        if (id !== undefined) a.selectNode(id);
        return true;
      }
      return false;
  }
}

/**
 * Walks the diagram by keyboard: left/right along a node's versions, up/down across nodes (to the
 * version of the other node open at the same time). Returns the version to select, if any.
 */
export function walkDiagram(
  m: PlaygroundModel,
  selectedVersion: string | null,
  selectedNode: NodeId | null,
  key: 'ArrowLeft' | 'ArrowRight' | 'ArrowUp' | 'ArrowDown',
): string | undefined {
  const ids = m.laneIds();
  const cur = selectedVersion === null ? undefined : m.versions.get(selectedVersion);
  let node = cur?.node ?? selectedNode ?? ids[0];
  if (node === undefined) return undefined;
  if (key === 'ArrowUp' || key === 'ArrowDown') {
    const i = ids.indexOf(node) + (key === 'ArrowUp' ? -1 : 1);
    node = ids[Math.max(0, Math.min(ids.length - 1, i))]!;
  }
  const lane = m.lane(node);
  if (lane.length === 0) return undefined;
  let idx = lane.length - 1;
  if (cur !== undefined) {
    if (cur.node === node) idx = lane.indexOf(cur) + (key === 'ArrowLeft' ? -1 : key === 'ArrowRight' ? 1 : 0);
    else {
      idx = lane.findIndex((v) => (v.closedAt ?? Infinity) >= cur.openedAt);
      if (idx < 0) idx = lane.length - 1;
    }
  }
  return lane[Math.max(0, Math.min(lane.length - 1, idx))]!.key;
}
