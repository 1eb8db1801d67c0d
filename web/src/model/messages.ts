import type { InspectionEvent } from '@dse/shared';
import type { MessageView } from './views';

type Event<T extends InspectionEvent['type']> = Extract<InspectionEvent, { type: T }>;

/**
 * The messages in the diagram, newest last, at most `max` (the oldest go first). A message sent
 * again keeps its id: its events (delivered, rejected, lost) land on its newest copy.
 */
export class MessageLog {
  readonly messages = new Map<number, MessageView>();
  private readonly lastById = new Map<string, number>();
  private nextUid = 1;

  constructor(private readonly max: number) {}

  sent(e: Event<'messageSent'>): void {
    const uid = this.nextUid++;
    this.messages.set(uid, {
      uid,
      id: e.id,
      kind: e.kind,
      from: e.from,
      to: e.to,
      worldLine: e.worldLine,
      srcVersion: e.srcVersion,
      resend: e.resend,
      sentAt: e.t,
      deliveredAt: null,
      deliveredVersion: null,
      duplicate: false,
      rejectedAt: null,
      receiverWorldLine: null,
      lostAt: null,
      lostReason: null,
      superseded: false,
      label: e.label ?? null,
    });
    const prev = this.find(e.id);
    if (prev !== undefined && prev.deliveredAt === null && prev.rejectedAt === null) prev.superseded = true;
    this.lastById.set(e.id, uid);
    if (this.messages.size > this.max) {
      const oldest = this.messages.keys().next();
      if (oldest.done !== true) {
        const m = this.messages.get(oldest.value)!;
        this.messages.delete(oldest.value);
        if (this.lastById.get(m.id) === m.uid) this.lastById.delete(m.id);
      }
    }
  }

  delivered(e: Event<'messageDelivered'>): void {
    const m = this.find(e.id);
    if (m !== undefined && m.deliveredAt === null && m.rejectedAt === null) {
      m.deliveredAt = e.t;
      m.deliveredVersion = e.version;
      m.duplicate = e.duplicate;
    }
  }

  rejected(e: Event<'messageRejected'>): void {
    const m = this.find(e.id);
    if (m !== undefined && m.deliveredAt === null && m.rejectedAt === null) {
      m.rejectedAt = e.t;
      m.receiverWorldLine = e.receiverWorldLine;
    }
  }

  lost(e: Event<'messageLost'>): void {
    const m = this.find(e.id);
    if (m !== undefined && m.deliveredAt === null && m.rejectedAt === null && m.lostAt === null) {
      m.lostAt = e.t;
      m.lostReason = e.reason;
    }
  }

  /** The newest copy of the message with this id, while it is kept. */
  find(id: string): MessageView | undefined {
    const uid = this.lastById.get(id);
    return uid === undefined ? undefined : this.messages.get(uid);
  }
}
