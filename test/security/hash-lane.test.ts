import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FussyError, verify } from '../../src/index.js';
import { DedupIndex } from '../../src/store/dedup-index.js';
import { HashLane, LANE_MIN } from '../../src/unpack/hash-lane.js';
import { StagingWriter } from '../../src/unpack/staging-writer.js';
import { unpack } from '../../src/unpack/unpack.js';
import { installInto, makeDevice, rawTar, signPayload, type Device, type RawEntry } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { noise } from '../helpers/tree.js';
import { assertRefused } from './helpers.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Descriptors of this process open on something under `dir`. */
function openUnder(dir: string): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(join('/proc/self/fd', fd));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // the directory's own descriptor, closed by now
        return '';
      }
    })
    .filter((p) => p.startsWith(dir));
}

describe('security: large files are checked on the hash lane as they are written (hash-lane.ts)', function () {
  let tmp: string;
  let dev: Device;
  let n = 0;
  const root: RawEntry = { path: 'fw/', type: 'Directory' };
  const fileEntry = (path: string, size: number, sha256: string) => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, sha256 });
  /** A package whose manifest lists `files` with `claimed` hashes and whose archive carries `files`' bytes. */
  const tarOf = (files: Array<{ path: string; data: Buffer; claimed?: string }>): Buffer => {
    const manifest = {
      format: 'fussy-manifest', version: 1, release: 'fw', created: '', sequence: 1, totalBytes: files.reduce((a, f) => a + f.data.length, 0), fileCount: files.length,
      entries: [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 }, ...files.map((f) => fileEntry(f.path, f.data.length, f.claimed ?? sha(f.data)))],
    };
    return rawTar([root, { path: 'fw/.fussy-manifest.json', data: JSON.stringify(manifest) }, ...files.map((f) => ({ path: `fw/${f.path}`, data: f.data }))]);
  };
  const signed = async (tar: Buffer): Promise<string> => signPayload(join(tmp, `lane-${++n}.gpg`), tar, { signingKeys: [dev.signingKey] });
  const device = async (name: string): Promise<Device> => {
    const d: Device = { ...dev, target: join(tmp, name) };
    await mkdir(d.target, { recursive: true });
    return d;
  };

  before(async function () {
    tmp = await makeTmp('fussy-lane-');
    dev = await makeDevice(join(tmp, 'keys'), { factory: false });
  });

  it('lane-digest: the lane hashes a file as far as it is told it is written and ends at its size; a shorter file, a cancelled one, or a stopped lane is a failure, never a digest', async function () {
    const file = join(tmp, 'lane-unit');
    const data = noise(1, 3 * 1024 * 1024 + 17);
    writeFileSync(file, data);
    const lane = HashLane.start();
    assert.ok(lane !== undefined);
    const fd = openSync(file, 'r');
    try {
      const whole = lane.open(fd, data.length);
      for (let at = 0; at < data.length; at += 100_000) whole.wrote(Math.min(100_000, data.length - at));
      whole.end();
      assert.equal(await whole.digest, sha(data));
      const first = lane.open(fd, 1000);
      first.end();
      assert.equal(await first.digest, sha(data.subarray(0, 1000)), 'the first bytes, whatever the descriptor offset');
      const longer = lane.open(fd, data.length + 1);
      longer.wrote(data.length + 1);
      longer.end();
      await assert.rejects(longer.digest, /shorter than was written/);
      const dropped = lane.open(fd, data.length);
      dropped.wrote(2 * 1024 * 1024);
      dropped.cancel();
      await assert.rejects(dropped.digest, /cancelled/);
      assert.ok(lane.takes(LANE_MIN) && !lane.takes(LANE_MIN - 1), 'small files are hashed as they are written');
      const last = lane.open(fd, data.length);
      last.end();
      await lane.stop();
      await last.digest.then(
        (hex) => assert.equal(hex, sha(data), 'answered before it stopped'),
        (err: Error) => assert.match(err.message, /hashing thread stopped/),
      );
      await assert.rejects(lane.open(fd, 10).digest, /hashing thread stopped/);
      assert.equal(lane.takes(LANE_MIN), false, 'a stopped lane takes nothing more');
    } finally {
      closeSync(fd);
    }
  });

  it('lane-pieces: bytes hashed in memory shared with the lane (as a patch copies them) and bytes read back mix in file order; every piece comes back, and a stopped lane hands out none', async function () {
    const file = join(tmp, 'lane-pieces');
    const data = noise(7, 9 * 1024 * 1024 + 5);
    const lane = HashLane.start();
    assert.ok(lane !== undefined);
    const fd = openSync(file, 'w+');
    try {
      const f = lane.open(fd, data.length);
      let shared = 0;
      for (let at = 0, i = 0; at < data.length; i++) {
        const n = Math.min(i % 3 === 0 ? 300_000 : 1 << 20, data.length - at);
        let piece: Buffer | undefined;
        // The lane hands each piece back once hashed (it may still be starting): waited for here,
        // up to 10 s, so the count below does not depend on how busy the machine is.
        for (let tries = 0; i % 3 !== 0 && piece === undefined && tries < 2000; tries++) {
          piece = f.piece();
          if (piece === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
        }
        if (i % 3 !== 0) assert.ok(piece !== undefined, `piece ${i} was handed back`);
        if (piece === undefined) {
          writeSync(fd, data, at, n, at);
          f.wrote(n);
        } else {
          data.copy(piece, 0, at, at + n);
          writeSync(fd, piece, 0, n, at);
          f.fed(n);
          shared++;
        }
        at += n;
      }
      f.end();
      assert.equal(await f.digest, sha(data));
      assert.equal(shared, 8, 'twice as many pieces as the lane has, each handed back');
      await lane.stop();
      assert.equal(lane.open(fd, 10).piece(), undefined, 'a stopped lane hands out no piece (and does not wait for one)');
    } finally {
      closeSync(fd);
    }
  });

  it('lane-content-swap: a large file whose bytes are not the signed manifest\'s is refused naming it, and nothing is left open or changed', async function () {
    const good = noise(2, 2 * 1024 * 1024);
    const swapped = Buffer.from(good);
    swapped[swapped.length - 1] = (swapped[swapped.length - 1] as number) ^ 1; // the very last byte: the whole file must be hashed
    const d = await device('swap');
    const pkg = await signed(tarOf([{ path: 'a', data: noise(3, 600 * 1024) }, { path: 'image', data: swapped, claimed: sha(good) }, { path: 'z', data: Buffer.from('after\n') }]));
    await assertRefused(d, pkg, 'BAD_ARCHIVE', /content of "image" does not match its manifest/);
    assert.deepEqual(openUnder(d.target), []);
  });

  it('lane-backlog: more large files than the lane holds at once are all checked (the rest as they are written), and one wrong one among them is refused', async function () {
    const files = Array.from({ length: 70 }, (_, i) => ({ path: `f${String(i).padStart(2, '0')}`, data: noise(10 + i, LANE_MIN + i) }));
    const d = await device('backlog');
    const r = await installInto(d, await signed(tarOf(files)));
    assert.equal(r.files, 70);
    assert.deepEqual((await verify({ target: d.target })).reports[0]?.findings, []);
    for (const bad of [3, 69]) {
      const wrong = files.map((f, i) => (i === bad ? { ...f, claimed: sha(noise(99, f.data.length)) } : f));
      await assertRefused(d, await signed(tarOf(wrong)), 'BAD_ARCHIVE', new RegExp(`content of "f${String(bad).padStart(2, '0')}" does not match`));
    }
    assert.deepEqual(openUnder(d.target), []);
  });

  it('forged-lane-content: a forged package with a wrong large file is told only that its signature is bad (the check on the lane is held like any)', async function () {
    const good = noise(4, 5 * 1024 * 1024); // past WHOLE_MAX: streamed, so the lane's check is what is held
    const pkg = await signed(tarOf([{ path: 'image', data: noise(5, good.length), claimed: sha(good) }]));
    const bytes = readFileSync(pkg);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x55;
    writeFileSync(pkg, bytes);
    const d = await device('forged');
    await assertRefused(d, pkg, 'BAD_SIGNATURE', /signature/i);
    assert.deepEqual(openUnder(d.target), []);
  });

  it('lane-cut-off: a package cut off after large files were handed to the lane is refused; the lane is stopped before their descriptors are closed', async function () {
    const files = [0, 1, 2, 3].map((i) => ({ path: `big${i}`, data: noise(20 + i, 1024 * 1024) }));
    const gz = gzipSync(tarOf(files), { level: 0 });
    const pkg = await signPayload(join(tmp, 'cut.gpg'), gz.subarray(0, Math.floor(gz.length * 0.8)), { signingKeys: [dev.signingKey], gzip: false });
    const d = await device('cut');
    await assertRefused(d, pkg, 'BAD_ARCHIVE', /gzip|truncated|archive/i);
    assert.deepEqual(openUnder(d.target), []);
    // The next install works: nothing of the failed one is left running in the way.
    const ok = await installInto(d, await signed(tarOf(files)));
    assert.equal(ok.release, 'fw');
    const fd = openSync(join(d.target, 'fw', 'big3'), 'r');
    closeSync(fd);
    assert.deepEqual(openUnder(d.target), []);
  });
  it('lane-member-cut-short: an archive that ends inside a large file (the gzip stream whole) is refused as that file not matching its manifest (exit 21), not as an internal error', async function () {
    const files = [0, 1].map((i) => ({ path: `big${i}`, data: noise(30 + i, 3 << 20) }));
    const tar = tarOf(files);
    const cut = tar.subarray(0, tar.indexOf(files[0]?.data.subarray(0, 64) as Buffer) + (2 << 20));
    const d = await device('cut-short');
    await assertRefused(d, await signed(cut), 'BAD_ARCHIVE', /content of "big0" does not match its manifest \(the archive ends after 2097152 of its 3145728 bytes\)/);
    assert.deepEqual(openUnder(d.target), []);
  });

  it('lane-cancel-fd-reuse: a file dropped from the lane keeps its descriptor until the lane\'s thread has stopped (the thread may still read it; a reused number would be another file)', async function () {
    const staging = join(tmp, 'cancel-staging');
    mkdirSync(staging);
    const errors: unknown[] = [];
    const me = { asRoot: false, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const w = new StagingWriter({ staging, index: DedupIndex.build([]), owner: me, maxWrite: 1 << 30, maxEntries: 100, onError: (e) => errors.push(e), failed: () => errors.length > 0 });
    w.startLane();
    const fd = w.hold(w.createFile('f'));
    const file = w.onLane(fd, 'f', 8 << 20, '0'.repeat(64), () => new FussyError('BAD_ARCHIVE', 'mismatch'));
    assert.ok(file !== undefined, 'a large file goes on the lane');
    file.wrote(4 << 20);
    file.cancel();
    await w.settle();
    assert.doesNotThrow(() => fstatSync(fd), 'still open after the check settled');
    await w.stopThreads();
    assert.throws(() => fstatSync(fd), /EBADF/, 'closed once the thread is gone');
    assert.match(String(errors[0]), /cancelled/);
  });

  it('lane-thread-gone: a hashing thread that stops while a file is on it refuses the install (SETUP, exit 40) naming the file; the file is never taken as checked', async function () {
    const staging = join(tmp, 'gone-staging');
    mkdirSync(staging);
    const errors: unknown[] = [];
    const me = { asRoot: false, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const lane = HashLane.start() as HashLane;
    const w = new StagingWriter({ staging, index: DedupIndex.build([]), owner: me, maxWrite: 1 << 30, maxEntries: 100, lane, onError: (e) => errors.push(e), failed: () => errors.length > 0 });
    w.startLane();
    const fd = w.hold(w.createFile('image'));
    const file = w.onLane(fd, 'image', 4 << 20, '0'.repeat(64), () => new FussyError('BAD_ARCHIVE', 'mismatch'));
    assert.ok(file !== undefined);
    file.wrote(1 << 20);
    await lane.stop();
    file.end();
    await w.settle();
    assert.ok(errors[0] instanceof FussyError && errors[0].code === 'SETUP' && errors[0].exitCode === 40, String(errors[0]));
    assert.match((errors[0] as Error).message, /"image" could not be checked against its manifest: the hashing thread stopped/);
    assert.deepEqual(w.hashes, [], 'not vouched for');
    await w.stopThreads();
    assert.deepEqual(openUnder(staging), []);
  });

  it('lane-abort-while-settling: an abort that comes once every byte is written stops the lane rather than wait for its backlog (INTERRUPTED, nothing left open)', async function () {
    const files = Array.from({ length: 8 }, (_, i) => ({ path: `f${i}`, data: noise(40 + i, 4 << 20) }));
    const staging = join(tmp, 'abort-staging');
    const ac = new AbortController();
    const me = { asRoot: false, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const data = (async function* () {
      yield gzipSync(tarOf(files), { level: 1 });
    })();
    const lane = HashLane.start();
    try {
      await assert.rejects(
        unpack(data, { staging, index: DedupIndex.build([]), owner: me, maxBytes: 1 << 30, maxWrite: 1 << 30, lane, signal: ac.signal, onDataWritten: () => ac.abort() }),
        (err: unknown) => err instanceof Error && /abort|interrupt/i.test(`${(err as FussyError).code ?? ''} ${err.message}`),
      );
    } finally {
      await lane?.stop();
    }
    assert.deepEqual(openUnder(staging), []);
  });
});
