import type { CallerId, NodeId, Version, WorldLine } from './protocol';

/**
 * The id of a message in the inspection stream: the same on the sending and the receiving side (the
 * playground draws arrows with it, and finds a session's request by it). The format is the runtime's
 * (`messageId` in `backend/src/core/node.ts` builds every id with these); readers take ids apart
 * with `requestOfMessageId`, never by hand.
 *
 * - app message `a/<src>/<seq>`; ack `k/<src>/<ackSeq>/<srcVersion>`; reject `x/<src>/<rejectedSeq>`
 * - request `q/<caller>/<seq>/<world-line>`; its reply `r/<caller>/<seq>/<world-line>/<replying node>`
 *
 * A caller id may hold `/` (an sthread's id names its workflow); node ids and numbers never do.
 */
export const messageIds = {
  app: (src: string, seq: number): string => `a/${src}/${seq}`,
  request: (caller: CallerId, seq: number, worldLine: WorldLine): string => `q/${caller}/${seq}/${worldLine}`,
  reply: (caller: CallerId, seq: number, worldLine: WorldLine, src: NodeId): string => `r/${caller}/${seq}/${worldLine}/${src}`,
  ack: (src: string, ackSeq: number, srcVersion: Version): string => `k/${src}/${ackSeq}/${srcVersion}`,
  reject: (src: string, rejectedSeq: number): string => `x/${src}/${rejectedSeq}`,
};

/** The request a request or reply id is about: its caller, number and world-line (null for other ids). */
export function requestOfMessageId(id: string): { caller: CallerId; seq: number; worldLine: WorldLine } | null {
  const parts = id.split('/');
  const tail = parts[0] === 'q' ? 2 : parts[0] === 'r' ? 3 : 0;
  if (tail === 0 || parts.length < tail + 2) return null;
  const caller = parts.slice(1, parts.length - tail).join('/');
  const seq = Number(parts[parts.length - tail]);
  const worldLine = Number(parts[parts.length - tail + 1]);
  if (!Number.isInteger(seq) || !Number.isInteger(worldLine)) return null;
  return { caller, seq, worldLine };
}
