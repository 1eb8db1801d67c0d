import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SimulateBody, SimulateResult } from '@dse/shared';
import { DseError } from '@dse/shared';
import { entryPoint } from '../storage/entry-points';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SIM_WORKER = entryPoint('server/sim-worker');

/**
 * Runs the simulator for the `simulate` command in a child process (`sim-worker.ts`), one at a time,
 * so that a long simulation never stalls the server's event loop.
 */
export class SimulationRunner {
  private running = false;
  private child: ReturnType<typeof spawn> | null = null;

  run(body: SimulateBody): Promise<SimulateResult> {
    if (this.running) return Promise.reject(new DseError('Conflict', 'a simulation is running; try again when it finished'));
    this.running = true;
    return new Promise<SimulateResult>((resolve, reject) => {
      const child = spawn(process.execPath, [...SIM_WORKER.nodeArgs, SIM_WORKER.file, JSON.stringify(body)], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.child = child;
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => {
        err = (err + b.toString()).slice(-2000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        this.running = false;
        this.child = null;
        if (code !== 0) {
          reject(new DseError('Internal', `the simulation exited with ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(out).toString()) as SimulateResult);
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  /** Kills a running simulation (the server is closing). */
  kill(): void {
    this.child?.kill('SIGKILL');
  }
}
