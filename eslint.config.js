// @ts-check
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

const impureModules = ['node:*', 'pg', 'pg-*', 'socket.io', 'socket.io-*', '@electric-sql/*', 'fs', 'path', 'child_process', 'os', 'net', 'http'];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.data/**', 'test-results/**', 'playwright-report/**', 'bench-results/**', 'backend/scratch/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
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
    // The browser sees the backend only through shared types and the wire.
    files: ['web/**/*.ts', 'web/**/*.tsx', 'shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['@dse/backend', '**/backend/**'], message: 'web and shared import only shared.' }] }],
    },
  },
  {
    // React hooks: the rules of hooks and the React Compiler's checks, for the playground's components.
    files: ['web/**/*.ts', 'web/**/*.tsx'],
    ...reactHooks.configs.flat.recommended,
  },
);
