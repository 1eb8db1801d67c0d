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

export function isDseError(e: unknown): e is DseError {
  return e instanceof DseError;
}

export function errorBody(e: unknown): ErrorBody {
  if (isDseError(e)) return e.toBody();
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'Internal', message, definite: false };
}
