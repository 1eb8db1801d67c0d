import type { App } from '../core/app';
import { brokerApp } from './broker';
import { serviceRouter } from './common';
import { kvStoreApp } from './kv';
import { walApp } from './wal';
import { travelApp, workflowApp } from './workflow';

export * from './common';
export * from './wal';
export * from './kv';
export * from './broker';
export * from './workflow';

/**
 * Every service on every node, routed by the payload's `svc`: `wal`, `kv`, `broker`, `wf` (the
 * workflow orchestrator) and `travel` (the providers a travel reservation calls). A live node
 * process runs this App to offer all four services.
 */
export const SERVICES: Readonly<Record<string, App>> = { wal: walApp, kv: kvStoreApp, broker: brokerApp, wf: workflowApp, travel: travelApp };
export const servicesApp: App = serviceRouter(SERVICES);
