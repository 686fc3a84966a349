import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readdir, readFile, readlink, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { readHistory } from '../../src/store/history.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';
import { watchFussy } from '../helpers/watch.js';

/**
 * Whoever can write where packages are put (an upload directory) controls what the package path
 * is: a FIFO that never delivers, or a file swapped after fussy looked at it. fussy must never
 * wait on such input while it holds the target's lock, and must read the file it checked.
 */
describe('package-source attacks', function () {
  let dev: Device;
  let seq = 0;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  async function firmware(): Promise<{ pkg: string; release: string }> {
    const release = `fw-${++seq}`;
    const src = await writeTree(join(dev.dir, 'build', release), sampleFirmware());
    return { release, pkg: (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, `${release}.tar.gz.gpg`), sequence: seq })).path };
  }

  it('fifo-package: a FIFO is read without the lock held (another install runs meanwhile), then installed; SIGINT ends the wait', async function () {
    const fifo = join(dev.dir, 'upload.tar.gz.gpg');
    await execa('mkfifo', [fifo]);
    const waiting = watchFussy('fussy', ['install', fifo, '-k', dev.keyring, '-t', dev.target, '--json'], { cwd: dev.dir });
    await waiting.stderrMatches(/"phase":"spool"/); // now reading the FIFO, which has no writer yet
    // The target is not locked by the waiting install: another one goes through at once.
    const other = await firmware();
    const meanwhile = await cli('fussy', ['install', other.pkg, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(meanwhile.exitCode, 0, meanwhile.stderr);
    const { pkg, release } = await firmware();
    await writeFile(fifo, await readFile(pkg)); // opens the FIFO for writing: the waiting install gets it
    const r = await waiting.done();
    assert.equal(r.timedOut, false, 'fussy hung on the FIFO');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { release: string }).release, release);
    assert.equal(await readlink(join(dev.target, 'current')), release);

    // A FIFO nobody writes: fussy waits, without the lock, until it is told to stop.
    const stuck = watchFussy('fussy', ['install', fifo, '-k', dev.keyring, '-t', dev.target, '--json'], { cwd: dev.dir });
    await stuck.stderrMatches(/"phase":"spool"/);
    const before = await targetState(dev.target);
    process.kill(stuck.pid, 'SIGINT');
    const s = await stuck.done();
    assert.equal(s.timedOut, false);
    assert.equal(s.exitCode, 130, s.stderr);
    assert.match(s.stdout, /"code":"INTERRUPTED".*"message":"interrupted by SIGINT"/);
    assert.deepEqual(await targetState(dev.target), before);
    assert.deepEqual((await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('spool-') || n.startsWith('staging-')), []);
  });

  it('package-swapped-for-fifo: a FIFO put in place of the package after fussy opened it is never read; the opened file is installed', async function () {
    const { pkg, release } = await firmware();
    const sha = createHash('sha256').update(await readFile(pkg)).digest('hex');
    const upload = join(dev.dir, 'upload-2.tar.gz.gpg');
    await copyFile(pkg, upload);
    // Stopped with the target's lock held, before the package is read.
    const p = watchFussy('fussy', ['install', upload, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: { FUSSY_FAILPOINT: 'stop:locked' } });
    await p.stopped();
    const fifo = join(dev.dir, 'swap.fifo');
    await execa('mkfifo', [fifo]);
    await rename(fifo, upload); // the attacker's swap: the path now names a FIFO nobody writes
    process.kill(p.pid, 'SIGCONT');
    const r = await p.done();
    assert.equal(r.timedOut, false, 'fussy hung on the FIFO with the lock held');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(await readlink(join(dev.target, 'current')), release);
    const rec = (await readHistory(join(dev.target, '.fussy'))).records.at(-1);
    assert.equal(rec?.package?.sha256, sha, 'the history names the file that was installed');
  });
});
