import type { Highlight } from '../views/SpaceTime';
import type { DrawerTab, TourApi } from '../views/Tours';
import type { ModelStore } from '../live/store';
import type { LiveFeed } from './useLiveFeed';

/** What a tour may do to the page besides the cluster. */
export interface TourPage {
  highlight(h: ReadonlyMap<string, Highlight> | null): void;
  focusRollback(worldLine: number | null): void;
  selectRequest(r: { session: string; seq: number } | null): void;
  openDrawer(t: DrawerTab | null): void;
}

/** The handle a guided tour drives the cluster and the page with. */
export function tourApi(store: ModelStore, feed: Pick<LiveFeed, 'command' | 'call'>, page: TourPage): TourApi {
  const { command, call } = feed;
  return {
    model: () => store.model,
    call,
    setConfig: (patch) => command<'config'>({ type: 'config', config: patch }, 'configuration change'),
    setWorkload: (w) => command<'workload'>({ type: 'workload', workload: w }, 'workload change'),
    kill: (n) => command<'kill'>({ type: 'kill', node: n }, `kill ${n}`),
    restart: (n) => command<'restart'>({ type: 'restart', node: n }, `restart ${n}`),
    hold: async (on) => {
      if ((store.model.config?.held === true) === on) return true;
      const ok = await command<'config'>({ type: 'config', config: { held: on } }, on ? 'hold' : 'release');
      // The page's own config follows from the server's event; wait for it so that what the tour reads next is held.
      const until = performance.now() + 5000;
      while (ok && (store.model.config?.held === true) !== on && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
      return ok;
    },
    highlight: (h) => page.highlight(h),
    focusRollback: (w) => page.focusRollback(w),
    selectRequest: (r) => page.selectRequest(r),
    openDrawer: (t) => page.openDrawer(t),
    waitFor: async (pred, timeoutMs) => {
      const until = performance.now() + timeoutMs;
      for (;;) {
        if (pred()) return true;
        if (performance.now() > until) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    memo: {},
  };
}
