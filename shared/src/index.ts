export * from './protocol';
export * from './errors';
export * from './events';
export * from './api';
export * from './state-mirror';
export * from './placement';
