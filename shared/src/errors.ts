/**
 * Errors that say whether the thing happened. A definite error means it certainly did not happen
 * (a rolled-back request, a rejected command); an indefinite one means it may have (a timeout, a
 * lost connection in the middle of a write).
 */
export const ERROR_CODES = {
  RolledBack: { definite: true },
  WorldLineChanged: { definite: true },
  StaleWorldLine: { definite: true },
  SessionBusy: { definite: true },
  /** A session with a rolled-back request refuses every later one until the client calls `resume()`. */
  SessionRolledBack: { definite: true },
  /** A coordinator record whose cut is below the one stored for the same world-line: a late, older save. */
  StaleCut: { definite: true },
  Timeout: { definite: false },
  StorageUnavailable: { definite: false },
  StorageConflict: { definite: true },
  StorageLocked: { definite: true },
  StorageCorrupt: { definite: true },
  BadRequest: { definite: true },
  NotFound: { definite: true },
  Unauthorized: { definite: true },
  LimitExceeded: { definite: true },
  Conflict: { definite: true },
  /**
   * The node does not own the key (log, topic, workflow) the request names, under its placement: the
   * request did not happen; send it to the owner the answer names (`owner`, placement `version`).
   */
  WrongOwner: { definite: true },
  /** The request was for a node removed from the cluster: it did not run there; route it by the current placement. */
  NodeRemoved: { definite: true },
  /**
   * The request was accepted by a node removed before it answered (a workflow still running there): what
   * it did so far is committed and went with the node's state to the new owner, but no answer will come.
   */
  Orphaned: { definite: false },
  Internal: { definite: false },
} as const satisfies Record<string, { definite: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  definite: boolean;
}

export class DseError extends Error {
  readonly code: ErrorCode;
  readonly definite: boolean;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = code;
    this.code = code;
    this.definite = ERROR_CODES[code].definite;
  }
  toBody(): ErrorBody {
    return { code: this.code, message: this.message, definite: this.definite };
  }
}

/** The request's speculative result was discarded by a recovery: it certainly did not take effect. */
export class RolledBack extends DseError {
  constructor(message: string) {
    super('RolledBack', message);
  }
}

/**
 * A session stays rolled back (as in the paper): once request `rolledBackSeq` was rolled back, the
 * session refuses every request it has not sent yet until the client acknowledges with `resume()`.
 * `lastSurvivingSeq` is the last request of the session that survived (0: none).
 */
export class SessionRolledBack extends DseError {
  readonly session: string;
  readonly rolledBackSeq: number;
  readonly lastSurvivingSeq: number;
  constructor(session: string, rolledBackSeq: number, lastSurvivingSeq: number) {
    super(
      'SessionRolledBack',
      `session ${session} is rolled back: request ${rolledBackSeq} was rolled back; the last surviving request is ${lastSurvivingSeq === 0 ? 'none' : lastSurvivingSeq}. Resume the session (resume()) to send more.`,
    );
    this.session = session;
    this.rolledBackSeq = rolledBackSeq;
    this.lastSurvivingSeq = lastSurvivingSeq;
  }
}

export function isDseError(e: unknown): e is DseError {
  return e instanceof DseError;
}

export function errorBody(e: unknown): ErrorBody {
  if (isDseError(e)) return e.toBody();
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'Internal', message, definite: false };
}
