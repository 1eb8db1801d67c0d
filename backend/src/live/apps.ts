import type { Json, NodeId } from '@dse/shared';
import type { ActionContext, App, AppRequest, Pending } from '../core/app';
import { servicesApp } from '../services';
import { kvApp } from './kv-app';

/** A payload meant for the services: an object with a string `svc`. */
function forServices(payload: Json): boolean {
  return typeof payload === 'object' && payload !== null && !Array.isArray(payload) && typeof payload.svc === 'string';
}

/**
 * The playground's default app: the small kv app and every service on every node. Requests and
 * messages whose payload has a string `svc` go to the services (`wal`, `kv`, `broker`, `wf`,
 * `travel`), the others to the kv app (`{op, key}`), which refuses keys under the services' state
 * prefixes, so the two never write each other's state.
 */
export const playgroundApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json | Pending {
    return forServices(req.payload) ? servicesApp.onRequest(ctx, req) : kvApp.onRequest(ctx, req);
  },
  onMessage(ctx: ActionContext, from: NodeId, payload: Json): void {
    if (forServices(payload)) servicesApp.onMessage?.(ctx, from, payload);
    else kvApp.onMessage?.(ctx, from, payload);
  },
  onRestore(ctx: ActionContext): void {
    servicesApp.onRestore?.(ctx);
    kvApp.onRestore?.(ctx);
  },
  onInherit(ctx: ActionContext, from: NodeId, keys: readonly string[]): void {
    servicesApp.onInherit?.(ctx, from, keys);
    kvApp.onInherit?.(ctx, from, keys);
  },
};

/** The app the server runs when none is named. */
export const DEFAULT_APP = 'playground';

/**
 * Applications a node process can run, by name (`--app NAME`, or the server's choice). Services add
 * themselves here; the cluster runs whichever the server names.
 */
export const APPS: Record<string, App> = {
  /** The default: the kv app and every service (see `playgroundApp`). */
  playground: playgroundApp,
  kv: kvApp,
  /** Every service of `backend/src/services` (wal, kv store, broker, workflows), routed by the payload's `svc`. */
  services: servicesApp,
};

/** The apps whose units are placed over the members and moved when they change (`withMembership`). */
export const PLACED_APPS: readonly string[] = ['playground', 'services'];

export function resolveApp(name: string): App | undefined {
  return Object.prototype.hasOwnProperty.call(APPS, name) ? APPS[name] : undefined;
}
