import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readHistory } from '../../src/store/history.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, targetState, type Device } from '../helpers/device.js';
import { isTempName } from '../../src/util/fs-atomic.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));

/** Leftovers of a package read from a pipe: the spooled copy must never outlive the install. */
async function spoolFiles(dev: Device): Promise<string[]> {
  return (await readdir(join(dev.target, '.fussy')).catch(() => [])).filter((n) => isTempName(n));
}

describe('what fussy install accepts as the package', function () {
  let dev: Device;
  let pkg: string;
  let seq = 0;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  beforeEach(async function () {
    const src = await writeTree(join(dev.dir, 'build', `fw-${++seq}`), sampleFirmware());
    pkg = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [dev.deviceFingerprint], recipientKeyFiles: [dev.devicePublicKeyFile], output: join(dev.dir, `fw-${seq}.tar.gz.gpg`), sequence: seq })).path;
  });

  // node hands a child a socket as its stdin "pipe"; a shell pipe is a real pipe (a FIFO).
  for (const [how, run] of [
    ['fussy install - (stdin a socket)', (): ReturnType<typeof execa> => execa(process.execPath, [FUSSY, 'install', '-', '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, inputFile: pkg, reject: false, timeout: 60_000 })],
    ['cat PKG | fussy install /dev/stdin (a shell pipe)', (): ReturnType<typeof execa> => execa('sh', ['-c', 'cat "$1" | "$2" "$3" install /dev/stdin -k "$4" -t "$5"', 'sh', pkg, process.execPath, FUSSY, dev.keyring, dev.target], { cwd: dev.dir, reject: false, timeout: 60_000 })],
  ] as const) {
    it(`stdin-pipe-package: ${how} reads the package, verifies it like a file and records its sha256`, async function () {
      const r = await run();
      assert.equal(r.exitCode, 0, String(r.stderr));
      assert.equal(String(r.stdout).trim(), join(dev.target, `fw-${seq}`));
      assert.equal(await readlink(join(dev.target, 'current')), `fw-${seq}`);
      const rec = (await readHistory(join(dev.target, '.fussy'))).records.at(-1);
      assert.equal(rec?.result, 'ok');
      assert.equal(rec?.package?.file, '/dev/stdin');
      assert.equal(rec?.package?.sha256, createHash('sha256').update(await readFile(pkg)).digest('hex'));
      assert.equal(rec?.package?.bytes, (await readFile(pkg)).length);
      assert.deepEqual(await spoolFiles(dev), []);
    });
  }

  it('a tampered package piped in is refused (20) like a file, and its spooled copy is gone', async function () {
    const bytes = await readFile(pkg);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 1;
    const before = await targetState(dev.target);
    const r = await execa(process.execPath, [FUSSY, 'install', '-', '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, input: bytes, reject: false, timeout: 60_000 });
    assert.equal(r.exitCode, 20, String(r.stderr));
    assert.deepEqual(await targetState(dev.target), before);
    assert.deepEqual(await spoolFiles(dev), []);
  });

  it('a package piped in that is larger than the free space less the reserve is refused (40) while it is read', async function () {
    const r = await execa(process.execPath, [FUSSY, 'install', '-', '-k', dev.keyring, '-t', dev.target, '--reserve', '10000000'], { cwd: dev.dir, inputFile: pkg, reject: false, timeout: 60_000 });
    assert.equal(r.exitCode, 40, String(r.stderr));
    assert.match(String(r.stderr), /the package from \/dev\/stdin is larger than the 0 bytes .*\.fussy has free \(less the reserve\)/);
    assert.deepEqual(await spoolFiles(dev), []);
  });

  it('directory-package: a directory as the package is a usage error (2) naming it, before the lock', async function () {
    const dir = join(dev.dir, 'a-dir.tar.gz.gpg');
    await mkdir(dir, { recursive: true });
    const before = await targetState(dev.target);
    const r = await cli('fussy', ['install', dir, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /package .*a-dir\.tar\.gz\.gpg is a directory, not a package file/);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.deepEqual(await targetState(dev.target), before);
  });

  it('a character device as the package (/dev/null, or stdin on a terminal) is a usage error (2)', async function () {
    const r = await cli('fussy', ['install', '/dev/null', '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /package \/dev\/null is a terminal or character device, not a package file/);
  });
});
