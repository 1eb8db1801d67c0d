import type { App } from '../core/app';
import { BROKER_PREFIX, brokerApp } from './broker';
import { serviceRouter } from './common';
import { KV_PREFIX, kvStoreApp } from './kv';
import { WAL_PREFIX, walApp } from './wal';
import { MEMBERSHIP_PREFIX } from './placement';
import { TRAVEL_PREFIX, WORKFLOW_PREFIX, travelApp, workflowApp } from './workflow';

export * from './common';
export * from './wal';
export * from './kv';
export * from './broker';
export * from './workflow';
export * from './placement';
export * from './membership';

/**
 * Every service on every node, routed by the payload's `svc`: `wal`, `kv`, `broker`, `wf` (the
 * workflow orchestrator) and `travel` (the providers a travel reservation calls). A live node
 * process runs this App to offer all four services.
 */
export const SERVICES: Readonly<Record<string, App>> = { wal: walApp, kv: kvStoreApp, broker: brokerApp, wf: workflowApp, travel: travelApp };
export const servicesApp: App = serviceRouter(SERVICES);

/**
 * The state key prefixes the services keep their state under (`wal/`, `kv/`, `br/`, `wf/`, `tr/`, and
 * `pl/`, the membership's own):
 * an app sharing a node with them (the live `playground` app's kv part) must not write keys there.
 */
export const SERVICE_PREFIXES: readonly string[] = [WAL_PREFIX, KV_PREFIX, BROKER_PREFIX, WORKFLOW_PREFIX, TRAVEL_PREFIX, MEMBERSHIP_PREFIX];

/** The service prefix `key` starts with, if any. */
export function servicePrefixOf(key: string): string | undefined {
  return SERVICE_PREFIXES.find((p) => key.startsWith(p));
}
