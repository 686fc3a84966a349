import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { indexMember, MEMBER_DATA_BYTES } from '../../src/archive/gzip-member.js';
import { MAX_ENTRIES, manifestMaxBytes } from '../../src/archive/manifest.js';
import { readHistory } from '../../src/store/history.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { installInto, makeDevice, rawTar, signPayload, targetState, type Device, type RawEntry } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, writeTree } from '../helpers/tree.js';
import { assertRefusal, forge, fussyGzip, manifestOf, manifestPackage, pad, quickGzip, targetBeside } from './crafted.js';
import { reserveLeaving, smallFs, targetOn } from './small-fs.js';

const RSS_CHILD = fileURLToPath(new URL('./rss-child.js', import.meta.url));
/** The bound for any input: peak RSS of the whole install. */
const MAX_RSS_MB = 200;

/**
 * Unsigned input before its signature is checked (an uploader with no key forges the signature;
 * only the verdict at the end of the stream refuses it): every resource it can make install
 * spend is bounded, and every failure is a clean refusal in the history with nothing left behind.
 */
describe('security: unsigned packages cannot crash install, exhaust memory or fill the disk', function () {
  let dev: Device;
  let n = 0;
  const file = (name: string): string => join(dev.dir, `${++n}-${name}.gpg`);
  const sign = async (name: string, gz: Buffer, forged = false): Promise<string> => {
    const f = await signPayload(file(name), gz, { signingKeys: [dev.signingKey], gzip: false });
    return forged ? forge(f) : f;
  };

  /** The device's keyring with `max-entries = N` in its policy (a device with little memory). */
  const limitedKeyring = async (name: string, n: number): Promise<string> => {
    const ring = join(dev.dir, `keys-${name}`);
    await execa('cp', ['-a', dev.keyring, ring]);
    await writeFile(join(ring, 'policy'), `max-entries = ${n}\n`);
    return ring;
  };
  const LIMIT = 20_000;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    const src = await writeTree(join(dev.dir, 'build', 'fw-good'), [{ path: 'etc/version', content: 'good\n' }]);
    await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'good.gpg') });
    await installInto(dev, join(dev.dir, 'good.gpg')); // a release is current: the attacks must leave it alone
  });

  describe('gzip members (parallel-gunzip.ts)', function () {
    const data = randomBytes(3 * MEMBER_DATA_BYTES);
    const entries: RawEntry[] = [{ path: 'fw-claim/', type: 'Directory' }, { path: 'fw-claim/blob.bin', data }];

    it('oversized-gzip-member-claim: a first member claiming 4 GiB (FY field) is streamed, not buffered: unsigned it is refused for its signature, signed it installs exactly', async function () {
      const gz = fussyGzip(rawTar(entries));
      gz.writeUInt32LE(0xfffffff0, 16); // the first member's FY length
      // A device that has recorded no sequence: this package without a manifest is allowed to stream to its end.
      const d = await targetBeside(dev, 'dev-claim');
      await assertRefusal(d, await sign('claim-forged', gz, true), 'BAD_SIGNATURE', /failed verification|signature check failed/);
      const r = await installInto(d, await sign('claim-signed', gz));
      assert.ok((await readFile(join(r.path, 'blob.bin'))).equals(data));
    });

    /** A member bigger than fussy writes (3 MiB stored), corrupt, queued behind a good one, more members after it. */
    const failing = (forged: boolean): Buffer => {
      const tar = rawTar([{ path: 'fw-bad/', type: 'Directory' }, { path: 'fw-bad/big.bin', data: randomBytes(5 * MEMBER_DATA_BYTES) }, ...(forged ? [pad('fw-bad')] : [])]);
      const big = indexMember(gzipSync(tar.subarray(MEMBER_DATA_BYTES, 4 * MEMBER_DATA_BYTES), { level: 0 }));
      big[big.length >> 1] = (big[big.length >> 1] as number) ^ 0xff;
      return Buffer.concat([fussyGzip(tar.subarray(0, MEMBER_DATA_BYTES)), big, fussyGzip(tar.subarray(4 * MEMBER_DATA_BYTES))]);
    };

    for (const forged of [false, true]) {
      it(`failing-large-member (${forged ? 'unsigned' : 'signed'}): fussy install exits ${forged ? 20 : 21}, records the refusal, leaves no staging and releases the lock`, async function () {
        const d = await targetBeside(dev, `dev-failing-${forged}`);
        const pkg = await sign(`failing-${forged}`, failing(forged), forged);
        const before = await targetState(d.target);
        const r = await cli('fussy', ['install', pkg, '-k', d.keyring, '-t', d.target]);
        // A gzip stream that breaks after the manifest is told only after the verdict: unsigned, the signature's refusal.
        assert.equal(r.exitCode, forged ? 20 : 21, r.stderr);
        assert.match(r.stderr, forged ? /failed verification|signature check failed/ : /not valid gzip/);
        assert.deepEqual(await targetState(d.target), before);
        assert.deepEqual((await readdir(join(d.target, '.fussy'))).filter((x) => x.startsWith('staging-')), []);
        const last = (await readHistory(join(d.target, '.fussy'))).records.at(-1);
        assert.equal(last?.result, 'refused');
        assert.equal(last?.error?.code, forged ? 'BAD_SIGNATURE' : 'BAD_ARCHIVE');
        // The lock was released: the next install runs at once.
        assert.equal((await cli('fussy', ['install', join(dev.dir, 'good.gpg'), '-k', d.keyring, '-t', d.target])).exitCode, 0);
      });
    }
  });

  describe('manifest-entry-flood: what the manifest can make install build is bounded before it is parsed', function () {
    /** Install in a process of its own; its peak RSS. */
    const measured = async (pkg: string, name: string, keyring?: string): Promise<{ code: string; message: string; mb: number }> => {
      const d = await targetBeside(dev, `dev-flood-${name}`);
      const r = await execa(process.execPath, [RSS_CHILD, pkg, keyring ?? d.keyring, d.target]);
      const out = JSON.parse(String(r.stdout)) as { code: string; message: string; maxRssKb: number };
      const mb = out.maxRssKb / 1024;
      process.stderr.write(`      ${name}: ${out.code}, peak RSS ${mb.toFixed(0)} MB\n`);
      return { ...out, mb };
    };
    const head = '{"format":"fussy-manifest","version":1,"release":"fw-flood","created":"x","sequence":1,"totalBytes":0,"fileCount":0,';
    const floods: Array<[string, string, RegExp]> = [
      // ~2.8 million empty objects: ~300 MB once parsed.
      ['empty-objects', `${head}"entries":[${'{},'.repeat(2_790_000)}{}]}`, /an array with more than \d+ elements/],
      // One object with 600,000 members: ~200 bytes each once parsed.
      ['many-members', `${head}"entries":[],${Array.from({ length: 600_000 }, (_, i) => `"k${i}":0`).join(',')}}`, /an object with more than 16 members/],
      // 4 million levels of arrays.
      ['deep-nesting', `${head}"entries":${'['.repeat(4_000_000)}${']'.repeat(4_000_000)}}`, /deeper than 3 levels/],
      // A single string as long as the default size limit allows.
      ['long-string', `{"format":"fussy-manifest","version":1,"release":"fw-flood","created":"${'x'.repeat(manifestMaxBytes() - 256)}","sequence":1,"totalBytes":0,"fileCount":0,"entries":[]}`, /has a string of more than \d+ bytes/],
    ];
    for (const [name, text, message] of floods) {
      it(`manifest-entry-flood (${name}, unsigned): refused before it is parsed; peak RSS under ${MAX_RSS_MB} MB`, async function () {
        assert.ok(text.length <= manifestMaxBytes(), `${text.length} bytes: within the manifest size limit, so the shape check is what refuses it`);
        const pkg = await manifestPackage(dev, file(`flood-${name}`), 'fw-flood', [], { text, forged: true });
        const r = await measured(pkg, name);
        assert.equal(r.code, 'BAD_ARCHIVE', r.message);
        assert.match(r.message, message);
        assert.ok(r.mb < MAX_RSS_MB, `peak RSS ${r.mb} MB`);
      });
    }


    it(`manifest-entry-flood (the largest valid manifest with "max-entries = ${LIMIT}"): parsed, validated, files created ahead, then refused; peak RSS under ${MAX_RSS_MB} MB`, async function () {
      const entries: RawEntry[] = ['usr', 'usr/lib', 'usr/lib/firmware'].map((p) => ({ path: `fw-max/${p}/`, type: 'Directory' }));
      for (let i = 0; entries.length < LIMIT - 1; i++) {
        entries.push({ path: `fw-max/usr/lib/firmware/pkg${String(i).padStart(4, '0')}/`, type: 'Directory' });
        for (let j = 0; j < 99 && entries.length < LIMIT - 1; j++) entries.push({ path: `fw-max/usr/lib/firmware/pkg${String(i).padStart(4, '0')}/module_${j}.bin`, data: `${i}.${j}\n` });
      }
      const m = manifestOf('fw-max', entries);
      assert.equal(m.entries.length, LIMIT);
      // Signed, so that the only refusal is the missing files (an unsigned copy does the same work first).
      const pkg = await manifestPackage(dev, file('flood-max'), 'fw-max', [], { text: JSON.stringify(m) });
      const r = await measured(pkg, 'max-valid', await limitedKeyring('max-valid', LIMIT));
      assert.equal(r.code, 'BAD_ARCHIVE', r.message);
      assert.match(r.message, /is in the manifest but not in the archive/);
      assert.ok(r.mb < MAX_RSS_MB, `peak RSS ${r.mb} MB`);
    });

    it(`manifest-entry-flood: an archive of more entries than max-entries without a manifest is refused at the limit (the default, ${MAX_ENTRIES}, is the ceiling)`, async function () {
      const entries: RawEntry[] = [{ path: 'fw-many/', type: 'Directory' }];
      for (let i = 0; i <= LIMIT; i++) entries.push({ path: `fw-many/l${i}`, type: 'SymbolicLink', linkpath: 'x' });
      const pkg = await sign('many', quickGzip(rawTar(entries)));
      const d = { ...(await targetBeside(dev, 'dev-many')), keyring: await limitedKeyring('many', LIMIT) };
      await assertRefusal(d, pkg, 'BAD_ARCHIVE', new RegExp(`more than ${LIMIT} files, directories and links`));
  });
  });

  describe('name-flood: the names install keeps until the end are bounded too', function () {
    it('name-flood: 600 entries 12 directories deep in 250-character names (each name and every parent it implies are kept) are refused at the bound', async function () {
      const entries: RawEntry[] = [{ path: 'fw-names/', type: 'Directory' }];
      const deep = Array.from({ length: 11 }, (_, i) => String(i).padEnd(250, 'b')).join('/');
      for (let i = 0; i < 600; i++) entries.push({ path: `fw-names/${String(i).padEnd(250, 'a')}/${deep}/l`, type: 'SymbolicLink', linkpath: 'x' });
      const pkg = await sign('names', quickGzip(rawTar(entries)));
      const d = { ...(await targetBeside(dev, 'dev-names')), keyring: await limitedKeyring('names', LIMIT) };
      await assertRefusal(d, pkg, 'BAD_ARCHIVE', new RegExp(`the names in the archive add up to more than ${manifestMaxBytes(LIMIT)} characters`));
    });
  });

  describe('disk: every write is checked against the free space less the reserve (a tmpfs of its own)', function () {
    let fs: Awaited<ReturnType<typeof smallFs>>;

    before(async function () {
      fs = await smallFs(64 * 1024 * 1024);
      if (fs === undefined) this.skip(); // not root: no tmpfs to be had
    });
    after(() => fs?.unmount());

    it('disk-fill-with-manifest (size-only match): files the size of a factory file (a release without a manifest) count as bytes to write', async function () {
      const d = await targetOn(dev, (fs as { dir: string }).dir, 'size-only');
      const blobs = [0, 1, 2, 3].map(() => randomBytes(2 * MEMBER_DATA_BYTES));
      for (const [i, b] of blobs.entries()) await writeFile(join(d.target, 'current', `blob${i}`), b, { flag: 'wx', mode: 0o644 });
      // Same size, mode and owner as the factory blobs; different content: 8 MiB to write, 4 MiB allowed.
      const entries: RawEntry[] = blobs.map((_, i) => ({ path: `fw-size/blob${i}`, data: randomBytes(2 * MEMBER_DATA_BYTES) }));
      for (const forged of [false, true]) {
        const pkg = await manifestPackage(dev, file(`size-only-${forged}`), 'fw-size', entries, { forged });
        // Unsigned, it is read to its end and refused for its signature (the space check comes after the manifest).
        if (forged) await assertRefusal(d, pkg, 'BAD_SIGNATURE', /failed verification|signature check failed/, { reserveBytes: await reserveLeaving(d.target, 4 * MEMBER_DATA_BYTES) });
        else await assertRefusal(d, pkg, 'NO_SPACE', /fw-size needs [\d.]+ (B|KiB|MiB) in .* \(after sharing identical files\)/, { reserveBytes: await reserveLeaving(d.target, 4 * MEMBER_DATA_BYTES) });
      }
    });

    it('disk-fill-with-manifest (claimed content edited in place): the space check is an estimate; the write itself is refused at the bound', async function () {
      const d = await targetOn(dev, (fs as { dir: string }).dir, 'edited');
      const big = randomBytes(6 * MEMBER_DATA_BYTES);
      // fw-e1 also holds the padding an unsigned fw-e2 ends with: claimed, so it costs fw-e2 no space.
      const v1 = await manifestPackage(dev, file('edited-v1'), 'fw-e1', [{ path: 'fw-e1/big.bin', data: big }, pad('fw-e1')]);
      const r1 = await installInto(d, v1);
      // A hook or a person edits the retained copy in place: same size, mode and owner, other content.
      const fh = await open(join(r1.path, 'big.bin'), 'r+');
      await fh.write(Buffer.from('edited'), 0, 6, 0);
      await fh.close();
      // fw-e2 ships the original content, which fw-e1's manifest claims: the estimate counts 0 bytes for it.
      for (const forged of [false, true]) {
        const v2 = await manifestPackage(dev, file(`edited-v2-${forged}`), 'fw-e2', [{ path: 'fw-e2/big.bin', data: big }], { forged });
        // Unsigned, it gets the signature's refusal: after the manifest, what the device has is told only to a good signature.
        if (forged) await assertRefusal(d, v2, 'BAD_SIGNATURE', /failed verification|signature check failed/, { reserveBytes: await reserveLeaving(d.target, 4 * MEMBER_DATA_BYTES) });
        else await assertRefusal(d, v2, 'NO_SPACE', /writing "big\.bin" \([\d.]+ (B|KiB|MiB)\) would pass the [\d.]+ (B|KiB|MiB) that may be written/, { reserveBytes: await reserveLeaving(d.target, 4 * MEMBER_DATA_BYTES) });
      }
    });

    it('disk-fill-without-manifest: small files and directories count in blocks, not bytes', async function () {
      const d = await targetOn(dev, (fs as { dir: string }).dir, 'blocks');
      // 1,500 one-byte files: 1,500 bytes, but 6 MiB of blocks; 1,500 directories: 6 MiB more.
      const files: RawEntry[] = [{ path: 'fw-blocks/', type: 'Directory' }, ...Array.from({ length: 1500 }, (_, i) => ({ path: `fw-blocks/f${i}`, data: 'x' }))];
      const dirs: RawEntry[] = [{ path: 'fw-dirs/', type: 'Directory' }, ...Array.from({ length: 1500 }, (_, i) => ({ path: `fw-dirs/d${i}/`, type: 'Directory' as const }))];
      for (const [name, entries] of [['blocks', files], ['dirs', dirs]] as const) {
        for (const forged of [false, true]) {
          const pkg = await sign(`${name}-${forged}`, quickGzip(rawTar([...entries, ...(forged ? [pad(entries[0]?.path.slice(0, -1) ?? '')] : [])])), forged);
          // A first file makes it a package without a manifest, whose refusals wait for the signature;
          // directories alone meet the free-space bound first, which every package is held to.
          if (forged && name === 'blocks') await assertRefusal(d, pkg, 'BAD_SIGNATURE', /failed verification|signature check failed/, { reserveBytes: await reserveLeaving(d.target, 4 * MEMBER_DATA_BYTES) });
          else await assertRefusal(d, pkg, 'NO_SPACE', /not enough free space for the package: writing ".*" \([\d.]+ (B|KiB|MiB)\) would pass the [\d.]+ (B|KiB|MiB) that/, { reserveBytes: await reserveLeaving(d.target, 4 * MEMBER_DATA_BYTES) });
        }
      }
    });

    it('file-before-manifest: a package without a manifest meets the policy before its first file is written (downgrade protection applies to it)', async function () {
      const d = await targetOn(dev, (fs as { dir: string }).dir, 'legacy');
      // 2 MiB that dedup could share lets the package inflate past its first chunk (the inflate bound).
      await installInto(d, await manifestPackage(dev, file('seq'), 'fw-seq', [{ path: 'fw-seq/a', data: randomBytes(2 * MEMBER_DATA_BYTES) }], { mutate: (m) => ({ ...m, sequence: 100 }) }));
      const legacy = rawTar([{ path: 'fw-old/', type: 'Directory' }, { path: 'fw-old/big.bin', data: randomBytes(MEMBER_DATA_BYTES) }]);
      for (const forged of [false, true]) {
        const pkg = await sign(`legacy-${forged}`, quickGzip(forged ? rawTar([{ path: 'fw-old/', type: 'Directory' }, { path: 'fw-old/big.bin', data: randomBytes(MEMBER_DATA_BYTES) }, pad('fw-old')]) : legacy), forged);
        // 64 KiB may be written: enough for directories, not for big.bin. Refused for the policy, not for space: it came first.
        // Unsigned, nothing is inflated or written after the refusal; the rest is read for the verdict.
        if (forged) await assertRefusal(d, pkg, 'BAD_SIGNATURE', /failed verification|signature check failed/, { reserveBytes: await reserveLeaving(d.target, 64 * 1024) });
        else await assertRefusal(d, pkg, 'DOWNGRADE', /has no fussy manifest, so no sequence, and this device already ran sequence 100/, { reserveBytes: await reserveLeaving(d.target, 64 * 1024) });
      }
      const r = await installInto(d, await sign('legacy-allowed', quickGzip(legacy)), { allowDowngrade: true });
      assert.equal(r.release, 'fw-old');
    });
  });

  describe('file-before-manifest: the manifest is trusted only as the first entry', function () {
    it('file-before-manifest: a file placed before the manifest makes the manifest untrusted and the package refused', async function () {
      const d = await targetBeside(dev, 'dev-late'); // no sequence recorded: a package without a manifest may start
      for (const forged of [false, true]) {
        const m = manifestOf('fw-late', [{ path: 'fw-late/a', data: 'a' }]);
        const entries: RawEntry[] = [{ path: 'fw-late/evil', data: 'not in the manifest' }, { path: 'fw-late/.fussy-manifest.json', data: JSON.stringify(m) }, { path: 'fw-late/a', data: 'a' }, ...(forged ? [pad('fw-late')] : [])];
        // A file first makes it a package without a manifest, whose refusals wait for the signature.
        if (forged) await assertRefusal(d, await sign(`late-${forged}`, quickGzip(rawTar(entries)), forged), 'BAD_SIGNATURE', /failed verification|signature check failed/);
        else await assertRefusal(d, await sign(`late-${forged}`, quickGzip(rawTar(entries)), forged), 'UNSAFE_PATH', /"fw-late\/\.fussy-manifest\.json" is not the first entry/);
      }
    });

    it('file-before-manifest: with legacy = refuse, an archive holding only its directory is refused too (the decision is made at its end)', async function () {
      const keyring = join(dev.dir, 'keyring-strict');
      await execa('cp', ['-r', dev.keyring, keyring]);
      await execa('sh', ['-c', `printf 'legacy = refuse\\n' > ${keyring}/policy`]);
      const d = { ...(await targetBeside(dev, 'dev-strict')), keyring };
      const pkg = await sign('dirs-only', quickGzip(rawTar([{ path: 'fw-dirs/', type: 'Directory' }])));
      await assertRefusal(d, pkg, 'BAD_ARCHIVE', /no fussy manifest .* legacy = refuse/);
      assert.deepEqual((await snapshotTree(d.target)).filter((x) => x.path.startsWith('fw-dirs')), []);
    });
  });
});
