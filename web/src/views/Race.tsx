import { useCallback, useEffect, useRef, useState } from 'react';
import type { ClusterConfig, WorkloadConfig, WorkloadKind } from '@dse/shared';
import type { PlaygroundModel } from '../model/model';
import { answerLatencies, histogram, percentiles } from '../model/stats';
import { OKABE_ITO } from '../palette';

type RaceMode = 'speculative' | 'durable';
const MODES: RaceMode[] = ['speculative', 'durable'];
const COLOUR: Record<RaceMode, string> = { speculative: OKABE_ITO.orange, durable: OKABE_ITO.blue };

/**
 * The latency race: the same request kind answered in speculative and in durable mode. The server
 * runs one mode at a time, so the race alternates the cluster's mode in rounds (each switch restarts
 * the nodes from the cut) and compares the answers of the requests sent during the race, by the mode
 * they were answered in (`sessionResult` events).
 */
export function Race({
  model,
  rev,
  disabled,
  setConfig,
  setWorkload,
}: {
  model: PlaygroundModel;
  rev: number;
  disabled: boolean;
  setConfig(patch: Partial<ClusterConfig>): Promise<boolean>;
  setWorkload(w: WorkloadConfig): Promise<boolean>;
}) {
  const [open, setOpen] = useState(false);
  const [kind, setKind] = useState<WorkloadKind>('kv');
  const [rate, setRate] = useState(30);
  const [roundS, setRoundS] = useState(5);
  const [rounds, setRounds] = useState(2);
  const [since, setSince] = useState<number | null>(null);
  const [status, setStatus] = useState<string>('');
  const [running, setRunning] = useState(false);
  const stopRef = useRef(false);
  const modelRef = useRef(model);
  useEffect(() => {
    modelRef.current = model;
  }, [model]);
  useEffect(() => () => void (stopRef.current = true), []);

  const run = useCallback(async () => {
    const m = modelRef.current;
    const before = { mode: m.mode, workload: m.workload };
    stopRef.current = false;
    setRunning(true);
    setSince(m.lastT);
    try {
      if (!(await setWorkload({ kind, rate }))) return;
      for (let r = 1; r <= rounds && !stopRef.current; r++) {
        for (const mode of MODES) {
          if (stopRef.current) break;
          setStatus(`round ${r} of ${rounds}: ${mode} (switching the cluster's mode restarts its nodes)`);
          if (modelRef.current.mode !== mode && !(await setConfig({ mode }))) return;
          const until = performance.now() + roundS * 1000;
          while (performance.now() < until && !stopRef.current) await new Promise((res) => setTimeout(res, 200));
        }
      }
      setStatus(stopRef.current ? 'stopped' : `done: ${rounds} ${rounds === 1 ? 'round' : 'rounds'} of ${roundS} s per mode`);
    } finally {
      if (before.mode !== null && modelRef.current.mode !== before.mode) await setConfig({ mode: before.mode });
      if (before.workload !== null) await setWorkload(before.workload);
      setRunning(false);
    }
  }, [kind, rate, roundS, rounds, setConfig, setWorkload]);

  void rev;
  const lat = since === null ? null : answerLatencies(model, since);
  const series = MODES.map((mo) => lat?.get(mo) ?? []);
  const bins = 24;
  const hist = histogram(series, bins);
  const w = 360;
  const h = 44;
  const bw = w / bins;

  return (
    <section className="race" data-testid="race">
      <button type="button" onClick={() => setOpen((o) => !o)} aria-expanded={open} data-testid="race-toggle">
        {open ? '▾' : '▸'} latency race: speculative vs durable
      </button>
      {open && (
        <div>
          <p className="muted">
            The server runs one mode at a time, so the race alternates the same cluster between speculative and durable mode in rounds, with the same workload,
            and compares the answer latency (request → answer) of the requests sent since the race started, by the mode that answered them.
          </p>
          <fieldset disabled={disabled || running}>
            workload{' '}
            <select value={kind} onChange={(e) => setKind(e.target.value as WorkloadKind)}>
              <option>kv</option>
              <option>chain</option>
              <option>mixed</option>
            </select>{' '}
            rate/s <input value={rate} onChange={(e) => setRate(Number(e.target.value) || 0)} style={{ width: '4em' }} inputMode="numeric" /> round s{' '}
            <input
              value={roundS}
              onChange={(e) => setRoundS(Math.max(1, Number(e.target.value) || 1))}
              style={{ width: '3em' }}
              inputMode="numeric"
              data-testid="race-round-seconds"
            />{' '}
            rounds{' '}
            <input
              value={rounds}
              onChange={(e) => setRounds(Math.max(1, Number(e.target.value) || 1))}
              style={{ width: '3em' }}
              inputMode="numeric"
              data-testid="race-rounds"
            />{' '}
            <button type="button" onClick={() => void run()} data-testid="race-start">
              start race
            </button>
          </fieldset>
          {running && (
            <button type="button" onClick={() => (stopRef.current = true)} data-testid="race-stop">
              stop
            </button>
          )}{' '}
          <span data-testid="race-status">{status}</span>
          {since !== null && (
            <div className="race-results">
              <table className="pct" data-testid="race-table">
                <thead>
                  <tr>
                    <th>mode</th>
                    <th>p50 ms</th>
                    <th>p99 ms</th>
                    <th>n</th>
                  </tr>
                </thead>
                <tbody>
                  {MODES.map((mo, i) => {
                    const p = percentiles(series[i]!);
                    return (
                      <tr key={mo} data-testid={`race-${mo}`} data-count={p?.count ?? 0} data-p50={p?.p50 ?? ''}>
                        <td style={{ color: COLOUR[mo] }}>{mo}</td>
                        <td>{p === null ? '—' : p.p50.toFixed(1)}</td>
                        <td>{p === null ? '—' : p.p99.toFixed(1)}</td>
                        <td>{p?.count ?? 0}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              <div>
                <div className="chart-title">answer latency distribution, 0 – {hist.max.toFixed(1)} ms (p99 of both; slower answers in the last bin)</div>
                {MODES.map((mo, i) => {
                  const c = hist.counts[i]!;
                  const max = Math.max(1, ...c);
                  return (
                    <svg
                      key={mo}
                      width={w}
                      height={h}
                      role="img"
                      aria-label={`${mo} latency distribution`}
                      data-testid={`race-hist-${mo}`}
                      style={{ display: 'block' }}
                    >
                      {c.map((n, b) => (
                        <rect key={b} x={b * bw} y={h - (n / max) * (h - 2)} width={bw - 1} height={(n / max) * (h - 2)} fill={COLOUR[mo]} />
                      ))}
                      <text x={w - 4} y={12} textAnchor="end" fontSize={11}>
                        {mo}
                      </text>
                    </svg>
                  );
                })}
              </div>
            </div>
          )}
        </div>
      )}
    </section>
  );
}
