import type { App } from '../core/app';
import { kvApp } from './kv-app';

/**
 * Applications a node process can run, by name (`--app NAME`, or the server's choice). Services add
 * themselves here; the cluster runs whichever the server names.
 */
export const APPS: Record<string, App> = {
  kv: kvApp,
};

export function resolveApp(name: string): App | undefined {
  return Object.prototype.hasOwnProperty.call(APPS, name) ? APPS[name] : undefined;
}
