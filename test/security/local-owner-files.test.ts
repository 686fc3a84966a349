import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { chown, copyFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { pack } from '../../src/pack/pack.js';
import { readHistory } from '../../src/store/history.js';
import { openVerified } from '../../src/unpack/file-io.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { fussy } from '../helpers/other-user.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';
import { asNobody, canRaceAsNobody, NOBODY, packOwned, raceDir, untilExists } from './race-helpers.js';

/** A sparse 8 TiB: made in an instant, hours to read. */
const HUGE = 8 * 2 ** 40;

/** Once `paused` exists (root waits at a failpoint), make `file` HUGE and let root go on. */
const GROW = `
  const fs = require('fs');
  const [file, paused, size] = process.argv.slice(1);
  for (let i = 0; !fs.existsSync(paused); i++) { if (i > 60000) process.exit(2); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); }
  fs.truncateSync(file, Number(size));
  fs.unlinkSync(paused);
`;

/** Holds a write lease on a file its user owns (fcntl F_SETLEASE: any owner may) until `stop` exists; lease breaks ignored. */
const LEASE = `
import fcntl, os, signal, sys, time
path, ready, stop = sys.argv[1:4]
signal.signal(signal.SIGIO, signal.SIG_IGN)
fd = os.open(path, os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
open(ready, 'w').close()
while not os.path.exists(stop):
    time.sleep(0.01)
`;

/**
 * Firmware may ship files owned by a service user (svc/ here, nobody's), and root then hashes,
 * links and copies them as dedup and delta sources. Their owner may change them at any moment,
 * in ways beyond editing: grow them to a sparse terabyte while root reads, or hold a lease that
 * makes root's open fail. Neither may hold root's lock for hours, crash the install, or get
 * anything but the signed content into a release.
 */
describe('security: files a local user owns inside a release (dedup and delta sources)', function () {
  let tmp: string;
  let ctl: string;
  let dev: Device;
  const model = randomBytes(192 << 10).toString('base64');
  const files = (n: string): SampleFile[] => [{ path: 'etc/version', content: `${n}\n` }, { path: 'svc/model.bin', content: model }];
  const own = { dirs: ['svc'], files: ['svc/model.bin'] };

  before(function () {
    if (!canRaceAsNobody()) this.skip(); // CI runs as root, with util-linux
  });

  beforeEach(async function () {
    ({ dir: tmp, ctl } = await raceDir(await makeTmp()));
    dev = await makeDevice(join(tmp, 'dev'), { factory: false });
    const r = await fussy(['install', await packOwned(tmp, dev, 'fw-1', files('fw-1'), own), '-k', dev.keyring, '-t', dev.target, '-q']);
    assert.equal(r.exitCode, 0, r.stderr);
  });

  /** nobody holds a write lease on `file` until the returned stop() has run. */
  const lease = async (file: string): Promise<() => Promise<void>> => {
    const [ready, stop] = [join(ctl, `ready-${basename(file)}`), join(ctl, `stop-${basename(file)}`)];
    const holder = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'python3', '-c', LEASE, file, ready, stop], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
    const held = new Promise((resolve) => holder.on('exit', resolve));
    await untilExists(ready, 'the lease');
    return async () => {
      await writeFile(stop, '');
      await held;
    };
  };

  const install = (pkg: string, env: Record<string, string> = {}, more: string[] = []) => fussy(['install', pkg, '-k', dev.keyring, '-t', dev.target, '-q', ...more], { env, timeout: 90_000 });

  it('grow-while-hashed: a file its owner makes a sparse 8 TiB while root hashes it as a dedup candidate is read no further than the size root checked; the next release gets the signed content', async function () {
    const paused = join(ctl, 'paused');
    const attacker = asNobody(GROW, [join(dev.target, 'fw-1', 'svc', 'model.bin'), paused, String(HUGE)]);
    const r = await install(await packOwned(tmp, dev, 'fw-2', files('fw-2'), own), { FUSSY_FAILPOINT: `pause:dedup-before-hash:${paused}` });
    await attacker.done;
    assert.equal(r.timedOut, false, 'root went on reading the grown file with the lock held');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(statSync(join(dev.target, 'fw-1', 'svc', 'model.bin')).size, HUGE, 'the owner grew it');
    assert.equal(readFileSync(join(dev.target, 'fw-2', 'svc', 'model.bin'), 'utf8'), model);
    assert.equal(await readlink(join(dev.target, 'current')), 'fw-2');
  });

  it('lease-blocks-install: a lease its owner holds on a dedup candidate leaves it unused (the full package installs); a delta that needs it is refused naming the file (21), nothing changed', async function () {
    const file = join(dev.target, 'fw-1', 'svc', 'model.bin');
    // Packed first: pack, too, would wait out the lease to read the base.
    const src = await writeTree(join(tmp, 'build', 'fw-3'), files('fw-3'));
    for (const p of ['svc', 'svc/model.bin']) await chown(join(src, p), NOBODY, NOBODY);
    const delta = (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'fw-3.delta.gpg'), deltaFrom: [join(dev.target, 'fw-1')] })).path;
    const release = await lease(file);
    try {
      const full = await install(await packOwned(tmp, dev, 'fw-2', files('fw-2'), own));
      assert.equal(full.exitCode, 0, full.stderr);
      assert.equal(readFileSync(join(dev.target, 'fw-2', 'svc', 'model.bin'), 'utf8'), model);
      // fw-2's copy of the file is another source: take it away, so the leased one is the only one.
      await writeFile(join(dev.target, 'fw-2', 'svc', 'model.bin'), 'edited in place\n');
      // (The target is compared by its names: reading the leased file's content would wait out the lease.)
      const before = await readdir(dev.target);
      const r = await install(delta, {}, ['--allow-downgrade']);
      assert.equal(r.exitCode, 21, r.stderr);
      assert.match(r.stderr, /model\.bin/);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.deepEqual(await readdir(dev.target), before);
      assert.equal(await readlink(join(dev.target, 'current')), 'fw-2');
      assert.deepEqual((await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('staging-')), []);
    } finally {
      await release();
    }
  });

  it('lease-blocks-install (the package): a package its owner holds a lease on is refused at once (exit 2) naming the lease, before the lock; nothing changed', async function () {
    const upload = join(ctl, 'leased.gpg'); // nobody's directory
    await copyFile(await packOwned(tmp, dev, 'fw-2', files('fw-2'), own), upload);
    await chown(upload, NOBODY, NOBODY);
    const before = await readdir(dev.target);
    const release = await lease(upload);
    try {
      const r = await install(upload);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, /cannot read package .*leased\.gpg: EAGAIN \(its owner holds a lease on it/);
      assert.deepEqual(await readdir(dev.target), before);
      assert.equal(await readlink(join(dev.target, 'current')), 'fw-1');
    } finally {
      await release();
    }
  });

  it('lease-blocks-install (a verified base): a source the owner leases after it was verified, or a directory where it was, is DELTA_BASE_MISSING naming it, never an internal error', async function () {
    const file = join(dev.target, 'fw-1', 'svc', 'model.bin');
    const st = statSync(file);
    const found = { abs: file, dev: st.dev, ino: st.ino, identity: { sha256: '', size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } };
    const release = await lease(file);
    try {
      assert.throws(() => openVerified(found, 'the base of "svc/model.bin"'), (e: unknown) => e instanceof FussyError && e.code === 'DELTA_BASE_MISSING' && /model\.bin, the base of "svc\/model\.bin", is held by a lease of its owner/.test(e.message));
    } finally {
      await release();
    }
    // An inode number freed and reused for something else (ext4 does so at once): a directory opens read-only too.
    const dir = join(dev.target, 'fw-1', 'svc');
    const ds = statSync(dir);
    assert.throws(() => openVerified({ ...found, abs: dir, dev: ds.dev, ino: ds.ino }, 'the base of "svc"'), (e: unknown) => e instanceof FussyError && e.code === 'DELTA_BASE_MISSING' && /was replaced before it was used/.test(e.message));
  });

  it('package-grows-after-open: a package its owner makes a sparse 8 TiB once root has opened it is read, hashed and recorded as it was opened', async function () {
    const pkg = await packOwned(tmp, dev, 'fw-2', files('fw-2'), own);
    const upload = join(ctl, 'upload.gpg'); // nobody's directory
    await copyFile(pkg, upload);
    await chown(upload, NOBODY, NOBODY);
    const paused = join(ctl, 'paused');
    const attacker = asNobody(GROW, [upload, paused, String(HUGE)]);
    const r = await install(upload, { FUSSY_FAILPOINT: `pause:locked:${paused}` });
    await attacker.done;
    assert.equal(r.timedOut, false, 'root went on reading the grown package with the lock held');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(statSync(upload).size, HUGE, 'the owner grew it');
    const rec = (await readHistory(join(dev.target, '.fussy'))).records.at(-1);
    assert.deepEqual([rec?.result, rec?.package?.bytes, rec?.package?.sha256], ['ok', statSync(pkg).size, createHash('sha256').update(readFileSync(pkg)).digest('hex')]);
  });

  it('hash-cache-readable: the hash cache, which holds the sha256 of files only root may read, is root\'s alone (0600)', function () {
    assert.equal(statSync(join(dev.target, '.fussy', 'hash-cache.json')).mode & 0o777, 0o600);
  });
});
