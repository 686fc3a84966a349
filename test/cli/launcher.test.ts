import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dropLauncherTunables } from '../../src/cli/main.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';

const bundle = fileURLToPath(new URL('../../bundle/', import.meta.url)); // dist/bundle, beside dist/test
const bin = fileURLToPath(new URL('../../../bin/', import.meta.url));
const pkgJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string; bin: Record<string, string> };
const OURS = 'glibc.malloc.top_pad=67108864';

/** How a fresh node loads the CLI bundle `cli` (launch.ts: accepted, rejected, stale, none); it must run (print its version) whatever the cache. */
async function cacheUse(cli: string, nodeFlags: string[] = []): Promise<string> {
  const script = `const c = require(${JSON.stringify(join(bundle, 'launch.cjs'))}).loadCli(${JSON.stringify(cli)}); console.log(c.cache, typeof c.exports.main);`;
  const r = await execa(process.execPath, [...nodeFlags, '-e', script], { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  const [use, main] = String(r.stdout).trim().split(' ');
  assert.equal(main, 'function', 'the CLI ran');
  return use as string;
}

describe('the launchers in bin/ and the bundled CLI they start', function () {
  it('every file a bundle chunk opens by URL (the precreate worker) is beside it', function () {
    // The ES module chunks find them by import.meta.url; the CLI (cli.cjs) by its own file's URL.
    const refs = readdirSync(bundle)
      .filter((f) => f.endsWith('.js') || f.endsWith('.cjs'))
      .flatMap((f) => [...readFileSync(bundle + f, 'utf8').matchAll(/new URL\("(\.\/[^"]+\.js)",\s*(?:import\.meta\.url|__fussyModuleUrl)\)/g)].map((m) => m[1] as string));
    assert.ok(refs.includes('./precreate-worker.js'), `the install code should start ./precreate-worker.js; found ${refs.join(', ') || 'nothing'}`);
    assert.ok(refs.includes('./hash-lane-worker.js'), 'and the hash lane');
    for (const r of refs) assert.ok(existsSync(bundle + r), `${r} is referenced but not in ${bundle}`);
  });

  it('the CLI starts compiled from the code cache the build made for it (V8 accepts it)', async function () {
    assert.equal(await cacheUse(join(bundle, 'cli.cjs')), 'accepted');
  });

  it('the CLI bundle is strict code, as the ES modules it is made of (its first statement says so)', function () {
    assert.match(readFileSync(join(bundle, 'cli.cjs'), 'utf8'), /^"use strict";/);
  });

  it('with node --enable-source-maps the CLI is loaded by node itself, so stack traces name the TypeScript sources', async function () {
    assert.equal(await cacheUse(join(bundle, 'cli.cjs'), ['--enable-source-maps']), 'none');
    const script = `try { require(${JSON.stringify(join(bundle, 'launch.cjs'))}).loadCli().exports.dropLauncherTunables(null); } catch (e) { console.log(e.stack); }`;
    const r = await execa(process.execPath, ['--enable-source-maps', '-e', script]);
    assert.match(String(r.stdout), /at .*dropLauncherTunables \(.*src\/cli\/main\.ts:\d+:\d+\)/);
  });

  it('a code cache not made from this very bundle is not used: the CLI compiles from its source and runs', async function () {
    // A copy of the bundle with a package.json above it (the CLI reads its version from there).
    const tmp = await makeTmp();
    await writeFile(join(tmp, 'package.json'), JSON.stringify({ name: 'fussy', version: '9.9.9' }));
    await mkdir(join(tmp, 'bundle'));
    const cli = join(tmp, 'bundle', 'cli.cjs');
    const source = await readFile(join(bundle, 'cli.cjs'));
    const cache = await readFile(join(bundle, 'cli.cjs.cache'));
    await writeFile(cli, source);
    assert.equal(await cacheUse(cli), 'none', 'no cache beside it');
    await writeFile(`${cli}.cache`, cache);
    assert.equal(await cacheUse(cli), 'accepted', 'the same bytes: the same bundle');
    await writeFile(cli, Buffer.concat([source, Buffer.from('\n// rebuilt\n')]));
    assert.equal(await cacheUse(cli), 'stale', 'a bundle rebuilt beside an old cache: the cache names another bundle');
    await writeFile(cli, source);
    const damaged = Buffer.from(cache);
    damaged.fill(0x5a, 32 + 64, 32 + 128); // V8 does not check its payload: this one would crash node
    await writeFile(`${cli}.cache`, damaged);
    assert.equal(await cacheUse(cli), 'stale', 'a damaged cache: its checksum does not match');
    await writeFile(`${cli}.cache`, cache);
    assert.equal(await cacheUse(cli, ['--no-opt']), 'rejected', 'node with other V8 flags (or another node): V8 refuses it');
    await rm(`${cli}.cache`);
    execFileSync('mkfifo', [`${cli}.cache`]);
    assert.equal(await cacheUse(cli), 'stale', 'a FIFO in its place is not read (it would stall every start)');
    await rm(`${cli}.cache`);
    await writeFile(`${cli}.cache`, cache.subarray(0, 20));
    assert.equal(await cacheUse(cli), 'stale', 'a cut-off cache');
  });

  it("prints the package's version, found from dist/bundle", async function () {
    const r = await cli('fussy', ['--version'], {});
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkgJson.version);
  });

  it('package.json installs the sh launchers, each starting its own .js launcher (node flags allowed)', function () {
    for (const [name, file] of Object.entries(pkgJson.bin)) {
      assert.equal(file, `bin/${name}`);
      // node flags only (fussyd's --lite-mode), nothing else between node and the .js launcher
      assert.match(readFileSync(join(bin, name), 'utf8'), /^#!\/bin\/sh\n[\s\S]*exec node (--[a-z-]+(=\d+)? )*"\$self\.js" "\$@"\n$/);
      assert.ok(existsSync(join(bin, `${name}.js`)), `bin/${name}.js`);
    }
  });

  it("hooks get the caller's GLIBC_TUNABLES, not the allocator setting the launcher adds for fussy", async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(tmp);
    const src = await writeTree(join(tmp, 'build', 'firmware-env'), [
      { path: 'etc/version', content: 'env\n' },
      { path: '.pre-install', mode: 0o755, content: '#!/bin/sh\necho "tunables=[${GLIBC_TUNABLES-unset}] fussy=[${FUSSY_TUNABLES-unset}]"\n' },
    ]);
    const pkg = (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'env.tar.gz.gpg') })).path;
    const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
    const run = async (env: Record<string, string>) => {
      const r = await execa(join(bin, 'fussy'), ['install', pkg, '-k', dev.keyring, '-t', dev.target], { env: { PATH, ...env }, extendEnv: false, reject: false });
      assert.equal(r.exitCode, 0, String(r.stderr));
      return String(r.stderr).split('\n').find((l) => l.includes('tunables=')) ?? '';
    };
    assert.match(await run({}), /tunables=\[unset\] fussy=\[unset\]/);
    assert.match(await run({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }), /tunables=\[glibc\.malloc\.arena_max=2\] fussy=\[unset\]/);
  });

  it('dropLauncherTunables removes exactly what the launcher appended', function () {
    const cases: Array<[Record<string, string>, Record<string, string>]> = [
      [{ FUSSY_TUNABLES: OURS, GLIBC_TUNABLES: OURS }, {}],
      [{ FUSSY_TUNABLES: OURS, GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${OURS}` }, { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }],
      [{ GLIBC_TUNABLES: OURS }, { GLIBC_TUNABLES: OURS }], // not started by a launcher: the caller's own
    ];
    for (const [before, after] of cases) {
      const env: NodeJS.ProcessEnv = { ...before };
      dropLauncherTunables(env);
      assert.deepEqual(env, after);
    }
  });
});
