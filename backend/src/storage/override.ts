import type { Storage } from '../core/ports';

/**
 * `inner` with some of its operations replaced (a modelled commit delay, a test's counting or failing
 * write): every operation not in `over` goes to `inner`.
 */
export function overrideStorage(inner: Storage, over: Partial<Storage>): Storage {
  return {
    writeCheckpoints: over.writeCheckpoints ?? ((records) => inner.writeCheckpoints(records)),
    loadCheckpoint: over.loadCheckpoint ?? ((node, version) => inner.loadCheckpoint(node, version)),
    listCheckpoints: over.listCheckpoints ?? ((worldLine) => inner.listCheckpoints(worldLine)),
    loadCoordinator: over.loadCoordinator ?? (() => inner.loadCoordinator()),
    saveCoordinator: over.saveCoordinator ?? ((record) => inner.saveCoordinator(record)),
    prune: over.prune ?? ((node, version) => inner.prune(node, version)),
  };
}
