import type { CutKind, ErrorBody, InspectionEvent, Mode, NodeId, ObservationLevel } from '@dse/shared';
import type { Untrusted } from '@dse/shared';
import { DseError, NODE_ID_PATTERN, parseWith, PROTOCOL_VERSION, z } from '@dse/shared';
import type { Namespace, Socket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import type { WireMessage } from '../core/messages';

/**
 * The connection between a node process and the server (Socket.IO namespace `/node`, one WebSocket):
 * the control plane. It carries the node's join, its messages to the coordinator and to the server's
 * session host (messages between nodes go over their own links, `links.ts`), its inspection events,
 * its Storage calls (the server owns the database), and the server's configuration and peer tables.
 * The same connection works from another host (`npm run node`).
 *
 * node → server: `join` (JoinRequest, ack JoinReply), `up` (UpFrame: events, messages and storage calls)
 * server → node: `m` (DownFrame: messages and storage replies), `peers` (PeerTable), `cfg`
 * (NodeConfigPush), `reset` (NodeRunConfig: start again with empty memory in a new mode or cut)
 * (typed: `NodeToServerEvents`, `ServerToNodeEvents`).
 *
 * The join carries the node's `PROTOCOL_VERSION` and is checked whole (`parseJoin`): a node of another
 * release is refused with a clear error before it takes part. Frames after the join are the hot path:
 * they are decoded with cheap structural checks (`node-gateway.ts`), not a schema walk of every event.
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

const JoinRequestSchema = z.object(
  {
    /** The node's `PROTOCOL_VERSION`: the server refuses another. */
    protocol: z.number({ error: 'is required (a node of a release that sends none is too old for this server)' }),
    id: z.string({ error: 'must be a node id' }).regex(NODE_ID_PATTERN, { error: 'must be a node id (a letter, then letters, digits, _ or -; at most 32)' }),
    pid: z.number({ error: 'must be a process id' }).int({ error: 'must be a process id' }),
    /** Set by the server when it spawned this process; null for a process started by hand (remote). */
    incarnation: z.string({ error: 'must be a string or null' }).nullable().catch(null),
    /** Where the node's peers reach it (its data-plane listener, `links.ts`). */
    data: z.object(
      {
        host: z.string({ error: 'must be a host name or address' }),
        port: z
          .number({ error: 'must be a port' })
          .int({ error: 'must be a port' })
          .min(1, { error: 'must be a port' })
          .max(65535, { error: 'must be a port' }),
      },
      { error: 'must be {host, port}, where peers reach this node' },
    ),
  },
  { error: 'must be {protocol, id, pid, incarnation, data}' },
);
export type JoinRequest = z.infer<typeof JoinRequestSchema>;

/**
 * A node's join, checked whole before anything changes. A node of another protocol version is refused
 * first, by name: whatever else it sends may mean something else to this server.
 */
export function parseJoin(raw: unknown): JoinRequest {
  const protocol = typeof raw === 'object' && raw !== null ? (raw as { protocol?: unknown }).protocol : undefined;
  if (typeof protocol === 'number' && protocol !== PROTOCOL_VERSION) {
    throw new DseError(
      'BadRequest',
      `join: this node speaks protocol version ${protocol} and the server ${PROTOCOL_VERSION}: run the node from the same release as the server`,
    );
  }
  return parseWith(JoinRequestSchema, raw, 'join', (problem) => new DseError('BadRequest', problem));
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

/** What a node process sends the server (namespace `/node`). */
export interface NodeToServerEvents {
  join: (req: JoinRequest, reply: (r: JoinReply) => void) => void;
  up: (frame: UpFrame) => void;
}

/** A node's answer to `leave`: its last version and world-line (`DseNode.leave`), or null when it is not up. */
export type LeaveReply = { version: number; worldLine: number } | null;

/** What the server sends a node process. */
export interface ServerToNodeEvents {
  m: (frame: DownFrame) => void;
  peers: (table: PeerTable) => void;
  cfg: (push: NodeConfigPush) => void;
  reset: (cfg: NodeRunConfig) => void;
  /** The node, drained, leaves the cluster: it takes no input any more (see `DseNode.leave`). */
  leave: (reply: (r: LeaveReply) => void) => void;
}

/**
 * The server's end of a node's connection. Its event maps say what a well-behaved node sends; the
 * gateway still checks every argument (a node process is a trust boundary).
 */
export type NodeNamespace = Namespace<Untrusted<NodeToServerEvents>, ServerToNodeEvents>;
export type NodeConnection = Socket<Untrusted<NodeToServerEvents>, ServerToNodeEvents>;
/** The node process's end. */
export type NodeClientSocket = ClientSocket<ServerToNodeEvents, NodeToServerEvents>;
