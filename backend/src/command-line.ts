import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from 'node:util';

/**
 * Command lines: whatever is wrong with one (an unknown option, a malformed number, a value not
 * allowed) prints one line that names it, then the usage, and exits with status 2 (no stack trace).
 */

/** Exits with status 2 after `message` (one line) and the usage. */
export function usageError(message: string, usage: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

/** `parseArgs` for a command line: an unknown or malformed option is a usage error. */
export function parseCommandLine<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    usageError((e instanceof Error ? e.message : String(e)).split('\n')[0]!, usage);
  }
}

/** What a numeric option accepts. */
export interface NumberRule {
  /** The value when the option is absent. */
  default?: number;
  min?: number;
  max?: number;
  /** Above 0 (with `min`, both hold). */
  positive?: boolean;
  integer?: boolean;
}

/** Reads option values; each refuses a bad one as a usage error naming the option (`--name: expected …, got …`). */
export interface OptionReader {
  /** Exits with status 2 after `message` and the usage. */
  fail: (message: string) => never;
  /** A number (the rule's default when `raw` is undefined; with no default, the option is required). */
  number: (name: string, raw: string | undefined, rule?: NumberRule) => number;
  /** A comma-separated list of numbers; empty only when `allowEmpty` (then `''` is no number). */
  numbers: (name: string, raw: string, rule?: NumberRule & { allowEmpty?: boolean }) => number[];
  /** One of `allowed`. */
  oneOf: <T extends string>(name: string, raw: string, allowed: readonly T[]) => T;
}

export interface CommandLine<T extends ParseArgsConfig> extends OptionReader {
  values: ReturnType<typeof parseArgs<T>>['values'];
  positionals: ReturnType<typeof parseArgs<T>>['positionals'];
}

/**
 * Parses a command line (`parseCommandLine`) and answers `--help`, when the config declares it, with
 * the usage on stdout and status 0. The result reads option values with the checks of `OptionReader`.
 */
export function commandLine<T extends ParseArgsConfig>(config: T, usage: string): CommandLine<T> {
  const parsed = parseCommandLine(config, usage);
  const { values } = parsed;
  if ('help' in values && values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return { values, positionals: parsed.positionals, ...optionReader(usage) };
}

/** An `OptionReader` whose errors end with `usage`. */
export function optionReader(usage: string): OptionReader {
  const fail = (message: string): never => usageError(message, usage);
  const expected = (rule: NumberRule): string => {
    const kind = rule.integer === true ? 'integer' : 'number';
    const what = rule.positive === true ? `a positive ${kind}` : kind === 'integer' ? 'an integer' : 'a number';
    if (rule.min !== undefined && rule.max !== undefined) return `${what} from ${rule.min} to ${rule.max}`;
    if (rule.min !== undefined) return `${what} >= ${rule.min}`;
    if (rule.max !== undefined) return `${what} <= ${rule.max}`;
    return what;
  };
  const number = (name: string, raw: string | undefined, rule: NumberRule = {}): number => {
    if (raw === undefined) return rule.default ?? fail(`--${name}: missing`);
    const x = Number(raw);
    const ok =
      raw.trim() !== '' &&
      Number.isFinite(x) &&
      (rule.integer !== true || Number.isInteger(x)) &&
      (rule.positive !== true || x > 0) &&
      (rule.min === undefined || x >= rule.min) &&
      (rule.max === undefined || x <= rule.max);
    return ok ? x : fail(`--${name}: expected ${expected(rule)}, got ${raw}`);
  };
  return {
    fail,
    number,
    numbers: (name, raw, rule = {}) => {
      if (raw.trim() === '') return rule.allowEmpty === true ? [] : fail(`--${name}: expected a comma-separated list, got nothing`);
      return raw.split(',').map((s) => number(name, s, rule));
    },
    oneOf: (name, raw, allowed) => {
      const found = allowed.find((a) => a === raw);
      return found ?? fail(`--${name}: expected ${allowed.join(' or ')}, got ${raw}`);
    },
  };
}
