/**
 * npm run lint: the import direction of docs/architecture.md. A module imports only from layers
 * below its own, or from its own directory. Layers, from the bottom (same number: neither imports
 * the other).
 */
const LAYERS = [
  ['errors.ts', 'events.ts'],
  ['util'],
  ['archive'],
  ['keyring', 'lock'],
  ['openpgp'],
  ['store'],
  ['unpack', 'txn'],
  ['ops', 'pack', 'pki'],
  ['index.ts'],
  ['daemon', 'remote'],
  ['provision'],
  ['cli'],
];
const path = (name) => (name.endsWith('.ts') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);
const forbidden = [];
LAYERS.forEach((layer, rank) => {
  for (const name of layer) {
    const above = LAYERS.slice(rank).flat().filter((other) => other !== name);
    if (above.length === 0) continue;
    forbidden.push({
      name: `layer-${name.replace('.ts', '')}`,
      comment: `${name} (layer ${rank}) imports only from the layers below it (docs/architecture.md)`,
      severity: 'error',
      from: { path: path(name) },
      to: { path: above.map(path) },
    });
  }
});
forbidden.push(
  {
    name: 'daemon-uses-the-public-api',
    comment: 'fussyd and fussy remote use the library through src/index.ts only (plus errors.ts and util/): docs/architecture.md',
    severity: 'error',
    from: { path: '^src/(daemon|remote)/' },
    to: { path: '^src/', pathNot: ['^src/index\\.ts$', '^src/errors\\.ts$', '^src/util/', '^src/(daemon|remote)/'] },
  },
  {
    name: 'provision-uses-the-public-api',
    comment: 'fussy provision builds on the library (src/index.ts), errors.ts, util/ and fussyd\'s own checks of its config and roles: docs/architecture.md',
    severity: 'error',
    from: { path: '^src/provision/' },
    to: { path: '^src/', pathNot: ['^src/index\\.ts$', '^src/errors\\.ts$', '^src/events\\.ts$', '^src/util/', '^src/provision/', '^src/daemon/(config|auth)\\.ts$'] },
  },
  {
    name: 'no-circular-between-directories',
    comment: 'a cycle is allowed only inside one directory (a module and its helpers)',
    severity: 'error',
    from: { path: '^src/([^/]+)/' },
    to: { circular: true, pathNot: '^src/$1/' },
  },
  {
    name: 'src-not-to-test',
    comment: 'the library never imports tests, benchmarks or the demo',
    severity: 'error',
    from: { path: '^src/' },
    to: { path: '^(test|bench|demo)/' },
  },
  {
    name: 'not-to-unresolvable',
    severity: 'error',
    from: {},
    to: { couldNotResolve: true },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
