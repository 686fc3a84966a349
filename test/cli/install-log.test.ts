import assert from 'node:assert/strict';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readHistory } from '../../src/store/history.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

const HOOK = (phase: string): string => `#!/bin/sh\necho "${phase} $(basename "$1") $2"\necho "${phase} $(basename "$1") $2" >> "$FUSSY_HOOK_LOG"\n`;

describe('fussy-install -l LOG / fussy install --log LOG', function () {
  let dev: Device;
  let seq = 0;

  beforeEach(async function () {
    dev = await makeDevice(await makeTmp());
  });

  /** A package with both hooks (they echo, and record themselves in the device's hook log). */
  async function firmware(name: string): Promise<string> {
    const files = [...sampleFirmware().filter((f) => !f.path.endsWith('-install')), { path: '.pre-install', content: HOOK('pre'), mode: 0o755 }, { path: '.post-install', content: HOOK('post'), mode: 0o755 }];
    const src = await writeTree(join(dev.dir, 'build', name), files);
    return (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, `${name}.tar.gz.gpg`), sequence: ++seq })).path;
  }

  const env = (d: Device): Record<string, string> => ({ FUSSY_HOOK_LOG: d.hookLog });

  for (const [launcher, args] of [
    ['fussy-install', (pkg: string, log: string) => [pkg, '-l', log]],
    ['fussy', (pkg: string, log: string) => ['install', pkg, '--log', log]],
  ] as const) {
    it(`${launcher}: a log whose directory is missing is refused before the lock (exit 40, naming it): nothing changes, no hook runs`, async function () {
      const pkg = await firmware('fw-1');
      const before = await targetState(dev.target);
      const log = join(dev.dir, 'var', 'log', 'fussy', 'install.log');
      const r = await cli(launcher, [...args(pkg, log), '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
      assert.equal(r.exitCode, 40, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot open the log file ${log.replace(/[.]/g, '\\.')}: its directory does not exist`));
      assert.deepEqual(await targetState(dev.target), before, 'the target changed');
      assert.equal(await readFile(dev.hookLog, 'utf8').catch(() => ''), '', 'a hook ran');
      // Refused before the lock: no lock, journal or staging was ever made, nothing was recorded.
      assert.deepEqual(await readdir(join(dev.target, '.fussy')).catch(() => []), []);
    });
  }

  it('a log write that fails during the install (-l /dev/full: ENOSPC) is reported once and changes nothing the transaction does', async function () {
    await cli('fussy-install', [await firmware('fw-1'), '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
    await writeFile(dev.hookLog, '');
    const pkg = await firmware('fw-2');
    const r = await cli('fussy-install', [pkg, '-l', '/dev/full', '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stderr.match(/could not write to the log file \/dev\/full \(ENOSPC\); the install goes on without it/g)?.length, 1, r.stderr);
    // The whole transaction happened: both hooks ran, current switched, the sequence advanced, the journal is gone, the history says ok.
    assert.equal(await readFile(dev.hookLog, 'utf8'), 'pre fw-2 False\npost fw-2 False\n');
    assert.equal(await readlink(join(dev.target, 'current')), 'fw-2');
    const state = JSON.parse(await readFile(join(dev.target, '.fussy', 'state.json'), 'utf8')) as { highestSequence: number };
    assert.equal(state.highestSequence, seq);
    assert.ok(!(await readdir(join(dev.target, '.fussy'))).includes('journal.json'));
    const h = await readHistory(join(dev.target, '.fussy'));
    assert.deepEqual([h.records.at(-1)?.result, h.records.at(-1)?.release], ['ok', 'fw-2']);
  });

  it('the log gets every line and the outcome, a failure too', async function () {
    const log = join(dev.dir, 'install.log');
    const ok = await cli('fussy-install', [await firmware('fw-1'), '-l', log, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
    assert.equal(ok.exitCode, 0, ok.stderr);
    const bad = await cli('fussy-install', [join(dev.dir, 'missing.gpg'), '-l', log, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
    assert.equal(bad.exitCode, 2, bad.stderr);
    const lines = (await readFile(log, 'utf8')).trimEnd().split('\n');
    assert.ok(lines.every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l)), lines.join('\n'));
    assert.match(lines.join('\n'), / pre-install: pre fw-1 False\n.* current -> fw-1\n.* post-install: post fw-1 False\n.* installed fw-1: /);
    assert.match(lines.at(-1) ?? '', /fussy install: cannot read package .*missing\.gpg: ENOENT$/);
  });
});
