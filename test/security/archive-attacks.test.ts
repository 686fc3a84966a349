import { join } from 'node:path';
import { installInto, makeDevice, rawTar, signPayload, type Device, type RawEntry } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { assertRefused } from './helpers.js';
import { reserveLeaving, smallFs, targetOn } from './small-fs.js';
import type { ErrorCode } from '../../src/errors.js';
import assert from 'node:assert/strict';
import { mkdir, readdir, readlink, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/**
 * Archive-content attacks in packages that are properly signed by a trusted key: the signature
 * says who made a package, not that its content is harmless. Each is refused (exit 21) and
 * leaves the target as it was.
 */
describe('security: archive-content attacks on install (validly signed packages)', function () {
  let dev: Device;
  let n = 0;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  const signed = async (entries: RawEntry[]) => signPayload(join(dev.dir, `attack-${++n}.gpg`), rawTar(entries), { signingKeys: [dev.signingKey] });
  const root: RawEntry = { path: 'fw/', type: 'Directory' };

  const cases: [string, RawEntry[], ErrorCode, RegExp][] = [
    ['two-top-level-dirs', [root, { path: 'fw/a', data: 'a' }, { path: 'other/b', data: 'b' }], 'BAD_ARCHIVE', /more than one top-level directory/],
    ['release-named-current', [{ path: 'current/', type: 'Directory' }, { path: 'current/a', data: 'a' }], 'BAD_RELEASE_NAME', /release name "current"/],
    ['release-named-failsafe', [{ path: 'failsafe/x', data: 'a' }], 'BAD_RELEASE_NAME', /release name "failsafe"/],
    ['release-named-hidden', [{ path: '.fussy/x', data: 'a' }], 'BAD_RELEASE_NAME', /release name "\.fussy"/],
    ['path-traversal-dotdot', [root, { path: 'fw/../../etc/evil', data: 'x' }], 'UNSAFE_PATH', /contains a "\.\." component/],
    ['path-traversal-absolute', [root, { path: '/etc/evil', data: 'x' }], 'UNSAFE_PATH', /is an absolute path/],
    ['path-traversal-double-slash', [root, { path: '//etc/evil', data: 'x' }], 'UNSAFE_PATH', /is an absolute path/],
    ['pax-path-override', [root, { path: 'fw/innocent', data: 'x', pax: { path: 'fw/../../../tmp/evil' } }], 'UNSAFE_PATH', /contains a "\.\." component/],
    ['symlink-then-write-through', [root, { path: 'fw/etc', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'fw/etc/passwd', data: 'root::0:0::/:/bin/sh\n' }], 'UNSAFE_PATH', /would be written through the symlink "etc"/],
    ['symlink-absolute-target', [root, { path: 'fw/passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }], 'UNSAFE_PATH', /points outside the release/],
    ['symlink-escape-dotdot', [root, { path: 'fw/up', type: 'SymbolicLink', linkpath: '../../..' }], 'UNSAFE_PATH', /points outside the release/],
    ['symlink-chain-escape', [root, { path: 'fw/a/b/c/up', type: 'SymbolicLink', linkpath: '../..' }, { path: 'fw/a/b/escape', type: 'SymbolicLink', linkpath: 'c/up/../..' }], 'UNSAFE_PATH', /escape" -> "c\/up\/\.\.\/\.\." points outside/],
    ['hardlink-outside-release', [root, { path: 'fw/shadow', type: 'Link', linkpath: '/etc/shadow' }], 'UNSAFE_PATH', /absolute path/],
    ['hardlink-to-other-tree', [root, { path: 'fw/x', type: 'Link', linkpath: 'other/x' }], 'UNSAFE_PATH', /points outside the release/],
    ['hardlink-through-symlink', [root, { path: 'fw/l', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'fw/x', type: 'Link', linkpath: 'fw/l/passwd' }], 'UNSAFE_PATH', /does not name an earlier regular file/],
    ['device-node', [root, { path: 'fw/dev-null', type: 'CharacterDevice' }], 'UNSAFE_PATH', /is a CharacterDevice/],
    ['block-device', [root, { path: 'fw/sda', type: 'BlockDevice' }], 'UNSAFE_PATH', /is a BlockDevice/],
    ['fifo', [root, { path: 'fw/pipe', type: 'FIFO' }], 'UNSAFE_PATH', /is a FIFO/],
    ['duplicate-replaces-dir-with-symlink', [root, { path: 'fw/lib/', type: 'Directory' }, { path: 'fw/lib', type: 'SymbolicLink', linkpath: '/usr/lib' }], 'UNSAFE_PATH', /appears twice/],
    ['duplicate-file', [root, { path: 'fw/cfg', data: 'one' }, { path: 'fw/cfg', data: 'two' }], 'UNSAFE_PATH', /appears twice/],
    ['deep-path-1500', [root, { path: 'fw/' + 'd/'.repeat(1500) + 'x', data: 'x' }], 'UNSAFE_PATH', /deeper than|longer than/],
    // Found by the mutation fuzz test (2,000 cases): each ended in exit 1, or installed what GNU tar reads otherwise.
    ['name-longer-than-name-max', [root, { path: `fw/${'p'.repeat(300)}`, data: 'x' }], 'UNSAFE_PATH', /has a name longer than 255 bytes/],
    ['owner-beyond-uid-range', [root, { path: 'fw/a', data: 'a', uid: 2 ** 40 }], 'BAD_ARCHIVE', /has uid 1099511627776, outside 0\.\.4294967294/],
    ['owner-is-minus-one', [root, { path: 'fw/a', data: 'a', pax: { gid: 4294967295 } }], 'BAD_ARCHIVE', /has gid 4294967295, outside/],
    ['old-gnu-type-n-hides-a-directory', [root, { path: 'fw/etc/', type: 'OldGnuLongPath' }, { path: 'fw/etc/app.conf', data: 'x' }], 'BAD_ARCHIVE', /type "N", which GNU tar extracts as a file/],
    ['unknown-type-skipped-by-node-tar', [root, { path: 'fw/volume', type: 'TapeVolumeHeader' }, { path: 'fw/a', data: 'a' }], 'BAD_ARCHIVE', /type "V"/],
    ['misplaced-manifest', [root, { path: 'fw/a', data: 'a' }, { path: 'fw/.fussy-manifest.json', data: '{}' }], 'UNSAFE_PATH', /not the first entry/],
  ];

  for (const [name, entries, code, message] of cases) {
    it(`${name}`, async function () {
      await assertRefused(dev, await signed(entries), code, message);
    });
  }

  describe('signed manifests that lie (files are created ahead of the parser from the manifest)', function () {
    const sha = (d: string) => createHash('sha256').update(d).digest('hex');
    const many = Array.from({ length: 80 }, (_, i) => ({ path: `bulk/f${i}`, data: `file ${i}\n` }));
    const manifest = (entries: Array<{ path: string; type: string; mode: number; size?: number; sha256?: string; target?: string }>): RawEntry => {
      const files = entries.filter((e) => e.type === 'file');
      const m = { format: 'fussy-manifest', version: 1, release: 'fw', created: '2026-11-24T00:00:00Z', sequence: 1, totalBytes: files.reduce((n, e) => n + (e.size ?? 0), 0), fileCount: files.length, entries: entries.map((e) => ({ uid: 0, gid: 0, mtime: 1_700_000_000, ...e })) };
      return { path: 'fw/.fussy-manifest.json', data: JSON.stringify(m) };
    };
    const bulkManifest = [{ path: '.', type: 'directory', mode: 0o755 }, { path: 'bulk', type: 'directory', mode: 0o755 }, ...many.map((f) => ({ path: f.path, type: 'file', mode: 0o644, size: f.data.length, sha256: sha(f.data) }))];
    const bulkTar: RawEntry[] = [{ path: 'fw/bulk/', type: 'Directory' }, ...many.map((f) => ({ path: `fw/${f.path}`, data: f.data }))];

    it('manifest-says-dir-archive-says-symlink: a directory in the manifest that the archive makes a symlink out of the release', async function () {
      const outside = join(dev.dir, 'outside-1');
      await mkdir(outside);
      const pkg = await signed([
        root,
        manifest([...bulkManifest, { path: 'etc', type: 'directory', mode: 0o755 }, { path: 'etc/passwd', type: 'file', mode: 0o644, size: 5, sha256: sha('evil\n') }]),
        ...bulkTar,
        { path: 'fw/etc', type: 'SymbolicLink', linkpath: outside },
        { path: 'fw/etc/passwd', data: 'evil\n' },
      ]);
      await assertRefused(dev, pkg, 'BAD_ARCHIVE', /"fw\/etc" does not match its manifest entry/);
      assert.deepEqual(await readdir(outside), [], 'nothing was created through the symlink');
    });

    it('manifest-path-traversal: names with ".." in the manifest are never created', async function () {
      const pkg = await signed([
        root,
        manifest([...bulkManifest, { path: '../../manifest-evil', type: 'file', mode: 0o644, size: 1, sha256: sha('x') }]),
        ...bulkTar,
      ]);
      await assertRefused(dev, pkg, 'UNSAFE_PATH', /manifest entry "fw\/\.\.\/\.\.\/manifest-evil" contains a "\.\." component/);
      assert.equal(existsSync(join(dev.target, '..', 'manifest-evil')), false);
      assert.equal(existsSync(join(dev.dir, 'manifest-evil')), false);
    });

    it('manifest-file-under-symlink: a manifest file below a manifest symlink is not created ahead', async function () {
      const outside = join(dev.dir, 'outside-2');
      await mkdir(outside);
      const pkg = await signed([
        root,
        manifest([...bulkManifest, { path: 'lnk', type: 'symlink', mode: 0o777, target: outside }, { path: 'lnk/evil', type: 'file', mode: 0o644, size: 1, sha256: sha('x') }]),
        ...bulkTar,
        { path: 'fw/lnk', type: 'SymbolicLink', linkpath: outside, mode: 0o777 },
      ]);
      await assertRefused(dev, pkg, 'BAD_ARCHIVE', /manifest entry "lnk\/evil": its parent "lnk" is not a directory listed before it/);
      assert.deepEqual(await readdir(outside), []);
    });
  });

  it('decompression-bomb: a small package expanding past the free space is stopped before filling the disk', async function () {
    // 64 MiB of zeros gzip to ~64 KiB; the reserve leaves room for far less.
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const pkg = await signPayload(join(dev.dir, 'bomb.gpg'), rawTar([root, { path: 'fw/zeros', data: zeros }]), { signingKeys: [dev.signingKey] });
    // A file system of its own: its free space is this test's alone, whatever else runs.
    const fs = await smallFs(48 * 1024 * 1024);
    if (fs === undefined) this.skip(); // needs root (CI runs as root)
    try {
      const small = await targetOn(dev, fs.dir, 'target');
      await assertRefused(small, pkg, 'NO_SPACE', /not enough free space/, { reserveBytes: await reserveLeaving(fs.dir, 8 * 1024 * 1024) });
    } finally {
      fs.unmount();
    }
  });

  it('gzip-trailing-zeros: bytes after the end of the gzip stream (GNU tar pads what it writes to a pipe) are read for the verdict and never waited on: signed, it installs; forged, refused for its signature', async function () {
    const manifest = { format: 'fussy-manifest', version: 1, release: 'fw', created: '', sequence: 7, totalBytes: 1, fileCount: 1, entries: [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 }, { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 1, sha256: createHash('sha256').update('x').digest('hex') }] };
    const payload = Buffer.concat([gzipSync(rawTar([root, { path: 'fw/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw/f', data: 'x' }])), Buffer.alloc(8 * 1024 * 1024)]);
    const pkg = await signPayload(join(dev.dir, 'trailing.gpg'), payload, { signingKeys: [dev.signingKey], gzip: false });
    const bytes = await readFile(pkg);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x55;
    const forged = join(dev.dir, 'trailing-forged.gpg');
    await writeFile(forged, bytes);
    await assertRefused(dev, forged, 'BAD_SIGNATURE', /failed verification|signature check failed/);
    const d: Device = { ...dev, target: join(dev.dir, 'trailing-target') };
    await mkdir(d.target, { recursive: true });
    assert.equal((await installInto(d, pkg)).release, 'fw');
  });

  it('held-refusal-past-the-bound: a signed package for another device type, larger than the free space, is told INCOMPATIBLE (the rest is read, not inflated)', async function () {
    const fs = await smallFs(48 * 1024 * 1024);
    if (fs === undefined) this.skip(); // needs root (CI runs as root)
    try {
      const small = await targetOn(dev, fs.dir, 'incompatible');
      const data = Buffer.alloc(32 * 1024 * 1024, 7);
      const manifest = { format: 'fussy-manifest', version: 1, release: 'fw', created: '', sequence: 7, compatible: ['other-board'], totalBytes: data.length, fileCount: 1, entries: [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 }, { path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: data.length, sha256: createHash('sha256').update(data).digest('hex') }] };
      const pkg = await signed([root, { path: 'fw/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw/big', data }]);
      await assertRefused(small, pkg, 'INCOMPATIBLE', /other-board/, { reserveBytes: await reserveLeaving(fs.dir, 4 * 1024 * 1024) });
    } finally {
      fs.unmount();
    }
  });

  it('manifest-lies-about-size: content larger than the signed manifest says is cut off', async function () {
    const big = Buffer.alloc(8 * 1024 * 1024, 1);
    const manifest = { format: 'fussy-manifest', version: 1, release: 'fw', created: '', sequence: 1, totalBytes: 10, fileCount: 1, entries: [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 }, { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 10, sha256: '0'.repeat(64) }] };
    const pkg = await signed([root, { path: 'fw/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw/f', data: big }]);
    await assertRefused(dev, pkg, 'BAD_ARCHIVE', /does not match its manifest|expands beyond/);
  });

  it('truncated-archive inside a valid signature: refused as malformed', async function () {
    const tar = rawTar([root, { path: 'fw/a', data: 'x'.repeat(5000) }]);
    const pkg = await signPayload(join(dev.dir, 'cut.gpg'), gzipSync(tar.subarray(0, 1536)), { signingKeys: [dev.signingKey], gzip: false });
    await assertRefused(dev, pkg, 'BAD_ARCHIVE', /TAR_BAD_ARCHIVE|Truncated|archive/i);
  });

  it('symlink chains inside the release and intra-tree ../ links install correctly', async function () {
    const pkg = await signed([
      root,
      { path: 'fw/lib/libfoo.so.1.2.3', data: 'ELF' },
      { path: 'fw/lib/libfoo.so', type: 'SymbolicLink', linkpath: 'libfoo.so.1' },
      { path: 'fw/lib/libfoo.so.1', type: 'SymbolicLink', linkpath: 'libfoo.so.1.2.3' },
      { path: 'fw/bin/lib', type: 'SymbolicLink', linkpath: '../lib' },
      { path: 'fw/bin/tool', type: 'Link', linkpath: 'fw/lib/libfoo.so.1.2.3' },
    ]);
    const r = await installInto(dev, pkg);
    assert.equal(await readlink(join(r.path, 'lib/libfoo.so')), 'libfoo.so.1');
    assert.equal(await readFile(join(r.path, 'bin/lib/libfoo.so'), 'utf8'), 'ELF');
    assert.equal(await readFile(join(r.path, 'bin/tool'), 'utf8'), 'ELF');
  });
});
