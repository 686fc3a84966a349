import assert from 'node:assert/strict';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cli } from '../helpers/cli.js';
import { deviceWithPackages, installedBeside, type Device } from '../helpers/device.js';
import { snapshotTree, type SampleFile } from '../helpers/tree.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));
const HOOK = '#!/bin/sh\necho "$(basename "$0") $(basename "$1") $2" >> "$FUSSY_HOOK_LOG"\n';

function release(name: string): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: '.pre-install', mode: 0o755, content: HOOK },
    { path: '.post-install', mode: 0o755, content: HOOK },
  ];
}

describe('fussy rollback: re-enable an installed release through the install path', function () {
  let dev: Device;
  let pkgs: Record<string, string>;

  before(async function () {
    ({ dev, pkgs } = await deviceWithPackages(['fw-a', 'fw-b'], release));
  });

  const freshDevice = (name: string, installs: string[]): Promise<Device> => installedBeside({ dev, pkgs }, name, installs);
  const hooks = async (d: Device): Promise<string> => readFile(d.hookLog, 'utf8').catch(() => '');

  it('goes back to the release current before this one, with its hooks in order, and records it', async function () {
    const d = await freshDevice('dev-back', ['fw-a', 'fw-b']);
    const before = await hooks(d);
    const r = await cli('fussy', ['rollback', '-t', d.target], { env: { FUSSY_HOOK_LOG: d.hookLog } });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.lastLine, join(d.target, 'fw-a'));
    assert.equal(await readlink(join(d.target, 'current')), 'fw-a');
    assert.equal((await hooks(d)).slice(before.length), '.pre-install fw-a False\n.post-install fw-a False\n');
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-a', 'fw-b'], 'nothing is removed');
    assert.match((await cli('fussy', ['history', '-t', d.target])).stdout, /rollback ok fw-a \(was fw-b\)/);
    // Rolling back again goes to fw-b: the release current before fw-a.
    assert.equal((await cli('fussy', ['rollback', '-t', d.target, '-q'], { env: { FUSSY_HOOK_LOG: d.hookLog } })).lastLine, join(d.target, 'fw-b'));
  });

  it('--to failsafe re-enables the factory image; --to an unknown name exits 2 naming the releases', async function () {
    const d = await freshDevice('dev-to', ['fw-a']);
    const failsafe = await snapshotTree(join(d.target, 'failsafe'));
    const r = await cli('fussy', ['rollback', '-t', d.target, '--to', 'failsafe']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(await readlink(join(d.target, 'current')), 'failsafe');
    assert.deepEqual(await snapshotTree(join(d.target, 'failsafe')), failsafe);
    const bad = await cli('fussy', ['rollback', '-t', d.target, '--to', 'fw-zz']);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /there is no release fw-zz .*\n.*installed releases: failsafe, fw-a/);
  });

  it('a failing pre-install of the target re-enables the current release in recovery mode, keeps the target, exits 3', async function () {
    const d = await freshDevice('dev-fail', ['fw-a', 'fw-b']);
    // A release whose pre-install now fails (as if its environment changed since it was installed).
    await execa('sh', ['-c', `printf '#!/bin/sh\\nexit 1\\n' > ${join(d.target, 'fw-a', '.pre-install')}`]);
    const before = await hooks(d);
    const r = await cli('fussy', ['rollback', '-t', d.target, '--to', 'fw-a'], { env: { FUSSY_HOOK_LOG: d.hookLog } });
    assert.equal(r.exitCode, 3, r.stderr);
    assert.equal(await readlink(join(d.target, 'current')), 'fw-b');
    assert.equal((await hooks(d)).slice(before.length), '.pre-install fw-b True\n.post-install fw-b True\n');
    assert.ok((await readdir(d.target)).includes('fw-a'), 'the rollback target is kept: this transaction did not create it');
  });

  it('killed after the switch: recovery rolls the rollback forward (post-install of the target)', async function () {
    const d = await freshDevice('dev-crash', ['fw-a', 'fw-b']);
    const killed = await execa(process.execPath, [FUSSY, 'rollback', '-t', d.target], { env: { FUSSY_FAILPOINT: 'after-switch', FUSSY_HOOK_LOG: d.hookLog }, reject: false });
    assert.equal(killed.signal, 'SIGKILL');
    const before = await hooks(d);
    const r = await cli('fussy', ['recover', '-t', d.target, '--json'], { env: { FUSSY_HOOK_LOG: d.hookLog } });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { message: string }).message, /rolled forward the interrupted rollback of fw-a/);
    assert.equal((await hooks(d)).slice(before.length), '.post-install fw-a False\n');
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-a', 'fw-b']);
  });
});
