import type { App } from '../core/app';
import { servicesApp } from '../services';
import { kvApp } from './kv-app';

/**
 * Applications a node process can run, by name (`--app NAME`, or the server's choice). Services add
 * themselves here; the cluster runs whichever the server names.
 */
export const APPS: Record<string, App> = {
  kv: kvApp,
  /** Every service of `backend/src/services` (wal, kv store, broker, workflows), routed by the payload's `svc`. */
  services: servicesApp,
};

export function resolveApp(name: string): App | undefined {
  return Object.prototype.hasOwnProperty.call(APPS, name) ? APPS[name] : undefined;
}
