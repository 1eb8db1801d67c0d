/**
 * Preloaded into the benchmark's node processes (`NODE_OPTIONS=--import tsx --import <this file>`):
 * registers every service (`servicesApp`: wal, kv, broker, workflows, travel providers) as the live
 * app named `services`, when `backend/src/live/apps.ts` does not offer it already. The benchmark then
 * runs real node processes with the workflow orchestrator and the key-value store.
 */
import { APPS } from '../../live/apps';
import { servicesApp } from '../../services';

export const SERVICES_APP = 'services';

if (!Object.prototype.hasOwnProperty.call(APPS, SERVICES_APP)) APPS[SERVICES_APP] = servicesApp;
