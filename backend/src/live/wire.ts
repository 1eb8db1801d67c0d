import type { CutKind, ErrorBody, InspectionEvent, Mode, NodeId, ObservationLevel } from '@dse/shared';
import type { WireMessage } from '../core/messages';

/**
 * The connection between a node process and the server (Socket.IO namespace `/node`, one WebSocket):
 * the control plane. It carries the node's join, its messages to the coordinator and to the server's
 * session host (messages between nodes go over their own links, `links.ts`), its inspection events,
 * its Storage calls (the server owns the database), and the server's configuration and peer tables.
 * The same connection works from another host (`npm run node`).
 *
 * node → server: `join` (JoinRequest, ack JoinReply), `up` (UpFrame: events, messages and storage
 * calls), `st` (op, args, ack StorageReply: a storage call on its own, still served)
 * server → node: `m` (DownFrame: messages and storage replies), `peers` (PeerTable), `cfg`
 * (NodeConfigPush), `reset` (NodeRunConfig: start again with empty memory in a new mode or cut)
 *
 * Everything one side has for the other in one event-loop turn goes in one frame: on a loaded machine
 * every frame is a system call on each side, and the server relays for every node.
 */
export const NODE_NAMESPACE = '/node';

/**
 * Node processes reach the server's Socket.IO on a path of their own (`io(url + NODE_NAMESPACE, {path:
 * NODE_SOCKET_PATH})`): their frames may be large (a full checkpoint), so that server accepts messages
 * up to 16 MiB, while the browsers' (`/socket.io`) accepts 1 MiB.
 */
export const NODE_SOCKET_PATH = '/node.io';

/** The endpoint name of the server's session host (clients' requests come from it, replies go to it). */
export const SERVER_ENDPOINT = 'server';

export interface JoinRequest {
  id: NodeId;
  pid: number;
  /** Set by the server when it spawned this process; null for a process started by hand (remote). */
  incarnation: string | null;
  /** Where the node's peers reach it (its data-plane listener, `links.ts`). */
  data: { host: string; port: number };
}

/**
 * server → node `peers`: every member's data-plane address (null: known, but not reachable now), sent to
 * every node on each change. A node sends to a peer straight over its link.
 */
export type PeerTable = Record<NodeId, { host: string; port: number } | null>;

export interface NodeRunConfig {
  app: string;
  mode: Mode;
  cutKind: CutKind;
  checkpointIntervalMs: number;
  heartbeatIntervalMs: number;
  /** The cluster's time origin (wall-clock ms): `Clock.now()` counts from it in every process. */
  epochMs: number;
  retransmitMs: number;
  /** How long inspection events may wait before they are sent (they go at once with any message). */
  eventFlushMs: number;
  /** The network model, applied by each node to the messages it sends (the playground's network controls). */
  networkDelayMs: number;
  networkJitterMs: number;
  messageLoss: number;
  /** What the node ships to the observer (see `node-main.ts`). */
  observation: ObservationLevel;
  /** The cluster holds (see `ClusterConfig.held`). */
  held: boolean;
  /**
   * Where the node's checkpoints go. `postgres`: a node with `DATABASE_URL` in its environment opens its
   * own pool on this schema and writes and reads its checkpoints itself (it then reports them persisted
   * itself too); otherwise, and with `server`, every storage call goes to the server.
   */
  storage: { kind: 'postgres'; schema: string | null } | { kind: 'server' };
  storageTimeoutMs: number;
  /**
   * The server tells the coordinator (and the event stream) itself when a node's checkpoint write
   * succeeded: the node then sends neither its `persisted` message nor its `checkpointPersisted` event
   * for it, which saves a frame and a hop per checkpoint. False in `none` mode (nothing is written).
   */
  serverReportsPersisted?: boolean;
  /**
   * The cluster's first members: the placement of version 0 for a node that never heard of a change.
   * Given, the `playground` and `services` apps run under `withMembership` (services/membership.ts).
   */
  founders?: NodeId[];
}

export type NodeConfigPush = Partial<
  Pick<NodeRunConfig, 'checkpointIntervalMs' | 'heartbeatIntervalMs' | 'networkDelayMs' | 'networkJitterMs' | 'messageLoss' | 'observation' | 'held'>
>;

export type JoinReply = { ok: true; config: NodeRunConfig } | { error: ErrorBody };

/**
 * One frame from a node: the events it emitted, then the messages it sent after them. Events of a
 * frame are always numbered before its messages are delivered, so the stream is causally ordered
 * (a `messageSent` precedes its `messageDelivered`, a `checkpointPersisted` its `cutAdvanced`).
 */
export interface UpFrame {
  e?: InspectionEvent[];
  m?: [string, WireMessage][];
  /** Storage calls: [call id, op, args]; each is answered in a later `DownFrame`'s `r`. */
  s?: [number, StorageOp, unknown[]][];
}

/** One frame to a node: messages relayed to it, and answers to its storage calls. */
export interface DownFrame {
  m?: WireMessage[];
  r?: [number, StorageReply][];
}

export type StorageOp = 'writeCheckpoints' | 'loadCheckpoint';
export type StorageReply = { ok: true; value: unknown } | { error: ErrorBody };
