/**
 * Logs of the server and of every node process: one JSON line per event on stderr (pino), with its
 * time, level, process id and the fields it concerns (`node`, `worldLine`, `version`, ...). The level
 * comes from `DSE_LOG_LEVEL` (default `info`; tests set `warn`).
 *
 * The server's parts log through a `LogFn` (a message and its fields), so that tests can pass their
 * own or none; `loggerFn` turns a pino logger into one.
 */
import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

/** What a line is about: `node`, `worldLine`, `version`, `pid`, `code`... and `level` for one above `info`. */
export type LogFields = Record<string, unknown> & { level?: LogLevel };

/** A line of the log: a message, and the fields it concerns. */
export type LogFn = (msg: string, fields?: LogFields) => void;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `DSE_LOG_LEVEL` (or `text`), checked: throws an `Error` naming the levels there are. */
export function logLevel(text: string | undefined = process.env.DSE_LOG_LEVEL): LogLevel {
  const t = (text ?? '').trim().toLowerCase();
  if (t === '') return 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(t)) throw new Error(`DSE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${text}"`);
  return t as LogLevel;
}

export interface LoggerOptions {
  /** Fields of every line (`pid` is always there). */
  bindings?: Record<string, unknown>;
  level?: LogLevel;
  /** Fields computed at each line (a node's current world-line and version). */
  mixin?: () => Record<string, unknown>;
  /** Default stderr (file descriptor 2). */
  dest?: NodeJS.WritableStream | number;
}

/**
 * A logger writing JSON lines to stderr, synchronously: a node process that exits right after an
 * error must not lose the line that says why.
 */
export function createLogger(o: LoggerOptions = {}): Logger {
  const dest = o.dest ?? 2;
  return pino(
    {
      level: o.level ?? logLevel(),
      base: { pid: process.pid, ...o.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      // `"level":"warn"` rather than pino's numbers: read by people as much as by tools.
      formatters: { level: (label) => ({ level: label }) },
      ...(o.mixin !== undefined ? { mixin: o.mixin } : {}),
    },
    typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest,
  );
}

/** A `LogFn` on a pino logger: `fields.level` picks the level (default `info`), the other fields go into the line. */
export function loggerFn(logger: Logger): LogFn {
  return (msg, fields) => {
    if (fields === undefined) {
      logger.info(msg);
      return;
    }
    const { level, ...rest } = fields;
    if (level === 'silent') return;
    logger[level ?? 'info'](rest, msg);
  };
}

/** A line a child process wrote: one of its JSON log lines (kept as it is), or `null` for anything else. */
export function jsonLogLine(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v) && 'msg' in v ? v : null;
  } catch {
    return null;
  }
}
