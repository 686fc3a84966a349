import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { gzipSync } from 'node:zlib';
import { FussyError, history, status, verify } from '../../src/index.js';
import { clean } from '../../src/ops/clean.js';
import { pack, type PackOptions } from '../../src/pack/pack.js';
import { copyVerified } from '../../src/unpack/file-io.js';
import { installInto, makeDevice, rawTar, signPayload, targetState, type Device } from '../helpers/device.js';
import { rejection } from '../helpers/rejection.js';
import { fussy } from '../helpers/other-user.js';
import { makeTmp } from '../helpers/tmp.js';
import { noise, writeTree, type SampleFile } from '../helpers/tree.js';

const big = (seed: number, n = 256 * 1024): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 2654435761 + seed * 40503) >>> 11 & 0xff;
  return b;
};

/** Release 1 and 2: 2 changes one file and adds one; the big data and the binary stay. */
const FW1: SampleFile[] = [
  { path: 'bin/app', content: '#!/bin/sh\necho 1\n', mode: 0o755 },
  { path: 'share/data.bin', content: big(1) },
  { path: 'share/more.bin', content: big(2) },
  { path: 'etc/version', content: '1\n' },
];
const FW2: SampleFile[] = [...FW1.filter((f) => f.path !== 'etc/version'), { path: 'etc/version', content: '2\n' }, { path: 'etc/new.conf', content: 'x = 1\n' }];

/** fw-2 is the newest whatever was packed in between (downgrade protection would refuse it). */
const SEQUENCE: Record<string, number> = { 'fw-0': 1, 'fw-1': 2, 'fw-z': 3, 'fw-y': 4, 'fw-k': 5, 'fw-2': 100 };

describe('delta packages: fussy pack --delta-from, and their install', function () {
  let tmp: string;
  let dev: Device;
  let full1: string;
  let full2: string;
  const packIt = async (name: string, files: SampleFile[], extra: Partial<PackOptions> = {}): Promise<Awaited<ReturnType<typeof pack>>> =>
    pack({ source: await writeTree(join(tmp, 'build', Math.random().toString(36).slice(2), name), files), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'out', `${name}-${Math.random().toString(36).slice(2)}.gpg`), sequence: SEQUENCE[name], ...extra });

  before(async function () {
    tmp = await makeTmp('fussy-delta-');
    mkdirSync(join(tmp, 'out'));
    dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    full1 = (await packIt('fw-1', FW1)).path;
    full2 = (await packIt('fw-2', FW2)).path;
  });

  async function deviceOn(name: string, pkgs: string[]): Promise<Device> {
    const d: Device = { ...dev, target: join(tmp, name, 'firmware') };
    mkdirSync(d.target, { recursive: true });
    for (const p of pkgs) await installInto(d, p);
    return d;
  }

  it('against a package: the archive carries only what changed; GNU tar lists it; it installs, shares the rest, and verifies', async function () {
    const r = await packIt('fw-2', FW2, { deltaFrom: [full1] });
    assert.deepEqual(r.bases?.map((b) => b.release), ['fw-1']);
    assert.match(r.bases?.[0]?.manifest ?? '', /^[0-9a-f]{64}$/);
    assert.equal(r.omittedFiles, 3);
    assert.ok(r.bytes < statSync(full2).size / 4, `${r.bytes} vs ${statSync(full2).size}`);
    const listed = execFileSync('sh', ['-c', `gpg --batch --quiet --skip-verify --decrypt '${r.path}' 2>/dev/null | tar tzf -`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.deepEqual(listed.sort(), ['fw-2/', 'fw-2/.fussy-manifest.json', 'fw-2/bin/', 'fw-2/etc/', 'fw-2/etc/new.conf', 'fw-2/etc/version', 'fw-2/share/'].sort());
    const d = await deviceOn('with-base', [full1]);
    const res = await installInto(d, r.path);
    assert.equal(res.release, 'fw-2');
    assert.equal(readFileSync(join(d.target, 'fw-2/etc/version'), 'utf8'), '2\n');
    assert.equal(statSync(join(d.target, 'fw-2/share/data.bin')).ino, statSync(join(d.target, 'fw-1/share/data.bin')).ino);
    assert.deepEqual((await verify({ target: d.target })).reports[0]?.findings, []);
    const s = await status({ target: d.target });
    assert.equal(s.releases.find((x) => x.name === 'fw-1')?.manifestSha256, r.bases?.[0]?.manifest, 'status names the base as the delta did');
    assert.deepEqual((await history({ target: d.target })).records.at(-1)?.delta, { bases: r.bases }, 'the history says it was a delta, and against what');
  });

  it('against a manifest, a release directory, and two bases: the same files left out; a directory base has no manifest hash', async function () {
    const d1 = await deviceOn('bases', [full1]);
    const fromManifest = await packIt('fw-2', FW2, { deltaFrom: [join(d1.target, 'fw-1', '.fussy-manifest.json')] });
    assert.equal(fromManifest.omittedFiles, 3);
    assert.equal(fromManifest.bases?.[0]?.manifest, (await status({ target: d1.target })).releases[0]?.manifestSha256);
    const fromDir = await packIt('fw-2', FW2, { deltaFrom: [await writeTree(join(tmp, 'build', 'dir-base', 'fw-1'), FW1)] });
    assert.equal(fromDir.omittedFiles, 3);
    assert.deepEqual(fromDir.bases, [{ release: 'fw-1' }]);
    const other: SampleFile[] = [{ path: 'etc/other', content: 'o\n' }, { path: 'share/more.bin', content: big(2) }];
    const fw0 = (await packIt('fw-0', other)).path;
    const two = await packIt('fw-2', FW2, { deltaFrom: [fw0, full1] });
    assert.deepEqual(two.bases?.map((b) => b.release), ['fw-0', 'fw-1']);
    // Installs on a device that has only fw-0 when what it leaves out is all in fw-0: not here (data.bin is in fw-1 only).
    const onlyZero = await deviceOn('only-zero', [fw0]);
    const err = await rejection(installInto(onlyZero, two.path));
    assert.equal(err.code, 'DELTA_BASE_MISSING');
    assert.match(err.message, /lacks 2 of the 3 files it leaves out \(bin\/app, share\/data\.bin\)/);
    await installInto(d1, fromDir.path);
    assert.equal(readlinkSync(join(d1.target, 'current')), 'fw-2');
  });

  it('on a device without the base, or whose base was cleaned: refused (exit 21) naming the bases and what the device has; nothing changed', async function () {
    const r = await packIt('fw-2', FW2, { deltaFrom: [full1] });
    const empty = await deviceOn('no-base', []);
    const err = await rejection(installInto(empty, r.path));
    assert.equal(err.code, 'DELTA_BASE_MISSING');
    assert.equal(err.exitCode, 21);
    assert.match(err.message, /fw-2 is a delta package against fw-1 \(manifest [0-9a-f]{12}\), and this device lacks 3 of the 3 files/);
    const other: SampleFile[] = [{ path: 'etc/v', content: 'z\n' }];
    const d = await deviceOn('cleaned', [full1, (await packIt('fw-z', other)).path, (await packIt('fw-y', [{ path: 'etc/v', content: 'y\n' }])).path]);
    await clean({ target: d.target, keep: 0, env: {}, cwd: tmp, hookTimeoutMs: 1000 });
    const before = await targetState(d.target);
    const again = await rejection(installInto(d, r.path));
    assert.equal(again.code, 'DELTA_BASE_MISSING');
    assert.match(again.message, /the device has fw-y \([0-9a-f]{12}\)/);
    assert.deepEqual(await targetState(d.target), before);
  });

  /** A package signed by the device's trusted key, then its signature value spoilt: what an uploader with no key can make (the key id is public). */
  const forge = async (file: string, tarball: Buffer): Promise<string> => {
    await signPayload(file, tarball, { signingKeys: [dev.signingKey] });
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x55;
    writeFileSync(file, bytes);
    return file;
  };
  const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');
  const dirEntry = (path: string) => ({ path, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 });
  const fileEntry = (path: string, content: Buffer, extra: object = {}) => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: content.length, sha256: sha(content), ...extra });

  it('forged-delta-oracle: a forged delta asking for a file by its hash gets the same answer from a device that has it and one that lacks it (exit 20), and learns nothing of either', async function () {
    const version = Buffer.from('2\n');
    const pad = noise(12, 5 * 1024 * 1024); // past WHOLE_MAX: streamed, its refusals held until the verdict
    const manifest = {
      format: 'fussy-manifest', version: 2, release: 'fw-p', created: '2026-12-03T00:00:00.000Z', sequence: 1000, bases: [{ release: 'fw-1' }], totalBytes: pad.length + big(1).length, fileCount: 2,
      entries: [dirEntry('.'), dirEntry('share'), fileEntry('share/data.bin', big(1), { from: 'base' }), fileEntry('share/pad', pad)],
    };
    // After the manifest, a member it does not list: a device that has the file would go on and meet it.
    const tarball = rawTar([{ path: 'fw-p/', type: 'Directory' }, { path: 'fw-p/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-p/share/', type: 'Directory' }, { path: 'fw-p/junk', data: version }, { path: 'fw-p/share/pad', data: pad }]);
    const forged = await forge(join(tmp, 'oracle.gpg'), tarball);
    const has = await deviceOn('oracle-has', [full1]);
    const lacks = await deviceOn('oracle-lacks', [(await packIt('fw-z', [{ path: 'etc/v', content: 'z\n' }])).path]);
    for (const d of [has, lacks]) {
      const before = await targetState(d.target);
      const err = await rejection(installInto(d, forged));
      assert.equal(err.code, 'BAD_SIGNATURE', `${d.target}: ${err.message}`);
      assert.doesNotMatch(err.message, /fw-1|fw-z|lacks|junk/);
      assert.deepEqual(await targetState(d.target), before);
    }
    // Signed by the trusted key, a delta the device cannot use is refused for what it is, naming what the device has.
    const real = await packIt('fw-2', FW2, { deltaFrom: [full1] });
    const why = await rejection(installInto(lacks, real.path));
    assert.equal(why.code, 'DELTA_BASE_MISSING');
    assert.match(why.message, /the device has fw-z/);
  });

  it('forged-manifest-probes-policy: a forged package claiming an old sequence or another device type is refused for its signature, not told the recorded sequence or the type', async function () {
    const d = await deviceOn('policy-probe', [full1]);
    const pad = noise(13, 5 * 1024 * 1024); // past WHOLE_MAX: streamed, its refusals held until the verdict
    for (const extra of [{ sequence: 1 }, { sequence: 99_999, compatible: ['other-board'] }]) {
      const manifest = { format: 'fussy-manifest', version: 1, release: 'fw-q', created: '2026-12-03T00:00:00.000Z', totalBytes: pad.length, fileCount: 1, ...extra, entries: [dirEntry('.'), fileEntry('pad', pad)] };
      const forged = await forge(join(tmp, `policy-${extra.sequence}.gpg`), rawTar([{ path: 'fw-q/', type: 'Directory' }, { path: 'fw-q/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-q/pad', data: pad }]));
      const err = await rejection(installInto(d, forged));
      assert.equal(err.code, 'BAD_SIGNATURE', err.message);
      assert.doesNotMatch(err.message, /sequence|compatible|device type/i);
    }
  });

  it('forged-gzip-error-oracle: a forged package whose gzip stream breaks after its manifest gets the same answer on a device of its type and on another (exit 20)', async function () {
    const data = noise(14, 6 * 1024 * 1024);
    const manifest = { format: 'fussy-manifest', version: 1, release: 'fw-g', created: '2026-12-03T00:00:00.000Z', sequence: 5000, compatible: ['board-a'], totalBytes: data.length, fileCount: 1, entries: [dirEntry('.'), fileEntry('big', data)] };
    const gz = gzipSync(rawTar([{ path: 'fw-g/', type: 'Directory' }, { path: 'fw-g/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-g/big', data }]));
    const file = join(tmp, 'gzip-oracle.gpg');
    await signPayload(file, Buffer.concat([gz, Buffer.from('garbage!'), noise(15, 4 * 1024 * 1024)]), { signingKeys: [dev.signingKey], gzip: false });
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x55;
    writeFileSync(file, bytes);
    const d = await deviceOn('gzip-oracle', [full1]);
    for (const deviceType of ['board-a', 'board-b']) {
      const err = await rejection(installInto(d, file, { deviceType }));
      assert.equal(err.code, 'BAD_SIGNATURE', `${deviceType}: ${err.message}`);
    }
  });

  it('base-damaged-in-place: a base file edited in place is never used; another healthy copy is, else the package is refused naming the file', async function () {
    const r = await packIt('fw-2', FW2, { deltaFrom: [full1] });
    const d = await deviceOn('damaged', [full1]);
    appendFileSync(join(d.target, 'fw-1/share/data.bin'), 'damage');
    const err = await rejection(installInto(d, r.path));
    assert.equal(err.code, 'DELTA_BASE_MISSING');
    assert.match(err.message, /share\/data\.bin/);
    // A healthy copy elsewhere on the device (another release holding the same content) is used.
    const keep: SampleFile[] = [{ path: 'share/copy.bin', content: big(1) }];
    await installInto(d, (await packIt('fw-k', keep)).path);
    await installInto(d, r.path);
    assert.equal(statSync(join(d.target, 'fw-2/share/data.bin')).ino, statSync(join(d.target, 'fw-k/share/copy.bin')).ino);
    assert.deepEqual((await verify({ target: d.target, names: ['fw-2'] })).reports[0]?.findings, []);
  });

  it('encrypted: a delta encrypted for the device installs; the base package may itself be encrypted (opened with --delta-keyring)', async function () {
    const enc1 = (await packIt('fw-1', FW1, { recipientKeyFiles: [dev.devicePublicKeyFile], recipients: [dev.deviceFingerprint] })).path;
    const r = await packIt('fw-2', FW2, { deltaFrom: [enc1], deltaKeyring: dev.keyring, recipientKeyFiles: [dev.devicePublicKeyFile], recipients: [dev.deviceFingerprint] });
    assert.equal(r.omittedFiles, 3);
    const d = await deviceOn('encrypted', [enc1]);
    assert.equal((await installInto(d, r.path)).encrypted, true);
    assert.equal(readFileSync(join(d.target, 'fw-2/etc/version'), 'utf8'), '2\n');
  });

  it('a file whose content is in a base but whose mode differs is copied with its own mode, not linked', async function () {
    const exec: SampleFile[] = [...FW2.filter((f) => f.path !== 'share/more.bin'), { path: 'share/more.bin', content: big(2), mode: 0o600 }];
    const r = await packIt('fw-2', exec, { deltaFrom: [full1] });
    const d = await deviceOn('mode', [full1]);
    copyFileSync(r.path, join(tmp, 'mode.gpg'));
    await installInto(d, r.path);
    const st = statSync(join(d.target, 'fw-2/share/more.bin'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.notEqual(st.ino, statSync(join(d.target, 'fw-1/share/more.bin')).ino);
    assert.deepEqual((await verify({ target: d.target, names: ['fw-2'] })).reports[0]?.findings, []);
  });

  describe('a large file with a small change in place: carried as a patch of its changed chunks', function () {
    const image = (edits: number[]): Buffer => {
      const b = noise(7, 6 * 1024 * 1024);
      for (const at of edits) noise(99, 30_000).copy(b, at);
      return b;
    };
    const IMG1: SampleFile[] = [{ path: 'etc/version', content: '1\n' }, { path: 'db/image', content: image([]) }];
    const IMG2: SampleFile[] = [{ path: 'etc/version', content: '2\n' }, { path: 'db/image', content: image([700_000, 4_000_000]) }];

    it('against a release directory: the package holds about the changed bytes, installs the exact file, and verifies', async function () {
      const base = await writeTree(join(tmp, 'build', 'img-1'), IMG1);
      const r = await packIt('fw-2', IMG2, { deltaFrom: [base] });
      assert.equal(r.patchedFiles, 1);
      assert.ok(r.bytes < 70_000, `${r.bytes} bytes for 60,000 changed (the chunks an edit cuts into are carried only where they differ)`);
      const fullSize = statSync((await packIt('fw-2', IMG2)).path).size;
      assert.ok(r.bytes * 20 < fullSize, `${r.bytes} vs ${fullSize}`);
      const d = await deviceOn('patched', [(await packIt('fw-1', IMG1)).path]);
      await installInto(d, r.path);
      assert.deepEqual(readFileSync(join(d.target, 'fw-2/db/image')), image([700_000, 4_000_000]));
      assert.deepEqual((await verify({ target: d.target, names: ['fw-2'] })).reports[0]?.findings, []);
    });

    it('edits at the very start and end, a one-byte edit, and a run of new chunks longer than a DATA record: each carried as about its own bytes, the file exact', async function () {
      const size = 6 * 1024 * 1024;
      const edited = (): Buffer => {
        const b = image([]);
        noise(50, 20_000).copy(b, 0);
        b[3_000_000] = (b[3_000_000] as number) ^ 1;
        noise(51, 1_500_000).copy(b, 4_000_000);
        noise(52, 20_000).copy(b, size - 20_000);
        return b;
      };
      const base = await writeTree(join(tmp, 'build', 'img-ends'), IMG1);
      const r = await packIt('fw-2', [{ path: 'etc/version', content: '2\n' }, { path: 'db/image', content: edited() }], { deltaFrom: [base] });
      assert.equal(r.patchedFiles, 1);
      // 20,000 + 4,097 (a record is longer than a chunk's least) + 1,500,000 + 20,000 + the end chunk's rest and the records.
      assert.ok(r.bytes < 1_600_000, `${r.bytes}`);
      const d = await deviceOn('patched-ends', [(await packIt('fw-1', IMG1)).path]);
      await installInto(d, r.path);
      assert.deepEqual(readFileSync(join(d.target, 'fw-2/db/image')), edited());
    });

    it('against a base package (encrypted, opened with --delta-keyring): the base file is read out of the package, the patch made against it', async function () {
      const basePkg = (await packIt('fw-1', IMG1, { recipientKeyFiles: [dev.devicePublicKeyFile], recipients: [dev.deviceFingerprint] })).path;
      const r = await packIt('fw-2', IMG2, { deltaFrom: [basePkg], deltaKeyring: dev.keyring });
      assert.equal(r.patchedFiles, 1);
      assert.ok(r.bytes < 200_000, `${r.bytes}`);
      const d = await deviceOn('patched-from-package', [basePkg]);
      await installInto(d, r.path);
      assert.deepEqual(readFileSync(join(d.target, 'fw-2/db/image')), image([700_000, 4_000_000]));
    });

    it('base-damaged-in-place: the patch is never applied to an edited base; refused naming the file, nothing changed', async function () {
      const base = await writeTree(join(tmp, 'build', 'img-1b'), IMG1);
      const r = await packIt('fw-2', IMG2, { deltaFrom: [base] });
      const d = await deviceOn('patched-damaged', [(await packIt('fw-1', IMG1)).path]);
      const f = join(d.target, 'fw-1/db/image');
      const bytes = readFileSync(f);
      bytes[100] = (bytes[100] as number) ^ 0xff;
      writeFileSync(f, bytes); // in place: same inode
      const before = await targetState(d.target);
      const err = await rejection(installInto(d, r.path));
      assert.equal(err.code, 'DELTA_BASE_MISSING');
      assert.match(err.message, /db\/image/);
      assert.deepEqual(await targetState(d.target), before);
    });

    it('patch-base-swapped-mid-install: a patch base renamed away after the plan is refused (exit 21), not waited on with the lock held', async function () {
      const img2 = image([700_000]);
      const p1 = (await packIt('fw-1', [...IMG1, { path: 'share/x', content: 'same\n' }])).path;
      // Data after the patch: the package goes on well past the point where the base is missed.
      const r = await packIt('fw-2', [{ path: 'etc/version', content: '2\n' }, { path: 'share/x', content: 'same\n' }, { path: 'db/image', content: img2 }, { path: 'z/more', content: noise(11, 8 * 1024 * 1024) }], { deltaFrom: [p1] });
      assert.equal(r.patchedFiles, 1);
      const d = await deviceOn('swapped-base', [p1]);
      const pause = join(tmp, 'swapped-pause');
      const base = join(d.target, 'fw-1/db/image');
      // Whoever owns fw-1/db renames the base after install verified it, before its patch arrives.
      const mover = execa('sh', ['-c', `while [ ! -e ${pause} ]; do sleep 0.01; done; mv ${base} ${base}.moved; rm ${pause}`]);
      const err = await rejection(installInto(d, r.path, { failpoint: `pause:dedup-before-link:${pause}` }));
      await mover;
      assert.equal(err.code, 'DELTA_BASE_MISSING');
      assert.match(err.message, /db\/image/);
      assert.equal(readlinkSync(join(d.target, 'current')), 'fw-1');
    });

    it('patch-base-edited-mid-install: a patch base edited in place, or cut short, after it was verified is refused as a changed base (21, naming it), not blamed on the package', async function () {
      const img2 = image([700_000]);
      const p1 = (await packIt('fw-1', [...IMG1, { path: 'share/x', content: 'same\n' }])).path;
      const r = await packIt('fw-2', [{ path: 'etc/version', content: '2\n' }, { path: 'share/x', content: 'same\n' }, { path: 'db/image', content: img2 }], { deltaFrom: [p1] });
      // Whoever owns fw-1/db edits a range the patch copies (a wrong file made), or cuts the file
      // short (a COPY past its end), after install verified the base.
      for (const [name, edit] of [['edited', 'printf EDITED | dd of=BASE bs=1 seek=1000 conv=notrunc 2>/dev/null'], ['cut', 'truncate -s 100000 BASE']]) {
        const d = await deviceOn(`${name}-base`, [p1]);
        const pause = join(tmp, `${name}-pause`);
        const base = join(d.target, 'fw-1/db/image');
        const editor = execa('sh', ['-c', `while [ ! -e ${pause} ]; do sleep 0.01; done; ${(edit as string).replace('BASE', base)}; rm ${pause}`]);
        const err = await rejection(installInto(d, r.path, { failpoint: `pause:dedup-before-link:${pause}` }));
        await editor;
        assert.equal(err.code, 'DELTA_BASE_MISSING', `${name}: ${err.message}`);
        assert.match(err.message, /fw-1\/db\/image, the base of "db\/image", changed while the patch was applied/);
        assert.equal(readlinkSync(join(d.target, 'current')), 'fw-1');
      }
    });

    it('base-package-name-twice: a base package holding the patched file twice is refused by name (BAD_SOURCE), no temp file left', async function () {
      const img = image([]);
      const manifest = { format: 'fussy-manifest', version: 1, release: 'fw-1', created: '2026-12-03T00:00:00.000Z', sequence: 2, totalBytes: img.length, fileCount: 1, entries: [dirEntry('.'), dirEntry('db'), fileEntry('db/image', img)] };
      const twice = rawTar([{ path: 'fw-1/', type: 'Directory' }, { path: 'fw-1/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-1/db/', type: 'Directory' }, { path: 'fw-1/db/image', data: img }, { path: 'fw-1/db/image', data: img }]);
      const basePkg = await signPayload(join(tmp, 'twice.gpg'), twice, { signingKeys: [dev.signingKey] });
      const before = readdirSync(tmp).filter((n) => n.startsWith('.fussy-tmp-'));
      const err = await rejection(packIt('fw-2', IMG2, { deltaFrom: [basePkg] }));
      assert.equal(err.code, 'BAD_SOURCE');
      assert.match(err.message, /holds "db\/image" twice/);
      assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('.fussy-tmp-')), before);
    });

    it('a patch that does not make its file (crafted, unsigned) is refused before anything is installed', async function () {
      // The same delta re-signed by a key the device does not trust is refused for its signature;
      // here the device trusts it, and the patch claims a chunk its base file does not have.
      const base = await writeTree(join(tmp, 'build', 'img-1c'), IMG1);
      const other = await writeTree(join(tmp, 'build', 'img-1d'), [{ path: 'db/image', content: noise(8, 6 * 1024 * 1024) }]);
      const r = await packIt('fw-2', IMG2, { deltaFrom: [base] });
      // A device whose base file has the same sha256 claim but other bytes cannot exist (content is checked),
      // so the patch is applied on a device on another base: refused as missing, not misapplied.
      const d = await deviceOn('patched-other', [(await packIt('fw-1', [{ path: 'db/image', content: readFileSync(join(other, 'db/image')) }])).path]);
      const err = await rejection(installInto(d, r.path));
      assert.equal(err.code, 'DELTA_BASE_MISSING');
    });
  });

  describe('what a delta cannot make install do (review)', function () {

    it('forged-lookup-flood: a forged delta of 20,000 entries asking for content of a size the factory image has 4,000 files of is refused for its signature (20) after one look at each file, not one per entry', async function () {
      const d = await makeDevice(join(tmp, 'lookup-flood'));
      mkdirSync(join(d.target, 'current', 'lib', 'py'), { recursive: true });
      for (let i = 0; i < 4000; i++) writeFileSync(join(d.target, 'current', 'lib', 'py', `__init__${i}.py`), '');
      const pad = noise(11, 5 * 1024 * 1024); // past 4 MiB: streamed, so the lookups come before the verdict
      const file = (path: string, size: number, sha256: string, from?: string) => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size, sha256, ...(from === undefined ? {} : { from }) });
      const entries = [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }, ...Array.from({ length: 20_000 }, (_, i) => file(`f${i}`, 0, sha(Buffer.from(`no such content ${i}`)), 'base')), file('pad', pad.length, sha(pad))];
      const manifest = { format: 'fussy-manifest', version: 2, release: 'fw-f', created: '2026-12-03T00:00:00.000Z', sequence: 1000, bases: [{ release: 'factory' }], totalBytes: pad.length, fileCount: entries.length - 1, entries };
      const pkg = await signPayload(join(tmp, 'lookup-flood.gpg'), rawTar([{ path: 'fw-f/', type: 'Directory' }, { path: 'fw-f/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-f/pad', data: pad }]), { signingKeys: [d.signingKey] });
      const bytes = readFileSync(pkg);
      bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x55; // forged: the signature no longer holds
      writeFileSync(pkg, bytes);
      const before = await targetState(d.target);
      // One lstat per file and entry was 80 million lstats here (~5 minutes, with the lock held).
      const r = await fussy(['install', pkg, '-k', d.keyring, '-t', d.target], { timeout: 60_000 });
      assert.equal(r.timedOut, false, 'the lookups outlasted a minute');
      assert.equal(r.exitCode, 20, r.stderr);
      assert.deepEqual(await targetState(d.target), before);
    });

    it('patch-record-flood: a patch of tiny records (crafted, signed or not) is refused at its first record, before it makes install write per byte', async function () {
      const image = noise(3, 2 * 1024 * 1024);
      const d = await deviceOn('flood', [(await packIt('fw-1', [{ path: 'db/image', content: image }])).path]);
      const patch = Buffer.concat([Buffer.from('FYD1'), ...Array.from({ length: 64 }, (_, i) => Buffer.from([2, 0, 0, 0, 1, image[i] as number])), Buffer.from([0])]);
      const entry = { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
      const manifest = {
        format: 'fussy-manifest', version: 2, release: 'fw-t', created: '2026-12-03T00:00:00.000Z', sequence: 1000, bases: [{ release: 'fw-1' }], totalBytes: image.length, fileCount: 1,
        entries: [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }, { path: 'db', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }, { path: 'db/image', ...entry, size: image.length, sha256: sha(image), from: 'chunks', base: sha(image), baseSize: image.length }],
      };
      const tarball = rawTar([{ path: 'fw-t/', type: 'Directory' }, { path: 'fw-t/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-t/db/', type: 'Directory' }, { path: 'fw-t/db/image', data: patch }]);
      const pkg = await signPayload(join(tmp, 'flood.gpg'), tarball, { signingKeys: [dev.signingKey] });
      const before = await targetState(d.target);
      const err = await rejection(installInto(d, pkg));
      assert.equal(err.code, 'BAD_ARCHIVE');
      assert.match(err.message, /the patch of "db\/image" has a DATA record of 1 bytes/);
      assert.deepEqual(await targetState(d.target), before);
    });

    it('truncated-patch-fd: a package cut off in the middle of a patch is refused and leaves no descriptor open on the base file or in staging', async function () {
      const image = noise(9, 2 * 1024 * 1024);
      const d = await deviceOn('truncated', [(await packIt('fw-1', [{ path: 'db/image', content: image }])).path]);
      const half = 1024 * 1024;
      const data = Buffer.alloc(5);
      data[0] = 2;
      data.writeUInt32BE(half, 1);
      const copy = Buffer.alloc(17);
      copy[0] = 1;
      copy.writeBigUInt64BE(BigInt(half), 1);
      copy.writeBigUInt64BE(BigInt(half), 9);
      const patch = Buffer.concat([Buffer.from('FYD1'), data, image.subarray(0, half), copy, Buffer.from([0])]);
      const entry = { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
      const manifest = {
        format: 'fussy-manifest', version: 2, release: 'fw-t', created: '2026-12-03T00:00:00.000Z', sequence: 1000, bases: [{ release: 'fw-1' }], totalBytes: image.length, fileCount: 1,
        entries: [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }, { path: 'db', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }, { path: 'db/image', ...entry, size: image.length, sha256: sha(image), from: 'chunks', base: sha(image), baseSize: image.length }],
      };
      // The gzip stream ends half way through the patch's DATA record: the member never ends, the inflate fails.
      const gz = gzipSync(rawTar([{ path: 'fw-t/', type: 'Directory' }, { path: 'fw-t/.fussy-manifest.json', data: JSON.stringify(manifest) }, { path: 'fw-t/db/', type: 'Directory' }, { path: 'fw-t/db/image', data: patch }]));
      const pkg = await signPayload(join(tmp, 'truncated.gpg'), gz.subarray(0, Math.floor(gz.length * 0.6)), { signingKeys: [dev.signingKey], gzip: false });
      const before = await targetState(d.target);
      const err = await rejection(installInto(d, pkg));
      assert.equal(err.code, 'BAD_ARCHIVE');
      const open = readdirSync('/proc/self/fd').map((fd) => {
        try {
          return readlinkSync(join('/proc/self/fd', fd));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // the directory's own descriptor, closed by now
          return '';
        }
      });
      assert.deepEqual(open.filter((p) => p.startsWith(d.target)), []);
      assert.deepEqual(await targetState(d.target), before);
    });

    it('base-grown-after-verify: a source file that grew after it was verified is not copied past its size (a local user cannot fill the disk)', function () {
      const dir = join(tmp, 'grow');
      mkdirSync(dir, { recursive: true });
      const src = join(dir, 'src');
      writeFileSync(src, 'ten bytes!');
      const st = statSync(src);
      appendFileSync(src, Buffer.alloc(1024 * 1024));
      const fd = openSync(join(dir, 'out'), 'wx');
      try {
        const found = { abs: src, dev: st.dev, ino: st.ino, identity: { sha256: createHash('sha256').update('ten bytes!').digest('hex'), size: 10, mode: 0o644, uid: 0, gid: 0 } };
        assert.throws(() => copyVerified(found, fd, found.identity.sha256, 10, 'x', join(dir, 'out')), (e: unknown) => e instanceof FussyError && e.code === 'DELTA_BASE_MISSING' && /changed size/.test(e.message));
      } finally {
        closeSync(fd);
      }
      assert.equal(statSync(join(dir, 'out')).size, 0);
    });

    it("a delta against the factory image (a current directory, no manifest) installs: the device's own files are found by content", async function () {
      const d: Device = { ...dev, target: join(tmp, 'factory-base', 'firmware') };
      await writeTree(join(d.target, 'current'), FW1);
      const r = await packIt('fw-2', FW2, { deltaFrom: [await writeTree(join(tmp, 'build', 'factory-copy', 'fw-1'), FW1)] });
      await installInto(d, r.path);
      assert.equal(readFileSync(join(d.target, 'fw-2/share/data.bin')).length, 256 * 1024);
      assert.deepEqual((await verify({ target: d.target, names: ['fw-2'] })).reports[0]?.findings, []);
    });

    it('a large file rewritten whole is carried whole: its patch is given up once it passes half the file, and no temp file is left', async function () {
      const base = await writeTree(join(tmp, 'build', 'rewritten-base', 'fw-1'), [{ path: 'db/image', content: noise(5, 2 * 1024 * 1024) }]);
      const r = await packIt('fw-2', [{ path: 'db/image', content: noise(6, 2 * 1024 * 1024) }], { deltaFrom: [base] });
      assert.equal(r.patchedFiles, 0);
      assert.equal(r.bases, undefined, 'nothing left out: a full package');
      assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('.fussy-tmp-')), []);
    });

    it('a base directory whose file is not what its manifest says (edited after install) is not patched against: the file is carried whole', async function () {
      const img = noise(4, 2 * 1024 * 1024);
      const installed = await deviceOn('edited-base', [(await packIt('fw-1', [{ path: 'db/image', content: img }])).path]);
      const copy = join(tmp, 'edited-copy', 'fw-1');
      mkdirSync(join(tmp, 'edited-copy'));
      execFileSync('cp', ['-a', join(installed.target, 'fw-1'), copy.replace(/\/fw-1$/, '/')]);
      writeFileSync(join(copy, 'db/image'), Buffer.concat([Buffer.from('prefix'), img]));
      const next = Buffer.from(img);
      next.fill(1, 1000, 2000);
      const r = await packIt('fw-2', [{ path: 'db/image', content: next }], { deltaFrom: [copy] });
      assert.equal(r.patchedFiles, 0);
      await installInto(installed, r.path);
      assert.deepEqual(readFileSync(join(installed.target, 'fw-2/db/image')), next);
    });
  });
});
