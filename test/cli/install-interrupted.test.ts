import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readHistory } from '../../src/store/history.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree, type SampleFile } from '../helpers/tree.js';
import { watchFussy } from '../helpers/watch.js';

/** What every interrupted install must leave: no staging, no journal, no spool file, the lock free. */
async function assertNothingLeft(dev: Device): Promise<void> {
  const left = (await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('staging-') || n.startsWith('spool-') || n === 'journal.json' || n.includes('.tmp-'));
  assert.deepEqual(left, [], 'left behind in .fussy');
}

async function lastHistory(dev: Device) {
  const h = await readHistory(join(dev.target, '.fussy'));
  assert.deepEqual(h.problems, []);
  return h.records.at(-1);
}

describe('fussy install interrupted by a signal: a refusal like any other', function () {
  let dev: Device;
  let sleepy: string;

  /** 16 MiB of random data: it does not compress, so 16 gzip members, and the unpack has far to go when it is stopped. */
  async function bigPackage(name: string): Promise<string> {
    const files: SampleFile[] = [...sampleFirmware(), ...Array.from({ length: 16 }, (_, i) => ({ path: `data/blob${i}.bin`, content: randomBytes(1 << 20) }))];
    const src = await writeTree(join(dev.dir, 'build', name), files);
    return (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [dev.deviceFingerprint], recipientKeyFiles: [dev.devicePublicKeyFile], output: join(dev.dir, `${name}.tar.gz.gpg`), sequence: 2 })).path;
  }

  before(async function () {
    dev = await makeDevice(await makeTmp());
    // A pre-install that says it runs, records its pid, then waits (as a hook stopping a slow service would).
    // The pid file first: the test signals fussy as soon as it reads the line, which may stop the shell before its next command.
    const hook = '#!/bin/sh\necho $$ > "$FUSSY_TARGET/../hook.pid"\necho "pre-install waiting $$"\nexec sleep 600\n';
    const src2 = await writeTree(join(dev.dir, 'build', 'fw-sleepy'), [...sampleFirmware().filter((f) => f.path !== '.pre-install'), { path: '.pre-install', content: hook, mode: 0o755 }]);
    sleepy = (await pack({ source: src2, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'sleepy.tar.gz.gpg'), sequence: 2 })).path;
    // A first release, so that there is one to go back to.
    const base = (await pack({ source: await writeTree(join(dev.dir, 'build', 'fw-base'), sampleFirmware()), tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'base.tar.gz.gpg'), sequence: 1 })).path;
    const r = await cli('fussy', ['install', base, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(r.exitCode, 0, r.stderr);
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} during the unpack exits 130 with one line, removes staging, frees the lock and records the refusal`, async function () {
      const big = await bigPackage(`fw-big-${sig}`); // new data: the failpoint counts bytes written, not shared
      const before = await targetState(dev.target);
      const current = await readlink(join(dev.target, 'current'));
      // The failpoint stops the process (SIGSTOP) once the first file bytes are in staging; the
      // signal is then sent at exactly that step and handled when the process is continued.
      const p = watchFussy('fussy', ['install', big, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: { FUSSY_FAILPOINT: 'stop:unpack-bytes:1' } });
      await p.stopped();
      assert.ok((await readdir(join(dev.target, '.fussy'))).some((n) => n.startsWith('staging-')), 'stopped during the unpack');
      process.kill(p.pid, sig);
      process.kill(p.pid, 'SIGCONT');
      const r = await p.done();
      assert.equal(r.timedOut, false);
      assert.equal(r.exitCode, 130, r.stderr);
      assert.equal(r.stderr, `fussy install: interrupted by ${sig}: fw-big-${sig}.tar.gz.gpg was not installed`); // one line (execa strips the newline)
      assert.equal(r.stdout, '');
      await assertNothingLeft(dev);
      assert.deepEqual(await targetState(dev.target), before, 'the target changed');
      assert.equal(await readlink(join(dev.target, 'current')), current);
      const rec = await lastHistory(dev);
      assert.equal(rec?.action, 'install');
      assert.equal(rec?.result, 'refused');
      assert.equal(rec?.error?.code, 'INTERRUPTED');
      assert.match(rec?.error?.message ?? '', new RegExp(`interrupted by ${sig}`));
      // The lock is free: the next install runs at once (a held lock would be exit 75).
      const again = await cli('fussy', ['install', big, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
      assert.equal(again.exitCode, 0, again.stderr);
    });
  }

  it('a signal after the package was verified but before its pre-install started: refused, the new release removed, no hook run', async function () {
    const current = await readlink(join(dev.target, 'current'));
    const releases = (await readdir(dev.target)).sort();
    const p = watchFussy('fussy', ['install', sleepy, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: { FUSSY_FAILPOINT: 'stop:after-rename' } });
    await p.stopped();
    process.kill(p.pid, 'SIGINT');
    process.kill(p.pid, 'SIGCONT');
    const r = await p.done();
    assert.equal(r.exitCode, 130, r.stderr);
    assert.equal(r.stderr, 'fussy install: interrupted by SIGINT: sleepy.tar.gz.gpg was not installed');
    assert.doesNotMatch(r.stderr, /pre-install waiting/);
    assert.equal(await readlink(join(dev.target, 'current')), current);
    assert.deepEqual((await readdir(dev.target)).sort(), releases, 'the new release was not removed');
    await assertNothingLeft(dev);
    const rec = await lastHistory(dev);
    assert.equal(rec?.result, 'refused');
    assert.equal(rec?.error?.code, 'INTERRUPTED');
  });

  it('SIGTERM while the pre-install hook runs terminates its process group; the previous release is re-enabled (exit 3)', async function () {
    const current = await readlink(join(dev.target, 'current'));
    const releases = (await readdir(dev.target)).sort();
    const p = watchFussy('fussy', ['install', sleepy, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    await p.stderrMatches(/pre-install: pre-install waiting \d+/);
    process.kill(p.pid, 'SIGTERM');
    const r = await p.done();
    assert.equal(r.timedOut, false);
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stderr, /install of fw-sleepy failed at pre-install: pre-install hook .* was stopped \(process group terminated\): interrupted by SIGTERM; fw-sleepy was removed, and .* is current again/);
    assert.match(r.stderr, /pre-install \(recovery\): pre /, 'the previous release was re-enabled with its recovery hooks');
    const hookPid = Number(await readFile(join(dev.dir, 'hook.pid'), 'utf8'));
    assert.throws(() => process.kill(hookPid, 0), /ESRCH/, 'the hook outlived the install');
    assert.equal(await readlink(join(dev.target, 'current')), current);
    assert.deepEqual((await readdir(dev.target)).sort(), releases);
    await assertNothingLeft(dev);
    const rec = await lastHistory(dev);
    assert.equal(rec?.result, 'failed-recovered');
    assert.match(rec?.error?.message ?? '', /interrupted by SIGTERM/);
  });
  it('fussy rollback: SIGINT while the pre-install of the release rolled back to runs: its group is terminated, current is re-enabled (exit 3)', async function () {
    // A release whose pre-install waits only when asked to (so that it installs normally first).
    const hook = '#!/bin/sh\nif [ -e "$FUSSY_TARGET/../sleep-flag" ]; then echo "pre-install waiting $$"; exec sleep 600; fi\n';
    const src = await writeTree(join(dev.dir, 'build', 'fw-later'), [...sampleFirmware().filter((f) => f.path !== '.pre-install'), { path: '.pre-install', content: hook, mode: 0o755 }]);
    const later = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'later.tar.gz.gpg'), sequence: 3 })).path;
    const before = await readlink(join(dev.target, 'current'));
    assert.equal((await cli('fussy', ['install', later, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir })).exitCode, 0);
    assert.equal((await cli('fussy', ['rollback', '-t', dev.target, '--to', before], { cwd: dev.dir })).exitCode, 0);
    await writeFile(join(dev.dir, 'sleep-flag'), '');
    const p = watchFussy('fussy', ['rollback', '-t', dev.target, '--to', 'fw-later'], { cwd: dev.dir });
    await p.stderrMatches(/pre-install: pre-install waiting \d+/);
    process.kill(p.pid, 'SIGINT');
    const r = await p.done();
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stderr, /install of fw-later failed at pre-install: .* was stopped \(process group terminated\): interrupted by SIGINT; fw-later is kept, and .* is current again/);
    assert.equal(await readlink(join(dev.target, 'current')), before);
    await assertNothingLeft(dev);
    assert.equal((await lastHistory(dev))?.result, 'failed-recovered');
  });
  it('install --wait queued behind a busy target: SIGINT ends the wait (exit 130), the holder keeps its lock', async function () {
    const { acquireLock } = await import('../../src/lock/pid-lock.js');
    const held = await acquireLock(join(dev.target, '.fussy', 'lock'), 'install other.tar.gz.gpg');
    try {
      const p = watchFussy('fussy', ['install', sleepy, '-k', dev.keyring, '-t', dev.target, '--wait', '--json'], { cwd: dev.dir });
      await p.stderrMatches(/"phase":"lock"/);
      process.kill(p.pid, 'SIGINT');
      const r = await p.done();
      assert.equal(r.timedOut, false);
      assert.equal(r.exitCode, 130, r.stderr);
      assert.match(r.stdout, /"code":"INTERRUPTED"/);
      const busy = await cli('fussy', ['install', sleepy, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
      assert.equal(busy.exitCode, 75, 'the lock of the holder was taken away');
    } finally {
      await held.release();
    }
  });
});
