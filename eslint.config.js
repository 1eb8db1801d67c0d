// @ts-check
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

const impureModules = ['node:*', 'pg', 'pg-*', 'socket.io', 'socket.io-*', '@electric-sql/*', 'fs', 'path', 'child_process', 'os', 'net', 'http'];

/**
 * The layer order: a module imports only from its own layer and the layers before it, never from a
 * later one nor from a sibling of its level (storage and services know nothing of each other, nor do
 * sim and live, server and embedded, bench and chaos). The web sees nothing but shared.
 */
const LEVELS = [['shared'], ['core'], ['storage', 'services', 'command-line'], ['sim', 'live'], ['server', 'embedded'], ['bench', 'chaos']];
const BACKEND_LAYERS = LEVELS.slice(1).flat();
/** @param {string} layer */
const allowedFor = (layer) => {
  const level = LEVELS.findIndex((l) => l.includes(layer));
  return [layer, ...LEVELS.slice(0, level).flat()];
};
const layerPolicies = [
  ...LEVELS.flat().map((layer) => ({ from: { element: { type: layer } }, allow: { to: { element: { types: { anyOf: allowedFor(layer) } } } } })),
  { from: { element: { type: 'web' } }, allow: { to: { element: { types: { anyOf: ['web', 'shared'] } } } } },
];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.data/**', 'test-results/**', 'playwright-report/**', 'bench-results/**', 'backend/scratch/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  { languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } } },
  // The few plain JavaScript files (workers, scripts) are not in the TypeScript project.
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // Passing on what a catch caught is not inventing a non-Error reason.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true }],
      // An async function with no await is how a Promise-returning interface is met without ceremony.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // React components take callback props declared in method syntax; they are never `this`-bound methods.
    files: ['web/**/*.tsx'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // Left for their owners: failure messages that stringify Json-typed payload fields (strings or numbers
    // at run time; the rule cannot tell). The chaos verifier is being split by its owner now.
    files: ['backend/src/chaos/verify-services.ts', 'backend/src/sim/scenarios/*.ts', 'backend/src/live/node-main.ts'],
    rules: { '@typescript-eslint/no-base-to-string': 'off' },
  },
  {
    // The whole layer order, checked on resolved files (relative paths of any depth, and @dse/shared).
    files: ['backend/src/**/*.{ts,mjs}', 'shared/src/**/*.ts', 'web/**/*.{ts,tsx}'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { node: { extensions: ['.ts', '.tsx', '.mjs', '.js'] } },
      'boundaries/elements': [
        { type: 'shared', pattern: 'shared/src', partialMatch: false },
        ...BACKEND_LAYERS.filter((l) => l !== 'command-line').map((l) => ({ type: l, pattern: `backend/src/${l}`, partialMatch: false })),
        // Last, so that only what no folder above claims is left: the top-level helper command-line.ts.
        { type: 'command-line', pattern: 'backend/src', partialMatch: false },
        { type: 'web', pattern: 'web', partialMatch: false },
      ],
    },
    rules: {
      'boundaries/dependencies': ['error', { default: 'disallow', policies: layerPolicies }],
    },
  },
  {
    // The core is pure: its world (clock, network, storage, randomness, observer) comes in as ports.
    files: ['backend/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: impureModules, message: 'backend/src/core is pure: pass I/O in as a port.' }] }],
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'Use the Clock port.' },
        { name: 'setTimeout', message: 'Use the Clock port.' },
        { name: 'setInterval', message: 'Use the Clock port.' },
        { name: 'process', message: 'The core runs without a process.' },
        { name: 'performance', message: 'Use the Clock port.' },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Use the Random port.' }],
    },
  },
  {
    // React hooks: the rules of hooks and the React Compiler's checks, for the playground's components.
    files: ['web/**/*.ts', 'web/**/*.tsx'],
    ...reactHooks.configs.flat.recommended,
  },
);
