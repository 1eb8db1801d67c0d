import * as z from 'zod';
import type { Json } from './protocol';

// No code generated at run time: zod's fast path compiles parsers with `new Function`, which the
// playground's Content-Security-Policy forbids (its probe alone is reported as a violation). These
// schemas check commands, traces and joins, never the data path, so the interpreted parser is enough.
z.config({ jitless: true });

/**
 * Building blocks for the schemas of everything that crosses a boundary (API commands and replies,
 * inspection events, trace files, node joins). Each one carries the message a client sees when its
 * input is refused, written to be read by a person ("messageLoss must be between 0 and 1, not 2"),
 * and `problemOf` puts the first problem of a refused input into one sentence.
 */

type Issue = { input?: unknown };

/** "is required" when the field is absent, otherwise "must be <what>". */
export function mustBe(what: string): (iss: Issue) => string {
  return (iss) => (iss.input === undefined ? 'is required' : `must be ${what}`);
}

export interface Range {
  min: number;
  max: number;
}

/** A finite number in `range` (an integer if `integer`). */
export function bounded(range: Range, integer = false) {
  const between = (iss: Issue): string => `must be between ${range.min} and ${range.max}, not ${String(iss.input)}`;
  const n = z.number({ error: mustBe('a number') });
  return (integer ? n.int({ error: 'must be an integer' }) : n).min(range.min, { error: between }).max(range.max, { error: between });
}

/** A finite number (an integer if `integer`), unbounded. */
export function num(integer = false) {
  const n = z.number({ error: mustBe('a number') });
  return integer ? n.int({ error: 'must be an integer' }) : n;
}

export function bool() {
  return z.boolean({ error: mustBe('true or false') });
}

export function str() {
  return z.string({ error: mustBe('a string') });
}

/** An array of `item`s. */
export function list<T extends z.ZodType>(item: T) {
  return z.array(item, { error: mustBe('a list') });
}

/** An object used as a map from strings to `value`s. */
export function map<T extends z.ZodType>(value: T, described = 'an object') {
  return z.record(z.string(), value, { error: mustBe(described) });
}

/** One of `values` (a constant tuple, so that the inferred type is their union). */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: (iss) => (iss.input === undefined ? `is required (${values.join(', ')})` : `must be one of ${values.join(', ')}`) });
}

/** A string matching `pattern`; `described` completes "must be …". */
export function matching(pattern: RegExp, described: string) {
  return z.string({ error: mustBe(described) }).regex(pattern, { error: `must be ${described}` });
}

/**
 * An object with exactly these fields: an unknown one is refused by name, with the list of the known
 * ones (a typo in a config key must not be ignored silently).
 */
export function obj<S extends z.ZodRawShape>(shape: S) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `unknown field ${JSON.stringify(iss.keys[0]).slice(0, 80)} (allowed: ${allowed})` : 'must be a JSON object',
  });
}

/** An object as a peer sends it (a reply, an event): fields this side does not know are dropped, not refused. */
export function reply<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape, { error: 'must be a JSON object' });
}

/** The message of a union on `type` that matched no member: not an object, no type, or another type than `types`. */
export function discriminatorError(types: readonly string[]): (iss: Issue) => string {
  return (iss) => {
    if (typeof iss.input !== 'object' || iss.input === null) return 'must be a JSON object';
    const type = (iss.input as { type?: unknown }).type;
    return type === undefined ? 'is required' : `must be one of ${types.join(', ')} (not ${JSON.stringify(type).slice(0, 60)})`;
  };
}

/** Depth of nesting of a JSON value, counted up to `limit + 1` (so a hostile value costs no more than that). */
export function jsonDepth(v: unknown, limit: number): number {
  if (typeof v !== 'object' || v === null) return 0;
  if (limit <= 0) return 1;
  let d = 0;
  for (const x of Object.values(v)) d = Math.max(d, jsonDepth(x, limit - 1));
  return d + 1;
}

/** Whether `v` is a JSON value (no undefined, functions, non-finite numbers or binary), nested at most `depthMax` deep. */
export function isJson(v: unknown, depthMax: number): v is Json {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if (v === null) return true;
      if (depthMax <= 0) return false;
      if (Array.isArray(v)) return v.every((x) => isJson(x, depthMax - 1));
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) return false;
      return Object.values(v).every((x) => isJson(x, depthMax - 1));
    }
    default:
      return false;
  }
}

/** A JSON value nested at most `depthMax` deep (checked without recursing further than that). */
export function json(depthMax: number) {
  return z.custom<Json>((v) => isJson(v, depthMax), { error: `must be a JSON value nested at most ${depthMax} levels deep` });
}

/** A JSON object (its values JSON), nested at most `depthMax` deep. */
export function jsonObject(depthMax: number) {
  return z.custom<{ [k: string]: Json }>((v) => typeof v === 'object' && v !== null && !Array.isArray(v) && isJson(v, depthMax), {
    error: (iss) => (iss.input === undefined ? 'is required' : `must be a JSON object nested at most ${depthMax} levels deep`),
  });
}

/**
 * The first problem of a refused input as one sentence: `what` names the input ("request", "config"),
 * the issue's path the field ("config: messageLoss must be between 0 and 1, not 2").
 */
export function problemOf(error: z.ZodError, what: string): string {
  const iss = error.issues[0];
  if (iss === undefined) return `${what} is malformed`;
  const path = iss.path.map(String).join('.');
  const msg = iss.message;
  const predicate = /^(must|is|has) /.test(msg);
  if (path === '') return predicate ? `${what} ${msg}` : `${what}: ${msg}`;
  return predicate ? `${what}: ${path} ${msg}` : `${what}: ${path}: ${msg}`;
}

/** Parses `v` with `schema`, or throws `fail(problem)` with the first problem. */
export function parseWith<T extends z.ZodType>(schema: T, v: unknown, what: string, fail: (problem: string) => Error): z.output<T> {
  const r = schema.safeParse(v);
  if (!r.success) throw fail(problemOf(r.error, what));
  return r.data;
}

export { z };
