import { runSeed, DEFAULT_SIM_OPTIONS } from '../src/sim/world';
const pat = process.argv[3] ?? 's2';
const seed = Number(process.argv[2] ?? 1);
const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, onEvent: (e) => {
  const s = JSON.stringify(e);
  if (s.includes(pat) || e.type==='worldLineChanged' || e.type==='rollback' || e.type==='nodeFailed' || e.type==='nodeRestarted') console.log(s.slice(0, 300));
}});
console.log(r.violations.slice(0,3));
