import type { CallerId, Cut, Deps, Header, Json, NodeId, Version, WorldLine } from '@dse/shared';

/** The cut a world-line started from, and each node's restore point in it (`kept`, at or above the cut). */
export interface WorldLineStart {
  worldLine: WorldLine;
  cut: Cut;
  /** Each node kept every version up to this one. Absent in records saved before precise recovery: the cut. */
  kept?: Cut;
}

/**
 * What world-line `start` kept of `node`: its restore point, or its cut when it has none (no restore
 * point: absent in older records, and for a node being removed, which keeps nothing above the cut).
 */
export function keptOf(start: WorldLineStart, node: NodeId): Version {
  return start.kept?.[node] ?? start.cut[node] ?? 0;
}

/** One uncommitted version of a node, as it reports it to the coordinator when a recovery prepares. */
export interface ReportedVersion {
  version: Version;
  prevVersion: Version;
  deps: Deps;
  persisted: boolean;
}

/** Everything that travels between nodes, callers (sessions, sthreads) and the coordinator. */
export type WireMessage =
  /** Node to node, kept in the sender's outbox until acknowledged. */
  | { kind: 'app'; h: Header; payload: Json }
  /** Acknowledges `ackSeq`; carries the receiver's header so that the outbox drop depends on its version. */
  | { kind: 'ack'; h: Header; ackSeq: number }
  /**
   * A caller's request; `h.src` is the endpoint to reply to, `h.seq` the caller's request number.
   * `settled`: every request of this caller numbered at or below it is decided for good (committed or
   * rolled back): the caller never sends or probes it again, so the node may forget its answer.
   */
  | { kind: 'request'; h: Header; caller: CallerId; deps: Deps; payload: Json; probe: boolean; settled?: number }
  /**
   * `acceptedAt`: the version of the replying node in which the request was accepted (its caller-table
   * entry first written); the reply's `deps` name the version it completed in, later for a request
   * completed by an sthread. Absent: unknown (a caller then has to probe).
   */
  | { kind: 'reply'; h: Header; caller: CallerId; seq: number; status: 'ok' | 'aborted'; result: Json; deps: Deps; acceptedAt?: Version }
  /** The receiver lives in a newer world-line than the message: it was not applied. */
  | { kind: 'reject'; h: Header; rejected: 'app' | 'request'; rejectedSeq: number }
  /** `again`: a kept version reported once more after a recovery (a host that reports writes itself still forwards it). */
  | { kind: 'persisted'; node: NodeId; worldLine: WorldLine; version: Version; prevVersion: Version; deps: Deps; again?: true }
  | { kind: 'cut'; worldLine: WorldLine; cut: Cut }
  /** A new world-line: the cut it starts from. `recoveryCuts` covers the world-lines the receiver may have missed. */
  | { kind: 'worldLine'; worldLine: WorldLine; cut: Cut; recoveryCuts: WorldLineStart[] }
  /**
   * Coordinator to a node: a recovery into `worldLine` is being prepared. The node holds new work (it
   * buffers messages, closes no version) and reports its uncommitted versions with their dependencies.
   */
  | { kind: 'prepare'; worldLine: WorldLine }
  /**
   * A node's answer to `prepare`: its uncommitted versions above `base` (closed ones, then the open one),
   * each with the dependencies it recorded. `from`: the world-line the node is in.
   */
  | { kind: 'prepared'; node: NodeId; incarnation: number; worldLine: WorldLine; from: WorldLine; base: Version; versions: ReportedVersion[] }
  /**
   * Coordinator to a node: continue in `worldLine`, keeping every version up to `restore[node]` (absent:
   * `cut[node]`, as with recovery `cut`) and discarding the rest; a node that rolls back opens
   * `resumeVersion` or later. `incarnation`: the process it is meant for (absent: any); a recover meant
   * for a process that died must not reach its successor, which holds none of what it says to keep.
   */
  | { kind: 'recover'; worldLine: WorldLine; cut: Cut; restore?: Cut; resumeVersion: Version; incarnation?: number }
  /**
   * Commit on demand: someone waits for `node`'s versions up to `upTo` to commit (a session awaiting
   * `commit()`, or a node whose version depends on them). The node closes its open version now if it is
   * one of them, writes at once, and asks the same of the nodes those versions depend on.
   */
  | { kind: 'flush'; worldLine: WorldLine; upTo: Version }
  /**
   * A node that (re)starts with empty memory: the coordinator treats it as failed and recovers it.
   * `incarnation` names this process of the node (different for each start).
   */
  | { kind: 'hello'; node: NodeId; incarnation?: number }
  /** A node or caller endpoint that saw a newer world-line than its own asks to catch up. */
  | { kind: 'sync'; from: string; role: 'node' | 'client'; since: WorldLine }
  | { kind: 'heartbeat'; node: NodeId; worldLine: WorldLine; version: Version };

export const COORDINATOR = 'coordinator';
