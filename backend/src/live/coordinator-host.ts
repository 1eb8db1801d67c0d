import type { ClusterConfig, NodeId } from '@dse/shared';
import { Coordinator } from '../core/coordinator';
import type { WireMessage } from '../core/messages';
import type { Observer } from '../core/ports';
import type { ClusterContext } from './cluster-context';
import { SERVER_ENDPOINT } from './wire';

/**
 * The coordinator the server runs, and the ones that replace it: after a fatal error (from storage,
 * while the nodes run on) and on a new mode or cut (from the cut it saved first).
 */
export class CoordinatorHost {
  private coordinator: Coordinator;

  constructor(
    private readonly cx: ClusterContext,
    private readonly observer: Observer,
    /** Where the coordinator's messages go (never delayed or lost by the network model). */
    private readonly send: (to: string, msg: WireMessage) => void,
  ) {
    this.coordinator = this.make();
  }

  get current(): Coordinator {
    return this.coordinator;
  }

  private make(): Coordinator {
    const config = this.cx.config();
    const c: Coordinator = new Coordinator(
      {
        clock: this.cx.clock,
        network: { send: (to, m) => this.send(to, m) },
        storage: this.cx.opts.storage.storage,
        observer: this.observer,
        onFatal: (e) => this.restartAfter(c, e),
      },
      {
        mode: config.mode,
        cutKind: config.cut,
        recovery: config.recovery,
        heartbeatTimeoutMs: null,
        pruneIntervalMs: 1000,
        storageRetryMs: 50,
        // A live node that has not answered a recovery's prepare by then is as good as failed.
        prepareTimeoutMs: config.heartbeatTimeoutMs,
      },
    );
    return c;
  }

  /** The nodes a new coordinator starts with: every one the server knows but those being removed. */
  private memberIds(): NodeId[] {
    return [...this.cx.nodes.keys()].filter((id) => !this.cx.nodes.get(id)!.removed);
  }

  /**
   * The coordinator stopped on an error (a failed assertion, a storage refusal): a new one starts from
   * storage while the node processes run on. It asks every node for its state and starts a new
   * world-line; what the old one announced as committed is in storage, nothing committed is lost.
   */
  private restartAfter(failed: Coordinator, error: unknown): void {
    if (this.cx.shuttingDown() || this.coordinator !== failed) return;
    this.cx.opts.log(`coordinator stopped on an error, starting a new one from storage: ${error instanceof Error ? error.message : String(error)}`);
    const next = this.make();
    this.coordinator = next;
    const ids = this.memberIds();
    next.addClient(SERVER_ENDPOINT, { announce: true });
    next.start(ids, { resume: true }).then(
      () => {
        for (const id of [...next.members.keys()]) if (!this.cx.nodes.has(id)) next.removeNode(id);
      },
      (e: unknown) => {
        this.cx.opts.log(`the new coordinator could not start: ${e instanceof Error ? e.message : String(e)}; trying again`);
        setTimeout(() => this.restartAfter(next, e), 500);
      },
    );
  }

  /**
   * A new coordinator in the current mode and cut, started from storage, in place of the one that ran
   * in `previousMode` (the nodes are told to start again by the caller).
   */
  async replace(previousMode: ClusterConfig['mode']): Promise<void> {
    const old = this.coordinator;
    old.stop();
    // The coordinator saves its cut only now and then; what it announced as committed must survive
    // the switch, so its current cut is saved first (the new coordinator starts from the saved record).
    // In `none` mode nothing is in storage, so its cut is not saved.
    if (previousMode !== 'none') {
      const storage = this.cx.opts.storage.storage;
      const rec = await storage.loadCoordinator();
      if (rec !== null && rec.worldLine === old.worldLine) {
        const cut = { ...rec.cut };
        for (const [n, v] of Object.entries(old.cut)) if ((cut[n] ?? 0) < v) cut[n] = v;
        const kept = { ...(rec.kept ?? cut) };
        for (const [n, v] of Object.entries(cut)) if ((kept[n] ?? 0) < v) kept[n] = v;
        await storage.saveCoordinator({ ...rec, cut, kept, nodes: [...old.members.keys()] });
      }
    }
    const next = this.make();
    this.coordinator = next;
    const ids = this.memberIds();
    await next.start(ids, { reason: 'modeChange' });
    for (const id of [...next.members.keys()]) if (!this.cx.nodes.has(id)) next.removeNode(id);
    next.addClient(SERVER_ENDPOINT, { announce: true });
  }
}
