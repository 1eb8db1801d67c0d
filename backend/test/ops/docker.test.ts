/**
 * No Docker engine runs here: this reads `docker/compose.yaml` and `docker/Dockerfile` and checks that
 * every service, port, environment variable, command and file they name exists in the project, and
 * that the runtime image (production dependencies only) has every package the server and the node
 * processes import.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCKER = join(ROOT, 'docker');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  init?: boolean;
  restart?: string;
  networks?: string[];
  volumes?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, unknown>;
}

const compose = parse(readFileSync(join(DOCKER, 'compose.yaml'), 'utf8'), { merge: true }) as Compose;
const services = compose.services;
/** The services built from this project (the others are images from elsewhere: PostgreSQL). */
const ours = Object.entries(services).filter(([, s]) => s.build !== undefined);
const dockerfile = readFileSync(join(DOCKER, 'Dockerfile'), 'utf8');

function readJson(path: string): Record<string, Record<string, string> | undefined> {
  return JSON.parse(readFileSync(join(ROOT, path), 'utf8')) as Record<string, Record<string, string> | undefined>;
}

/** Every `.ts`/`.mjs` file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|mjs)$/.test(name) ? [p] : [];
  });
}
const backendSource = sources(join(ROOT, 'backend', 'src'))
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

/** The environment variables the backend reads. */
const readVars = new Set([...backendSource.matchAll(/process\.env(?:\.([A-Z_][A-Z0-9_]*)|\[['"]([A-Z_][A-Z0-9_]*)['"]\])/g)].map((m) => m[1] ?? m[2]!));

/** The Dockerfile's instructions, continuation lines joined, by stage. */
const instructions = dockerfile
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stages = new Map<string, string[]>();
let stage = '';
for (const l of instructions) {
  const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(l);
  if (from !== null) {
    stage = from[1] ?? `stage${stages.size}`;
    stages.set(stage, []);
  } else stages.get(stage)!.push(l);
}
const runtime = [...stages.values()].at(-1)!;

/** A command line `node [flags] SCRIPT [args]`: checks the script exists and takes the options given. */
function checkNodeCommand(cmd: readonly string[], where: string): { script: string; args: string[] } {
  expect(cmd[0], `${where}: runs node itself (signals reach it), not npm`).toBe('node');
  let i = 1;
  const flags: string[] = [];
  while (cmd[i]?.startsWith('--')) {
    flags.push(cmd[i]!);
    if (cmd[i] === '--import') flags.push(cmd[++i]!);
    i++;
  }
  let script = cmd[i]!;
  // A compiled program (backend/dist, built in the image by `npm run build`): its source exists and the build makes it.
  const built = /^backend\/dist\/(.+)\.js$/.exec(script);
  if (built !== null) {
    expect(readFileSync(join(ROOT, 'scripts/build-backend.mjs'), 'utf8'), `${where}: the build makes ${script}`).toContain(`'${built[1]}'`);
    script = `backend/src/${built[1]}.ts`;
  }
  expect(existsSync(join(ROOT, script)), `${where}: ${script} exists`).toBe(true);
  if (flags.includes('--import')) {
    const loader = flags[flags.indexOf('--import') + 1]!;
    expect(readJson('backend/package.json').dependencies, `${where}: ${loader} is a runtime dependency`).toHaveProperty([loader]);
  }
  const args = cmd.slice(i + 1);
  const text = readFileSync(join(ROOT, script), 'utf8');
  for (const a of args.filter((x) => x.startsWith('--'))) {
    expect(text, `${where}: ${script} takes ${a}`).toMatch(new RegExp(`\\b${a.slice(2)}: \\{ type: '`));
  }
  return { script, args };
}

describe('docker/compose.yaml', () => {
  it('names services, networks and volumes that are defined', () => {
    expect(Object.keys(services).sort()).toEqual(['node1', 'node2', 'node3', 'postgres', 'server']);
    for (const [name, s] of Object.entries(services)) {
      for (const d of Object.keys(s.depends_on ?? {})) expect(services, `${name} depends on ${d}`).toHaveProperty([d]);
      for (const n of s.networks ?? []) expect(compose.networks, `${name}'s network ${n}`).toHaveProperty([n]);
      for (const v of s.volumes ?? []) {
        const named = v.split(':')[0]!;
        if (!named.startsWith('.') && !named.startsWith('/')) expect(compose.volumes, `${name}'s volume ${named}`).toHaveProperty([named]);
      }
    }
  });

  it('builds from this project, runs node under an init process, and restarts every container', () => {
    expect(ours.map(([n]) => n).sort()).toEqual(['node1', 'node2', 'node3', 'server']);
    for (const [name, s] of ours) {
      const context = resolve(DOCKER, s.build!.context);
      expect(relative(ROOT, context), `${name}'s build context is the project`).toBe('');
      expect(existsSync(join(context, s.build!.dockerfile)), `${name}'s Dockerfile`).toBe(true);
      expect(s.init, `${name}: init: true`).toBe(true);
      expect(s.command, `${name} names its command`).toBeDefined();
      checkNodeCommand(s.command!, name);
    }
    for (const [name, s] of Object.entries(services)) expect(['always', 'unless-stopped', 'on-failure'], `${name}'s restart policy`).toContain(s.restart);
  });

  it('gives the server and the nodes only environment variables the code reads', () => {
    expect(readVars.size).toBeGreaterThan(5); // the scan itself works
    for (const [name, s] of ours) {
      for (const key of Object.keys(s.environment ?? {})) expect(readVars.has(key), `${name}: ${key} is read by backend/src`).toBe(true);
    }
  });

  it("publishes the server's port, probes its health route, and points the nodes at it", () => {
    const server = services.server!;
    const port = server.environment!.PORT!;
    const published = server.ports!.map((p) => p.split(':').at(-1));
    expect(published).toEqual([port]);
    expect(runtime).toContain(`EXPOSE ${port}`);
    // The health check: `node -e "fetch('http://127.0.0.1:PORT/api/health', ...)"` with the token it has.
    const probe = server.healthcheck!.test.join(' ');
    const url = new URL(/fetch\('([^']+)'/.exec(probe)![1]!);
    expect(url.port).toBe(port);
    expect(url.pathname).toBe('/api/health');
    expect(readFileSync(join(ROOT, 'backend/src/server/http.ts'), 'utf8')).toContain("case 'GET health':");
    for (const v of probe.matchAll(/process\.env\.([A-Z_]+)/g)) expect(server.environment, `the probe's ${v[1]}`).toHaveProperty([v[1]!]);

    for (const [name, s] of ours.filter(([n]) => n !== 'server')) {
      const { args } = checkNodeCommand(s.command!, name);
      const target = new URL(args[args.indexOf('--server') + 1]!);
      expect(services, `${name} joins a service`).toHaveProperty([target.hostname]);
      expect(target.port).toBe(port);
      expect(s.depends_on).toHaveProperty(['server']);
      expect(args[args.indexOf('--id') + 1]).toMatch(/^[A-Za-z][A-Za-z0-9_-]*$/);
    }
    const ids = ours.filter(([n]) => n !== 'server').map(([, s]) => s.command![s.command!.indexOf('--id') + 1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("points the server at the postgres service with that service's own credentials", () => {
    const db = new URL(services.server!.environment!.DATABASE_URL!);
    const pg = services[db.hostname]!;
    expect(pg.environment).toMatchObject({ POSTGRES_USER: db.username, POSTGRES_PASSWORD: db.password, POSTGRES_DB: db.pathname.slice(1) });
    expect(services.server!.depends_on).toHaveProperty([db.hostname]);
  });
});

describe('docker/Dockerfile', () => {
  it('runs node, not npm, in a runtime stage without dev dependencies', () => {
    const cmd = runtime.find((l) => l.startsWith('CMD'))!;
    checkNodeCommand(JSON.parse(cmd.slice(3).trim()) as string[], 'CMD');
    // The runtime's node_modules come from a stage that installed production dependencies only.
    const from = /^COPY --from=(\S+) \/app\/node_modules/.exec(runtime.find((l) => l.includes('/app/node_modules'))!)![1]!;
    expect(stages.get(from)!.some((l) => /^RUN npm ci\b.*--omit=dev/.test(l))).toBe(true);
  });

  it('copies files that exist, and sets variables the code reads', () => {
    for (const l of [...stages.values()].flat()) {
      const copy = /^COPY\s+(?:--from=(\S+)\s+)?(.+)\s+(\S+)$/.exec(l);
      if (copy === null) continue;
      for (const src of copy[2]!.split(/\s+/)) {
        const path = copy[1] !== undefined ? src.replace(/^\/app\//, '') : src;
        if (path === 'node_modules' || path === '.' || path === 'web/dist') continue; // installed, or built (`npm run build:web`)
        expect(existsSync(join(ROOT, path)), `COPY ${src}`).toBe(true);
      }
    }
    expect(readJson('package.json').scripts).toHaveProperty(['build:web']);
    const env = runtime.find((l) => l.startsWith('ENV'))!;
    for (const m of env.slice(3).matchAll(/([A-Z_][A-Z0-9_]*)=/g)) if (m[1] !== 'NODE_ENV') expect(readVars.has(m[1]!), `ENV ${m[1]}`).toBe(true);
  });

  it('has every package the server and the node processes import among the production dependencies', () => {
    const prod = new Set(['backend/package.json', 'shared/package.json'].flatMap((p) => Object.keys(readJson(p).dependencies ?? {})));
    const seen = new Set<string>();
    const packages = new Map<string, string>();
    const todo = ['backend/src/server/main.ts', 'backend/src/live/node-main.ts', 'shared/src/index.ts'].map((p) => join(ROOT, p));
    while (todo.length > 0) {
      const file = todo.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      // Static imports (not `import type`), dynamic imports, and worker files (`new URL('./x.ts', import.meta.url)`).
      for (const m of text.matchAll(
        /^\s*(?:import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|new URL\('(\.[^']+\.(?:ts|mjs|js))'/gm,
      )) {
        const spec = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
        if (spec.startsWith('.')) {
          const base = resolve(dirname(file), spec);
          const found = [base, `${base}.ts`, join(base, 'index.ts')].find((c) => existsSync(c) && statSync(c).isFile());
          expect(found, `${relative(ROOT, file)} imports ${spec}`).toBeDefined();
          todo.push(found!);
        } else if (!spec.startsWith('node:')) {
          const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          packages.set(pkg, relative(ROOT, file));
        }
      }
    }
    expect(seen.size).toBeGreaterThan(30); // the walk reached the runtime
    for (const [pkg, file] of packages) expect(prod.has(pkg), `${pkg} (imported by ${file}) is a production dependency`).toBe(true);
  });
});
