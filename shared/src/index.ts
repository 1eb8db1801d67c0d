export * from './protocol';
export * from './errors';
export * from './events';
export * from './api';
export * from './state-mirror';
export * from './placement';
export { isJson, jsonDepth, parseWith, problemOf, z } from './schema';
export type { Range } from './schema';
export * from './trace';
