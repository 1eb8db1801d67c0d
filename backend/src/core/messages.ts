import type { CallerId, Cut, Deps, Header, Json, NodeId, Version, WorldLine } from '@dse/shared';

/** Everything that travels between nodes, callers (sessions, sthreads) and the coordinator. */
export type WireMessage =
  /** Node to node, kept in the sender's outbox until acknowledged. */
  | { kind: 'app'; h: Header; payload: Json }
  /** Acknowledges `ackSeq`; carries the receiver's header so that the outbox drop depends on its version. */
  | { kind: 'ack'; h: Header; ackSeq: number }
  /** A caller's request; `h.src` is the endpoint to reply to, `h.seq` the caller's request number. */
  | { kind: 'request'; h: Header; caller: CallerId; deps: Deps; payload: Json; probe: boolean }
  /**
   * `acceptedAt`: the version of the replying node in which the request was accepted (its caller-table
   * entry first written); the reply's `deps` name the version it completed in, later for a request
   * completed by an sthread. Absent: unknown (a caller then has to probe).
   */
  | { kind: 'reply'; h: Header; caller: CallerId; seq: number; status: 'ok' | 'aborted'; result: Json; deps: Deps; acceptedAt?: Version }
  /** The receiver lives in a newer world-line than the message: it was not applied. */
  | { kind: 'reject'; h: Header; rejected: 'app' | 'request'; rejectedSeq: number }
  | { kind: 'persisted'; node: NodeId; worldLine: WorldLine; version: Version; prevVersion: Version; deps: Deps }
  | { kind: 'cut'; worldLine: WorldLine; cut: Cut }
  /** A new world-line: the cut it starts from. `recoveryCuts` covers the world-lines the receiver may have missed. */
  | { kind: 'worldLine'; worldLine: WorldLine; cut: Cut; recoveryCuts: { worldLine: WorldLine; cut: Cut }[] }
  /** Coordinator to a node: restore to `cut[node]` and continue in `worldLine` from `resumeVersion` at least. */
  | { kind: 'recover'; worldLine: WorldLine; cut: Cut; resumeVersion: Version }
  /** A node that (re)starts with empty memory: the coordinator treats it as failed and recovers it. */
  | { kind: 'hello'; node: NodeId }
  /** A node or caller endpoint that saw a newer world-line than its own asks to catch up. */
  | { kind: 'sync'; from: string; role: 'node' | 'client'; since: WorldLine }
  | { kind: 'heartbeat'; node: NodeId; worldLine: WorldLine; version: Version };

export type WireKind = WireMessage['kind'];

export const COORDINATOR = 'coordinator';
