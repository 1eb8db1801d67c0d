import { useState } from 'react';
import { RECOVERY_KINDS } from '@dse/shared';

/** The seeded simulation's settings; `onRun` gets them as the address names them (`sim`, `mode`, …). */
export function SimulationForm({ disabled, onRun }: { disabled: boolean; onRun(sim: Record<string, string>): void }) {
  const [seed, setSeed] = useState('1');
  const [mode, setMode] = useState('speculative');
  const [recovery, setRecovery] = useState<string>('precise');
  const [faults, setFaults] = useState(true);
  const [nodes, setNodes] = useState('4');
  return (
    <form
      className="simform"
      onSubmit={(e) => {
        e.preventDefault();
        onRun({ sim: seed, mode, recovery, faults: faults ? '1' : '0', nodes });
      }}
    >
      <fieldset disabled={disabled}>
        <legend>Seeded simulation (the server runs it; the page replays its events)</legend>
        <label>
          seed <input value={seed} onChange={(e) => setSeed(e.target.value)} style={{ width: '4em' }} inputMode="numeric" data-testid="sim-seed" />
        </label>{' '}
        <label>
          mode{' '}
          <select value={mode} onChange={(e) => setMode(e.target.value)}>
            <option>speculative</option>
            <option>durable</option>
            <option>none</option>
          </select>
        </label>{' '}
        <label>
          recovery{' '}
          <select value={recovery} onChange={(e) => setRecovery(e.target.value)} data-testid="sim-recovery">
            {RECOVERY_KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>{' '}
        <label>
          nodes <input value={nodes} onChange={(e) => setNodes(e.target.value)} style={{ width: '3em' }} inputMode="numeric" />
        </label>{' '}
        <label>
          <input type="checkbox" checked={faults} onChange={(e) => setFaults(e.target.checked)} /> faults
        </label>{' '}
        <button type="submit" data-testid="sim-run">
          run
        </button>
      </fieldset>
    </form>
  );
}
