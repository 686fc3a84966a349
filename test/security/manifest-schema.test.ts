import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_ENTRIES, manifestMaxBytes, parseManifest, validateManifest } from '../../src/archive/manifest.js';
import { FussyError, type ErrorCode } from '../../src/errors.js';
import { buildManifest } from '../../src/pack/build-manifest.js';
import type { WalkEntry } from '../../src/pack/walk.js';
import { makeDevice, type Device, type RawEntry } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { assertRefusal, manifestOf, manifestPackage, targetBeside } from './crafted.js';

type M = ReturnType<typeof manifestOf>;

/** A manifest as fussy pack writes it: a directory, a file, a symlink and a hard link. */
const RAW: RawEntry[] = [
  { path: 'fw/etc/', type: 'Directory' },
  { path: 'fw/etc/app.conf', data: 'level = 3\n' },
  { path: 'fw/etc/link', type: 'SymbolicLink', linkpath: 'app.conf' },
  { path: 'fw/etc/hard', type: 'Link', linkpath: 'fw/etc/app.conf' },
];
const good = (): M => manifestOf('fw', RAW);
/** Index of each kind of entry in good().entries. */
const DIR = 1;
const FILE = 2;
const LINK = 3;
const HARD = 4;

const refused = (m: unknown, code: ErrorCode, message: RegExp): void => {
  assert.throws(
    () => validateManifest(m, 'fw'),
    (err: unknown) => {
      assert.ok(err instanceof FussyError, String(err));
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
      return true;
    },
  );
};

/** Every field, each way it can be wrong: [name, change, expected message]. */
const TOP: Array<[string, (m: M) => unknown, RegExp]> = [
  ['not an object', () => [], /not a fussy manifest/],
  ['null', () => null, /not a fussy manifest/],
  ['format wrong', (m) => ({ ...m, format: 'tar' }), /not a fussy manifest/],
  ['version missing', (m) => ({ ...m, version: undefined }), /"version" must be a whole number >= 1, not missing/],
  ['version string', (m) => ({ ...m, version: '1' }), /"version" must be a whole number >= 1, not "1"/],
  ['version 0', (m) => ({ ...m, version: 0 }), /"version" must be a whole number >= 1/],
  ['version fraction', (m) => ({ ...m, version: 1.5 }), /"version" must be a whole number >= 1/],
  ['version newer', (m) => ({ ...m, version: 3 }), /format version 3; this fussy reads version 2/],
  ['unknown field', (m) => ({ ...m, minSequnce: 5 }), /manifest field "minSequnce" is not part of manifest format version 2/],
  ['bases in version 1', (m) => ({ ...m, bases: [{ release: 'fw-0' }] }), /"bases" needs format version 2/],
  ['bases empty', (m) => ({ ...m, version: 2, bases: [] }), /"bases" must be a list of 1 to 16 releases/],
  ['bases too many', (m) => ({ ...m, version: 2, bases: Array.from({ length: 17 }, (_, i) => ({ release: `fw-${i}` })) }), /"bases" must be a list of 1 to 16/],
  ['base with another field', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0', path: '/' }] }), /"bases" must list \{"release", "manifest"\} objects/],
  ['base reserved name', (m) => ({ ...m, version: 2, bases: [{ release: 'current' }] }), /current/],
  ['base manifest not a hash', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0', manifest: 'x' }] }), /"manifest" must be 64 lower-case hex digits/],
  ['from without bases', (m) => ({ ...m, entries: m.entries.map((e) => (e.type === 'file' ? { ...e, from: 'base' } : e)) }), /"from" must be "base" or "chunks", in a manifest that names its bases/],
  ['from other value', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0' }], entries: m.entries.map((e) => (e.type === 'file' ? { ...e, from: 'elsewhere' } : e)) }), /"from" must be "base"/],
  ['chunks without base', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0' }], entries: m.entries.map((e) => (e.type === 'file' ? { ...e, from: 'chunks' } : e)) }), /"base" must be the sha256 of the base file, exactly when "from" is "chunks"/],
  ['base without chunks', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0' }], entries: m.entries.map((e) => (e.type === 'file' ? { ...e, from: 'base', base: 'a'.repeat(64), baseSize: 1 } : e)) }), /"base" must be the sha256 of the base file, exactly when "from" is "chunks"/],
  ['chunks without baseSize', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0' }], entries: m.entries.map((e) => (e.type === 'file' ? { ...e, from: 'chunks', base: 'a'.repeat(64) } : e)) }), /"baseSize" must be/],
  ['from on a directory', (m) => ({ ...m, version: 2, bases: [{ release: 'fw-0' }], entries: m.entries.map((e) => (e.type === 'directory' ? { ...e, from: 'base' } : e)) }), /field "from" is not part of a directory entry/],
  ['__proto__ field', () => JSON.parse(JSON.stringify(good()).replace('{', '{"__proto__":{"sequence":1},')), /manifest field "__proto__" is not part/],
  ['release missing', (m) => ({ ...m, release: undefined }), /"release" must be a string, not missing/],
  ['release other', (m) => ({ ...m, release: 'fw-other' }), /names release "fw-other" but the archive holds "fw"/],
  ['created number', (m) => ({ ...m, created: 5 }), /"created" must be a time/],
  ['created long', (m) => ({ ...m, created: 'x'.repeat(65) }), /"created" must be a time/],
  ['sequence missing', (m) => ({ ...m, sequence: undefined }), /"sequence" must be a whole number >= 0 \(fussy pack always writes it\), not missing/],
  ['sequence string', (m) => ({ ...m, sequence: '200' }), /"sequence" must be a whole number >= 0 .* not "200"/],
  ['sequence fraction', (m) => ({ ...m, sequence: 1.5 }), /"sequence" must be a whole number >= 0 .* not 1\.5/],
  ['sequence negative', (m) => ({ ...m, sequence: -1 }), /"sequence" must be a whole number >= 0/],
  ['sequence past 2^53', (m) => ({ ...m, sequence: 2 ** 53 }), /"sequence" must be a whole number >= 0/],
  ['minSequence string', (m) => ({ ...m, minSequence: '5' }), /"minSequence" must be a whole number >= 0, not "5"/],
  ['minSequence fraction', (m) => ({ ...m, minSequence: 0.5 }), /"minSequence" must be a whole number >= 0/],
  ['minSequence null', (m) => ({ ...m, minSequence: null }), /"minSequence" must be a whole number >= 0, not null/],
  ['rollback string', (m) => ({ ...m, rollback: 'yes' }), /"rollback" must be true or false, not "yes"/],
  ['compatible string', (m) => ({ ...m, compatible: 'router' }), /"compatible" must be a non-empty list of device types/],
  ['compatible object', (m) => ({ ...m, compatible: { router: true } }), /"compatible" must be a non-empty list of device types/],
  ['compatible empty', (m) => ({ ...m, compatible: [] }), /"compatible" must be a non-empty list/],
  ['compatible empty name', (m) => ({ ...m, compatible: ['router', ''] }), /"compatible" must be a non-empty list of device types \(non-empty strings\)/],
  ['compatible number', (m) => ({ ...m, compatible: [1] }), /"compatible" must be a non-empty list/],
  ['totalBytes wrong', (m) => ({ ...m, totalBytes: 1000 }), /"totalBytes" is 1000, but its files add up to 10 bytes/],
  ['totalBytes negative', (m) => ({ ...m, totalBytes: -10 }), /"totalBytes" must be a whole number >= 0/],
  ['totalBytes string', (m) => ({ ...m, totalBytes: '10' }), /"totalBytes" must be a whole number >= 0/],
  ['fileCount wrong', (m) => ({ ...m, fileCount: 5 }), /"fileCount" is 5, but it lists 1 files/],
  ['fileCount fraction', (m) => ({ ...m, fileCount: 1.5 }), /"fileCount" must be a whole number >= 0/],
  ['entries missing', (m) => ({ ...m, entries: undefined }), /"entries" must be a list, not missing/],
  ['entries object', (m) => ({ ...m, entries: {} }), /"entries" must be a list/],
];

/** Entry changes: [name, entry index, change of that entry, expected message]. */
const ENTRY: Array<[string, number, (e: Record<string, unknown>) => unknown, ErrorCode, RegExp]> = [
  ['null', FILE, () => null, 'BAD_ARCHIVE', /manifest entry #2 must be an object, not null/],
  ['array', FILE, () => [], 'BAD_ARCHIVE', /manifest entry #2 must be an object/],
  ['number', FILE, () => 7, 'BAD_ARCHIVE', /manifest entry #2 must be an object, not 7/],
  ['path missing', FILE, (e) => ({ ...e, path: undefined }), 'BAD_ARCHIVE', /manifest entry #2: "path" must be a string, not missing/],
  ['path number', FILE, (e) => ({ ...e, path: 5 }), 'BAD_ARCHIVE', /"path" must be a string/],
  ['path dot-dot', FILE, (e) => ({ ...e, path: 'etc/../../x' }), 'UNSAFE_PATH', /manifest entry "fw\/etc\/\.\.\/\.\.\/x" contains a "\.\." component/],
  ['path absolute', FILE, (e) => ({ ...e, path: '/etc/passwd' }), 'UNSAFE_PATH', /contains an empty or "\." component/],
  ['path NUL', FILE, (e) => ({ ...e, path: 'etc/a\0b' }), 'UNSAFE_PATH', /contains a NUL byte/],
  ['path dot slash', FILE, (e) => ({ ...e, path: './etc/x' }), 'UNSAFE_PATH', /contains an empty or "\." component/],
  ['path trailing slash', DIR, (e) => ({ ...e, path: 'etc/' }), 'BAD_ARCHIVE', /"path" must be a plain relative path as fussy writes it/],
  ['path empty', FILE, (e) => ({ ...e, path: '' }), 'BAD_ARCHIVE', /"path" must be a plain relative path/],
  ['path double slash', FILE, (e) => ({ ...e, path: 'etc//x' }), 'UNSAFE_PATH', /contains an empty or "\." component/],
  ['path too deep', FILE, (e) => ({ ...e, path: 'd/'.repeat(200) + 'x' }), 'UNSAFE_PATH', /deeper than 128 levels/],
  ['path too long', FILE, (e) => ({ ...e, path: 'x'.repeat(4000) }), 'UNSAFE_PATH', /longer than 3072 bytes/],
  ['path duplicate', LINK, (e) => ({ ...e, path: 'etc/app.conf' }), 'BAD_ARCHIVE', /manifest entry "etc\/app\.conf" is listed twice/],
  ['parent missing', FILE, (e) => ({ ...e, path: 'opt/app.conf' }), 'BAD_ARCHIVE', /"opt\/app\.conf": its parent "opt" is not a directory listed before it/],
  ['parent is a file', LINK, (e) => ({ ...e, path: 'etc/app.conf/x' }), 'BAD_ARCHIVE', /its parent "etc\/app\.conf" is not a directory/],
  ['root not a directory', 0, (e) => ({ ...e, type: 'file', size: 0, sha256: '0'.repeat(64) }), 'BAD_ARCHIVE', /manifest entry "\.": "type" must be directory \(it is the release directory\)/],
  ['type unknown', FILE, (e) => ({ ...e, type: 'fifo' }), 'BAD_ARCHIVE', /"etc\/app\.conf": "type" must be directory, file, symlink or hardlink, not "fifo"/],
  ['field unknown', FILE, (e) => ({ ...e, owner: 'root' }), 'BAD_ARCHIVE', /"etc\/app\.conf": field "owner" is not part of a file entry/],
  ['directory with size', DIR, (e) => ({ ...e, size: 5 }), 'BAD_ARCHIVE', /field "size" is not part of a directory entry/],
  ['file with target', FILE, (e) => ({ ...e, target: 'x' }), 'BAD_ARCHIVE', /field "target" is not part of a file entry/],
  ['mode negative', FILE, (e) => ({ ...e, mode: -1 }), 'BAD_ARCHIVE', /"mode" must be permission bits, a whole number from 0 to 4095 \(0o7777\), not -1/],
  ['mode file type bits', FILE, (e) => ({ ...e, mode: 0o100644 }), 'BAD_ARCHIVE', /"mode" must be permission bits/],
  ['mode fraction', FILE, (e) => ({ ...e, mode: 420.5 }), 'BAD_ARCHIVE', /"mode" must be permission bits/],
  ['mode string', FILE, (e) => ({ ...e, mode: '0644' }), 'BAD_ARCHIVE', /"mode" must be permission bits/],
  ['uid negative', FILE, (e) => ({ ...e, uid: -1 }), 'BAD_ARCHIVE', /"uid" must be a whole number from 0 to 4294967294, not -1/],
  ['uid (uid_t)-1', FILE, (e) => ({ ...e, uid: 0xffffffff }), 'BAD_ARCHIVE', /"uid" must be a whole number from 0 to 4294967294/],
  ['uid fraction', FILE, (e) => ({ ...e, uid: 0.5 }), 'BAD_ARCHIVE', /"uid" must be/],
  ['gid missing', FILE, (e) => ({ ...e, gid: undefined }), 'BAD_ARCHIVE', /"gid" must be a whole number from 0/],
  ['mtime string', FILE, (e) => ({ ...e, mtime: 'yesterday' }), 'BAD_ARCHIVE', /"mtime" must be whole seconds since the epoch/],
  ['size missing', FILE, (e) => ({ ...e, size: undefined }), 'BAD_ARCHIVE', /"etc\/app\.conf": "size" must be a whole number >= 0, not missing/],
  ['size negative', FILE, (e) => ({ ...e, size: -4096 }), 'BAD_ARCHIVE', /"size" must be a whole number >= 0, not -4096/],
  ['size fraction', FILE, (e) => ({ ...e, size: 1.5 }), 'BAD_ARCHIVE', /"size" must be a whole number >= 0/],
  ['size string', FILE, (e) => ({ ...e, size: '10' }), 'BAD_ARCHIVE', /"size" must be a whole number >= 0/],
  ['sha256 upper case', FILE, (e) => ({ ...e, sha256: (e.sha256 as string).toUpperCase() }), 'BAD_ARCHIVE', /"sha256" must be 64 lower-case hex digits/],
  ['sha256 short', FILE, (e) => ({ ...e, sha256: 'abc' }), 'BAD_ARCHIVE', /"sha256" must be 64 lower-case hex digits/],
  ['sha256 missing', FILE, (e) => ({ ...e, sha256: undefined }), 'BAD_ARCHIVE', /"sha256" must be 64/],
  ['symlink target missing', LINK, (e) => ({ ...e, target: undefined }), 'BAD_ARCHIVE', /"etc\/link": "target" must be a non-empty link target/],
  ['symlink target empty', LINK, (e) => ({ ...e, target: '' }), 'BAD_ARCHIVE', /"target" must be a non-empty link target/],
  ['symlink target NUL', LINK, (e) => ({ ...e, target: 'a\0b' }), 'BAD_ARCHIVE', /"target" must be a non-empty link target without NUL bytes/],
  ['symlink target too long', LINK, (e) => ({ ...e, target: 'x'.repeat(4096) }), 'BAD_ARCHIVE', /at most 4095 bytes/],
  ['hard link target missing', HARD, (e) => ({ ...e, target: undefined }), 'BAD_ARCHIVE', /"etc\/hard": "target" must be the path of a file listed before it/],
  ['hard link to a directory', HARD, (e) => ({ ...e, target: 'etc' }), 'BAD_ARCHIVE', /"target" must be the path of a file listed before it, not "etc"/],
  ['hard link to a later or unknown file', HARD, (e) => ({ ...e, target: 'etc/zzz' }), 'BAD_ARCHIVE', /"target" must be the path of a file listed before it/],
  ['hard link escaping', HARD, (e) => ({ ...e, target: '../../etc/shadow' }), 'BAD_ARCHIVE', /"target" must be the path of a file listed before it/],
];

describe('manifest schema: every field a manifest can get wrong is refused by name (validateManifest)', function () {
  it('a manifest as fussy pack writes it passes, and comes back with its entries by path', function () {
    const { manifest, byPath } = validateManifest(good(), 'fw');
    assert.equal(manifest.release, 'fw');
    assert.deepEqual([...byPath.keys()], ['.', 'etc', 'etc/app.conf', 'etc/link', 'etc/hard']);
    validateManifest({ ...good(), minSequence: 0, rollback: true, compatible: ['router-a', 'router-b'] }, 'fw');
  });

  for (const [name, change, message] of TOP) {
    it(`top level: ${name}`, function () {
      refused(change(good()), 'BAD_ARCHIVE', message);
    });
  }

  for (const [name, index, change, code, message] of ENTRY) {
    it(`entry: ${name}`, function () {
      const m = good();
      m.entries[index] = change(m.entries[index] as Record<string, unknown>) as Record<string, unknown>;
      // Keep the totals right, so that the entry itself is what is refused.
      const files = m.entries.filter((e) => (e as { type?: unknown } | null)?.type === 'file');
      m.fileCount = files.length;
      m.totalBytes = files.reduce((n: number, e) => n + (Number.isSafeInteger(e.size) && (e.size as number) >= 0 ? (e.size as number) : 0), 0);
      refused(m, code, message);
    });
  }

  it(`entries: more than ${MAX_ENTRIES} are refused`, function () {
    const m = good();
    m.entries = [m.entries[0] as Record<string, unknown>, ...Array.from({ length: MAX_ENTRIES }, (_, i) => ({ path: `d${i}`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 }))];
    m.fileCount = 0;
    m.totalBytes = 0;
    refused(m, 'BAD_ARCHIVE', new RegExp(`lists ${MAX_ENTRIES + 1} entries, more than the ${MAX_ENTRIES} fussy installs`));
  });

  describe('parseManifest: the bytes are bounded before JSON.parse builds anything', function () {
    const text = (s: string): Buffer => Buffer.from(s);
    const shape: Array<[string, string, RegExp]> = [
      ['nesting deeper than 3', '{"entries":[[[]]]}', /nests objects and arrays deeper than 3 levels/],
      ['an object with 17 members', `{${Array.from({ length: 17 }, (_, i) => `"k${i}":0`).join(',')}}`, /an object with more than 16 members/],
      ['more entries than the limit', `{"entries":[${'{},'.repeat(MAX_ENTRIES)}{}]}`, new RegExp(`an array with more than ${MAX_ENTRIES} elements`)],
      ['more values than the limit', `{"entries":[${'[1,2,3,4,5,6,7,8,9,10,11,12,13],'.repeat(MAX_ENTRIES)}[]]}`, /holds more than \d+ values/],
      ['not JSON', '{"format":', /not valid JSON/],
      ['braces inside strings do not count', `{"created":"${'['.repeat(100)}","format":"x"}`, /not a fussy manifest/],
      ['escaped quotes inside strings', `{"created":"\\"[[[[","format":"x"}`, /not a fussy manifest/],
    ];
    for (const [name, s, message] of shape) {
      it(name, function () {
        assert.throws(() => parseManifest(text(s), 'fw'), (err: unknown) => err instanceof FussyError && err.code === 'BAD_ARCHIVE' && message.test(err.message));
      });
    }
    it(`more than ${manifestMaxBytes()} bytes, or than a lower max-entries allows`, function () {
      const max = manifestMaxBytes();
      assert.throws(() => parseManifest(Buffer.alloc(max + 1, 0x20), 'fw'), new RegExp(`is ${max + 1} bytes, more than the ${max} fussy reads`));
      assert.throws(() => parseManifest(Buffer.alloc(manifestMaxBytes(1000) + 1, 0x20), 'fw', 1000), /more than the \d+ fussy reads/);
    });
  });

  describe('pack refuses what install would refuse (same rule, exit 21)', function () {
    const dir = (path: string): WalkEntry => ({ path, abs: `/src/${path}`, type: 'directory', stat: { mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 } }) as unknown as WalkEntry;
    it('an empty device type', function () {
      assert.throws(() => buildManifest({ release: 'fw', walk: [dir('.')], digests: new Map(), date: new Date(0), compatible: [''] }), /"compatible" must be a non-empty list of device types/);
    });
    it(`a tree of more than ${MAX_ENTRIES} entries`, function () {
      const walk = [dir('.'), ...Array.from({ length: MAX_ENTRIES }, (_, i) => dir(`d${i}`))];
      assert.throws(() => buildManifest({ release: 'fw', walk, digests: new Map(), date: new Date(0) }), (err: unknown) => err instanceof FussyError && err.exitCode === 21 && new RegExp(`more than the ${MAX_ENTRIES} fussy installs`).test(err.message));
    });
  });
});

/**
 * The same checks on install: signed but wrong (a signer's mistake, or a signing key used on
 * something it should not have signed) and unsigned (a forged signature, refused the same way
 * before the verdict). Every refusal names the field, is in the history, and changes nothing.
 */
describe('security: manifests that do not match the schema are refused before anything is built from them', function () {
  let dev: Device;
  let n = 0;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  const files: RawEntry[] = [{ path: 'fw/etc/', type: 'Directory' }, { path: 'fw/etc/version', data: 'v\n' }];
  const cases: Array<[string, (m: M) => unknown, ErrorCode, RegExp]> = [
    ['manifest-null-entry', (m) => ({ ...m, entries: [...m.entries, null] }), 'BAD_ARCHIVE', /manifest entry #\d must be an object, not null/],
    ['manifest-negative-size', (m) => ({ ...m, entries: m.entries.map((e) => (e.path === 'etc/version' ? { ...e, size: -4096 } : e)) }), 'BAD_ARCHIVE', /"etc\/version": "size" must be a whole number >= 0, not -4096/],
    ['manifest-duplicate-path', (m) => ({ ...m, entries: [...m.entries, m.entries[2]] }), 'BAD_ARCHIVE', /manifest entry "etc\/version" is listed twice/],
    ['sequence-missing', (m) => ({ ...m, sequence: undefined }), 'BAD_ARCHIVE', /manifest field "sequence" must be a whole number >= 0 \(fussy pack always writes it\), not missing/],
    ['sequence-string', (m) => ({ ...m, sequence: '9999999999999' }), 'BAD_ARCHIVE', /manifest field "sequence" must be a whole number >= 0 .*, not "9999999999999"/],
    ['sequence-fraction', (m) => ({ ...m, sequence: 300.5 }), 'BAD_ARCHIVE', /manifest field "sequence" must be a whole number >= 0 .*, not 300\.5/],
    ['compatible-substring', (m) => ({ ...m, compatible: 'xyz-router-pro' }), 'BAD_ARCHIVE', /manifest field "compatible" must be a non-empty list of device types .*, not "xyz-router-pro"/],
    ['compatible-object', (m) => ({ ...m, compatible: { router: true } }), 'BAD_ARCHIVE', /manifest field "compatible" must be a non-empty list of device types .*, not \{"router":true\}/],
  ];

  for (const [name, mutate, code, message] of cases) {
    it(`${name}: refused by name, signed or not; the target and state.json unchanged`, async function () {
      // A device that ran sequence 200 and has type "router": what these manifests try to get around.
      const d = await targetBeside(dev, `dev-${name}`, [await manifestPackage(dev, join(dev.dir, `${++n}-base.gpg`), 'fw-base', [], { mutate: (m) => ({ ...m, sequence: 200 }) })]);
      const state = await readFile(join(d.target, '.fussy', 'state.json'), 'utf8');
      for (const forged of [false, true]) {
        const pkg = await manifestPackage(dev, join(dev.dir, `${++n}-${name}.gpg`), 'fw', files, { mutate, forged });
        await assertRefusal(d, pkg, code, message, { deviceType: 'router' });
      }
      assert.equal(await readFile(join(d.target, '.fussy', 'state.json'), 'utf8'), state, 'no sequence was recorded');
    });
  }

  it('compatible-substring: a well-formed list is matched exactly ("xyz-router-pro" is not "router")', async function () {
    const d = await targetBeside(dev, 'dev-exact');
    const pkg = await manifestPackage(dev, join(dev.dir, `${++n}-exact.gpg`), 'fw', files, { mutate: (m) => ({ ...m, compatible: ['xyz-router-pro'] }) });
    await assertRefusal(d, pkg, 'INCOMPATIBLE', /fw is for device types xyz-router-pro, not router/, { deviceType: 'router' });
    assert.equal(existsSync(join(d.target, 'fw')), false);
  });
});
