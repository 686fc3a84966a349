import assert from 'node:assert/strict';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

const BIN = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));

describe('fussy install / fussy-install on the command line', function () {
  let dev: Device;
  let pkg: string;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    const src = await writeTree(join(dev.dir, 'build', 'firmware-2026-11-23T10.00.00'), sampleFirmware());
    pkg = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [dev.deviceFingerprint], recipientKeyFiles: [dev.devicePublicKeyFile], output: join(dev.dir, 'fw.tar.gz.gpg') })).path;
  });

  it('prints the installed release path as the last stdout line, hook output and a summary on stderr', async function () {
    const r = await cli('fussy', ['install', pkg, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.lastLine, join(dev.target, 'firmware-2026-11-23T10.00.00'));
    assert.match(r.stderr, /pre-install: pre .* False/);
    assert.match(r.stderr, /current -> firmware-2026-11-23T10.00.00/);
    assert.match(r.stderr, /installed firmware-2026-11-23T10.00.00: \d+ files/);
    assert.equal(await readlink(join(dev.target, 'current')), 'firmware-2026-11-23T10.00.00');
  });

  it('--json prints {release, previous, deduplicatedBytes, writtenBytes, durationMs} and NDJSON events', async function () {
    const r = await cli('fussy', ['install', pkg, '-k', dev.keyring, '-t', dev.target, '--json'], { cwd: dev.dir });
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out.release, 'firmware-2026-11-23T10.00.00-1');
    assert.equal(out.previous, join(dev.target, 'firmware-2026-11-23T10.00.00'));
    assert.equal(out.writtenBytes, 0);
    assert.ok((out.deduplicatedBytes as number) > 300_000);
    assert.equal(typeof out.durationMs, 'number');
    const types = new Set(r.stderr.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type));
    for (const t of ['phase', 'hook', 'switch']) assert.ok(types.has(t), t);
  });

  it('fussy-install -f FILE -k -t -l LOG works like the original', async function () {
    const log = join(dev.dir, 'install.log');
    const r = await cli('fussy-install', ['-f', pkg, '-k', dev.keyring, '-t', dev.target, '-l', log], { cwd: dev.dir });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.lastLine, join(dev.target, 'firmware-2026-11-23T10.00.00-2'));
    assert.match(await readFile(log, 'utf8'), /installed firmware-2026-11-23T10\.00\.00-2/);
  });

  it('exits 20 for a package signed by a stranger, 40 for a missing keyring, 2 for a missing file', async function () {
    // Signed only, by a key the device's keyring does not hold: the signature is what is refused
    // (the package pkg is encrypted for this device; with another keyring its decryption failed first).
    const stranger = await makeDevice(await makeTmp(), { factory: false });
    const src = await writeTree(join(stranger.dir, 'build', 'fw-stranger'), [{ path: 'etc/version', content: 'stranger\n' }]);
    const signed = (await pack({ source: src, tmpDir: stranger.dir, signingKeyFiles: [stranger.signingKeyFile], output: join(stranger.dir, 'stranger.tar.gz.gpg') })).path;
    const r = await cli('fussy', ['install', signed, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(r.exitCode, 20, r.stderr);
    assert.match(r.stderr, /stranger\.tar\.gz\.gpg is signed by [0-9A-F]+, which is not in keyring/);
    assert.equal((await readdir(dev.target)).includes('fw-stranger'), false);
    const k = await cli('fussy', ['install', pkg, '-k', join(dev.dir, 'nokeys'), '-t', dev.target], { cwd: dev.dir });
    assert.equal(k.exitCode, 40);
    assert.match(k.stderr, /keyring .*nokeys does not exist\n {2}hint: /);
    const m = await cli('fussy', ['install', join(dev.dir, 'missing.gpg'), '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(m.exitCode, 2);
    assert.match(m.stderr, /cannot read package .*missing\.gpg: ENOENT/);
  });

  it('exits 3 when a hook fails and the previous release is restored', async function () {
    const src = await writeTree(join(dev.dir, 'build2', 'fw-bad'), [...sampleFirmware().filter((f) => f.path !== '.pre-install'), { path: '.pre-install', content: '#!/bin/sh\necho broken >&2\nexit 1\n', mode: 0o755 }]);
    const bad = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'bad.gpg') })).path;
    const before = await readlink(join(dev.target, 'current'));
    const r = await cli('fussy', ['install', bad, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stderr, /pre-install: broken/);
    assert.match(r.stderr, /is current again/);
    assert.equal(await readlink(join(dev.target, 'current')), before);
    await writeFile(join(dev.dir, 'done'), '');
  });

  it('a busy target exits 75 at once: the package digest started for the history is stopped, not waited for', async function () {
    const { acquireLock } = await import('../../src/lock/pid-lock.js');
    const held = await acquireLock(join(dev.target, '.fussy', 'lock'), 'install other.tar.gz.gpg');
    try {
      const r = await execa(process.execPath, [BIN, 'install', pkg, '-k', dev.keyring, '-t', dev.target], { reject: false, timeout: 30_000 });
      assert.equal(r.timedOut, false, 'fussy waited for the digest of a package it never installed');
      assert.equal(r.exitCode, 75, String(r.stderr));
      // A FIFO is read (spooled) before the lock is taken, never while holding it: once fed, it
      // meets the busy target, and its spooled copy goes with the refusal.
      const fifo = join(dev.dir, 'upload.gpg');
      await execa('mkfifo', [fifo]);
      const waiting = execa(process.execPath, [BIN, 'install', fifo, '-k', dev.keyring, '-t', dev.target], { reject: false, timeout: 30_000 });
      await writeFile(fifo, await readFile(pkg));
      const f = await waiting;
      assert.equal(f.timedOut, false);
      assert.equal(f.exitCode, 75, String(f.stderr));
      assert.deepEqual((await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('spool-')), []);
    } finally {
      await held.release();
    }
  });
});
