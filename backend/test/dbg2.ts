import { runSeed, DEFAULT_SIM_OPTIONS } from '../src/sim/world';
for (let seed = Number(process.argv[2]); seed < Number(process.argv[3]); seed++) {
  const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, mode: (process.argv[4] ?? 'speculative') as 'speculative', cutKind: (process.argv[5] ?? 'exact') as 'exact' });
  const kinds = new Map<string, number>();
  for (const v of r.violations) kinds.set(v.invariant, (kinds.get(v.invariant) ?? 0) + 1);
  if (r.violations.length) console.log(seed, [...kinds], r.violations[0]!.message);
}
