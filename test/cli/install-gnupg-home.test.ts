import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cli } from '../helpers/cli.js';
import { gpgGenKey, gpgHome, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';

/** The gpg runs a command made: a `gpg` first on PATH that logs its arguments and runs the real one. */
async function recordingGpg(dir: string): Promise<{ path: string; calls: () => Promise<string[]> }> {
  const real = (await execa('sh', ['-c', 'command -v gpg'])).stdout.trim();
  const bin = join(dir, 'bin');
  const log = join(dir, 'gpg-calls.log');
  await mkdir(bin);
  await writeFile(join(bin, 'gpg'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`);
  await chmod(join(bin, 'gpg'), 0o755);
  const calls = async (): Promise<string[]> => (await readFile(log, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)))).split('\n').filter((l) => l !== '');
  return { path: `${bin}:${process.env.PATH ?? ''}`, calls };
}

describe('fussy install with the device keyring as a GnuPG home (issue 11)', function () {
  let dir: string;
  let build: GpgHome;
  let keyring: string;
  let target: string;

  before(async function () {
    dir = await makeTmp();
    build = await gpgHome(dir, join(dir, 'build'));
    await gpgGenKey(build, 'Build <build@example.com>');
    // As the Fussy docs made it: GNUPGHOME=/etc/fussy/keys gpg --gen-key; gpg --import build.pub
    const device = await gpgHome(dir, join(dir, 'keys'));
    await gpgGenKey(device, 'Device <device@example.com>');
    await device.gpg(['--import'], (await build.gpg(['--export', 'build@example.com'])).stdout);
    await build.gpg(['--import'], (await device.gpg(['--export', 'device@example.com'])).stdout);
    keyring = device.home;
    target = join(dir, 'firmware');
    await mkdir(join(target, 'current'), { recursive: true });
  });

  async function legacyPackage(release: string, gpgArgs: string[]): Promise<string> {
    await writeTree(join(dir, 'src', release), [{ path: 'etc/app.conf', content: `${release}\n` }]);
    const tgz = await execa('tar', ['czf', '-', release], { cwd: join(dir, 'src'), encoding: 'buffer', stripFinalNewline: false });
    const out = await build.gpg(['--trust-model', 'always', ...gpgArgs], Buffer.from(tgz.stdout as Uint8Array));
    assert.equal(out.exitCode, 0, out.stderr);
    const pkg = join(dir, `${release}.tar.gz.gpg`);
    await writeFile(pkg, out.stdout);
    return pkg;
  }

  it('a signed-only package installs without running gpg; an encrypted one for the key gpg holds asks gpg for its session key only', async function () {
    const gpg = await recordingGpg(await makeTmp());
    const env = { PATH: gpg.path };
    const signed = await cli('fussy', ['install', await legacyPackage('fw-signed', ['--sign']), '-k', keyring, '-t', target], { cwd: dir, env });
    assert.equal(signed.exitCode, 0, signed.stderr);
    assert.equal(await readlink(join(target, 'current')), 'fw-signed');
    assert.deepEqual(await gpg.calls(), []);

    const encrypted = await cli('fussy', ['install', await legacyPackage('fw-encrypted', ['-se', '-r', 'device@example.com']), '-k', keyring, '-t', target], { cwd: dir, env });
    assert.equal(encrypted.exitCode, 0, encrypted.stderr);
    assert.equal(await readFile(join(target, 'current', 'etc', 'app.conf'), 'utf8'), 'fw-encrypted\n');
    const calls = await gpg.calls();
    assert.equal(calls.length, 1, calls.join('\n'));
    assert.match(calls[0] ?? '', /--show-session-key/);
  });
});
