import type { ChaosOptions } from './run';
import type { ServerProcess } from './server-proc';
import type { SessionResumes } from './tracked';
import type { LoadCtx } from './service-load';
import type { PutRecord } from './verify';
import type { ServiceRecord } from './verify-services';

/** What every part of one chaos run shares: its options, the server, and what the clients sent. */
export interface RunContext extends LoadCtx {
  o: ChaosOptions;
  server: ServerProcess;
  incarnation: number;
  up: boolean;
  stopping: boolean;
  /** kv: each put a client sent. */
  records: PutRecord[];
  /** Service scenarios: each service request a client sent. */
  serviceRecords: ServiceRecord[];
  sessions: SessionResumes;
  keyPrefix: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
