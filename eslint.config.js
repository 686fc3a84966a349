// npm run lint: typescript-eslint's recommended rules, plus the house rules of docs/architecture.md:
// no catch that swallows every error unseen, no file over 300 lines in src/, programs started by
// src/util/run.ts alone. Import directions are dependency-cruiser's job (.dependency-cruiser.cjs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const bareCatch = { selector: 'CatchClause[param=null]', message: 'catch (err) and look at it: a bare catch swallows every error, EACCES and EIO included' };
const RUNNER_ONLY = 'programs are started by src/util/run.ts alone (startProgram / runProgram): one place for process groups, timeouts and the result shape';
const spawners = ['node:child_process', 'child_process', 'execa'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // Every catch names its error and uses it (rethrows, tells kinds apart, reports it):
      // a catch without a binding, or with one it ignores, swallows whatever happened.
      'no-restricted-syntax': ['error', bareCatch],
      '@typescript-eslint/no-unused-vars': ['error', { caughtErrors: 'all', argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    // Plain node scripts: the bundler and mocha's reporter; the launchers (CommonJS: bin/package.json).
    files: ['**/*.mjs', '**/*.cjs', 'bin/*.js'],
    languageOptions: { globals: { URL: 'readonly', process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 300, skipBlankLines: false, skipComments: false }],
    },
  },
  {
    // Tests may spawn however they like; the library has one runner.
    files: ['src/**/*.ts'],
    ignores: ['src/util/run.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: spawners.map((name) => ({ name, message: RUNNER_ONLY })) }],
      'no-restricted-syntax': ['error', bareCatch, ...spawners.map((name) => ({ selector: `ImportExpression[source.value='${name}']`, message: RUNNER_ONLY }))],
    },
  },
);
