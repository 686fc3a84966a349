/**
 * Bundles the CLI (dist/src/cli/main.js, compiled by tsc) and the daemon (dist/src/cli/fussyd.js)
 * into dist/bundle/, which bin/* load.
 * Why: node's ESM loader resolves, reads and links every module file on every start; the
 * install command's ~100 modules (openpgp's unminified 1.2 MB build among them) took ~0.15 s of
 * a 2 s update on the bench machine (docs/performance.md). The library (dist/src) is unchanged
 * for programs that import it.
 * - The CLI is one CommonJS file, cli.cjs, with V8's code cache for it, cli.cjs.cache (made by
 *   scripts/train-cli.mjs): launch.cjs (src/cli/launch.ts), which the launchers require, compiles
 *   it with the cache, so a command starts without parsing and compiling it.
 * - The daemon, the precreate, digest, hash-lane and decryption (seipd) workers, fussyd's js host
 *   and its install child are ES modules, code-split so each loads what it runs; the CLI finds
 *   the workers beside it (`new URL('./precreate-worker.js', import.meta.url)`, import.meta.url
 *   being cli.cjs's own URL there).
 * Names are kept (readable stack traces); source maps sit beside the files
 * (`node --enable-source-maps`). Third-party license comments are kept; rebuild with
 * `npm run build` after changing a dependency.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, readFile, rm } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url).pathname;
const outdir = `${root}dist/bundle/`;
await rm(outdir, { recursive: true, force: true });
// What both builds share: minified whitespace and syntax, names kept, OpenPGP.js's minified build.
const common = {
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'eof',
  logLevel: 'warning',
  alias: { openpgp: `${root}node_modules/openpgp/dist/node/openpgp.min.mjs` },
};
await build({
  ...common,
  entryPoints: { fussyd: `${root}dist/src/cli/fussyd.js`, 'precreate-worker': `${root}dist/src/unpack/precreate-worker.js`, 'digest-worker': `${root}dist/src/store/digest-worker.js`, 'hash-lane-worker': `${root}dist/src/unpack/hash-lane-worker.js`, 'seipd-worker': `${root}dist/src/openpgp/seipd-worker.js`, 'js-host': `${root}dist/src/daemon/runs/js-host.js`, 'install-child': `${root}dist/src/daemon/install-child.js` },
  splitting: true,
  format: 'esm',
  // CommonJS dependencies (commander) call require() for node's own modules.
  banner: { js: "import { createRequire as __fussyRequire } from 'node:module'; const require = __fussyRequire(import.meta.url);" },
});
// The CLI: one CommonJS file, which launch.cjs compiles with its code cache (src/cli/launch.ts);
// the launchers are CommonJS too, so node starts without its ES module loader. Each finds its
// neighbours (the workers, the bundle) by its own file name where the ESM build has import.meta.url.
await build({
  ...common,
  entryPoints: { cli: `${root}dist/src/cli/main.js`, launch: `${root}dist/src/cli/launch.js` },
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  define: { 'import.meta.url': '__fussyModuleUrl' },
  // Strict, as the ES modules it is made of: the directive must come before the banner's code.
  banner: { js: '"use strict";var __fussyModuleUrl = require(\'node:url\').pathToFileURL(__filename).href;' },
});
// launch.ts gives vm.Script no loader for import(): the CLI must hold all of its code.
if (/\bimport\(/.test(await readFile(`${outdir}cli.cjs`, 'utf8'))) throw new Error('dist/bundle/cli.cjs calls import(), which the code-cached CLI cannot (src/cli/launch.ts)');
// Its code cache, from a training run of the commands a device and a build server run, with the
// V8 flags the launchers run node with (none: the caller's NODE_OPTIONS would make V8 refuse the
// cache everywhere else), checked by a fresh node as the launchers start it.
const env = { ...process.env };
delete env.NODE_OPTIONS;
execFileSync(process.execPath, [`${root}scripts/train-cli.mjs`], { stdio: 'inherit', env });
const use = execFileSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(`${outdir}launch.cjs`)}).loadCli().cache)`], { env, encoding: 'utf8' }).trim();
if (use !== 'accepted') throw new Error(`the CLI's code cache just made is ${use}, not accepted, by this node`);
// fussyd's Viri host is Python, run by python3 beside the library's modules and the bundle's chunks.
for (const dir of ['dist/src/daemon/runs/', 'dist/bundle/']) await copyFile(`${root}src/daemon/runs/viri-host.py`, `${root}${dir}viri-host.py`);
