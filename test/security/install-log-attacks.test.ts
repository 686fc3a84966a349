import assert from 'node:assert/strict';
import { link, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

/** Whoever can write where the log goes (a shared log dir) must not steer fussy's appends, as root, into another file. */
describe('install log attacks', function () {
  let dev: Device;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  async function firmware(name: string): Promise<string> {
    const src = await writeTree(join(dev.dir, 'build', name), sampleFirmware());
    return (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, `${name}.tar.gz.gpg`) })).path;
  }

  const env = (d: Device): Record<string, string> => ({ FUSSY_HOOK_LOG: d.hookLog });

  it('log-symlink, log-hardlink: a link planted where the -l log goes is refused (40); root never appends to the file it names', async function () {
    const pkg = await firmware('fw-1');
    const victim = join(dev.dir, 'victim');
    await writeFile(victim, 'untouched\n');
    const log = join(dev.dir, 'install.log');
    await symlink(victim, log);
    const r = await cli('fussy-install', [pkg, '-l', log, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, /install\.log: it is a symbolic link, which fussy does not follow/);
    assert.equal(await readFile(victim, 'utf8'), 'untouched\n');
    // A hard link is no better: the log would be appended to the victim's inode.
    await unlink(log);
    await link(victim, log);
    const h = await cli('fussy-install', [pkg, '-l', log, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: env(dev) });
    assert.equal(h.exitCode, 40, h.stderr);
    assert.match(h.stderr, /cannot use .*install\.log as the log file: it has 2 hard links/);
    assert.equal(await readFile(victim, 'utf8'), 'untouched\n');
  });

});
