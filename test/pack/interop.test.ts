import assert from 'node:assert/strict';
import { link, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { keygen } from '../../src/keyring/keygen.js';
import { pack } from '../../src/pack/pack.js';
import { MANIFEST_NAME, type Manifest } from '../../src/archive/manifest.js';
import { fingerprintOf, gpgGenKey, gpgHome, statusTokens, type GpgHome } from '../helpers/gpg.js';
import { signingKey } from '../helpers/keys.js';
import { makeTmp } from '../helpers/tmp.js';
import { MTIME, sampleFirmware, snapshotTree, writeTree } from '../helpers/tree.js';

describe('pack interop: what fussy packs, GnuPG and GNU tar read', function () {
  let dir: string;
  let g: GpgHome;
  let signer: Awaited<ReturnType<typeof signingKey>>;
  let deviceFpr: string;
  let source: string;

  before(async function () {
    dir = await makeTmp();
    g = await gpgHome(dir);
    deviceFpr = await gpgGenKey(g, 'Device One <device1@example.com>');
    signer = await signingKey(dir);
    const imp = await g.gpg(['--import', signer.publicKeyFile]);
    assert.equal(imp.exitCode, 0, imp.stderr);
    source = await writeTree(join(dir, 'src', 'firmware-2026-11-23T10.00.00'), sampleFirmware());
  });

  const base = () => ({ source, tmpDir: dir, signingKeyFiles: [signer.secretKeyFile], gnupgHome: g.home });

  /** gpg -d with status tokens; returns the plaintext. */
  async function gpgDecrypt(pkg: string): Promise<{ plain: Buffer; tokens: string[] }> {
    const r = await g.gpg(['--status-fd', '2', '--decrypt', pkg]);
    assert.equal(r.exitCode, 0, r.stderr);
    return { plain: r.stdout, tokens: statusTokens(r.stderr) };
  }

  async function untar(plain: Buffer, name: string): Promise<string> {
    const out = join(dir, 'untar-' + name);
    await mkdir(out, { recursive: true });
    await execa('tar', ['-xzf', '-', '-C', out], { input: plain });
    return out;
  }

  it('gpg verifies a package signed with a fussy keygen key, and GNU tar reproduces the tree exactly', async function () {
    const r = await pack({ ...base(), output: join(dir, 'out1') + '/' });
    const { plain, tokens } = await gpgDecrypt(r.path);
    assert.ok(tokens.some((t) => t.startsWith(`VALIDSIG ${signer.fingerprint}`)), tokens.join('\n'));
    assert.ok(tokens.some((t) => t.startsWith('GOODSIG')));
    const out = await untar(plain, 'plain');
    const got = (await snapshotTree(join(out, 'firmware-2026-11-23T10.00.00'))).filter((n) => n.path !== MANIFEST_NAME);
    assert.deepEqual(got, await snapshotTree(source));
  });

  it('gpg decrypts a package encrypted for a device key found by email in a real pubring.kbx', async function () {
    const r = await pack({ ...base(), output: join(dir, 'out2') + '/', recipients: ['device1@example.com'] });
    assert.deepEqual(r.encryptedFor, [deviceFpr]);
    const { plain, tokens } = await gpgDecrypt(r.path);
    assert.ok(tokens.includes('DECRYPTION_OKAY'), tokens.join('\n'));
    assert.ok(tokens.some((t) => t.startsWith(`VALIDSIG ${signer.fingerprint}`)));
    assert.ok(tokens.some((t) => t.startsWith('DECRYPTION_INFO 2 9')), 'SEIPDv1 with MDC, AES-256: what GnuPG 2.2 reads');
    const out = await untar(plain, 'enc');
    assert.deepEqual((await snapshotTree(join(out, 'firmware-2026-11-23T10.00.00'))).filter((n) => n.path !== MANIFEST_NAME), await snapshotTree(source));
  });

  it('every --signing-key signs the same message (m-of-n)', async function () {
    const second = await signingKey(dir, 'Release Manager');
    await g.gpg(['--import', second.publicKeyFile]);
    const r = await pack({ ...base(), signingKeyFiles: [signer.secretKeyFile, second.secretKeyFile], output: join(dir, 'out3') + '/' });
    const { tokens } = await gpgDecrypt(r.path);
    const valid = tokens.filter((t) => t.startsWith('VALIDSIG')).map((t) => t.split(' ')[1]);
    assert.deepEqual(valid.sort(), [signer.fingerprint, second.fingerprint].sort());
  });

  it('signs with SHA-256 for Ed25519 and RSA keys, the digest gpg 2.2 picks for them itself (OpenPGP.js alone takes SHA-512 for Ed25519)', async function () {
    const rsa = await keygen({ role: 'signing', name: 'RSA Build', email: 'rsa-build@example.com', rsaBits: 2048, secretKeyFile: join(dir, 'rsa.key'), publicKeyFile: join(dir, 'rsa.pub.asc') });
    await g.gpg(['--import', rsa.publicKeyFile]);
    const hashOf = (tokens: string[]) => new Map(tokens.filter((t) => t.startsWith('VALIDSIG')).map((t) => [t.split(' ')[1], t.split(' ')[8]]));
    const SHA256 = '8'; // RFC 9580 hash algorithm id
    const ours = await pack({ ...base(), signingKeyFiles: [signer.secretKeyFile, rsa.secretKeyFile], recipients: [deviceFpr], output: join(dir, 'out-sha') + '/' });
    assert.deepEqual(hashOf((await gpgDecrypt(ours.path)).tokens), new Map([[signer.fingerprint, SHA256], [rsa.fingerprint, SHA256]]));
    // gpg's own choice for the same Ed25519 key, signing the same way as the original pipeline.
    const exported = join(dir, 'signer-secret.asc');
    await writeFile(exported, await readFile(signer.secretKeyFile));
    const imp = await g.gpg(['--import', exported]);
    assert.equal(imp.exitCode, 0, imp.stderr);
    const byGpg = await pack({ ...base(), signingKeyFiles: [], gpg: { localUsers: [signer.fingerprint], home: g.home }, output: join(dir, 'out-sha-gpg') + '/' });
    assert.equal(hashOf((await gpgDecrypt(byGpg.path)).tokens).get(signer.fingerprint), SHA256);
  });

  it('a secret key exported from gpg (gpg --gen-key, then --export-secret-keys) signs packages gpg verifies', async function () {
    const exported = await g.gpg(['--export-secret-keys', deviceFpr]);
    const file = join(dir, 'gpg-made.key');
    await writeFile(file, exported.stdout);
    const r = await pack({ ...base(), signingKeyFiles: [file], output: join(dir, 'out4') + '/' });
    const { tokens } = await gpgDecrypt(r.path);
    assert.ok(tokens.some((t) => t.startsWith(`VALIDSIG ${deviceFpr}`)), tokens.join('\n'));
  });

  it('--gpg signs through the system gpg with the same packet layout, and can still encrypt', async function () {
    const own = await pack({ ...base(), output: join(dir, 'out5a') + '/' });
    const viaGpg = await pack({ ...base(), signingKeyFiles: [], gpg: { localUsers: [deviceFpr], home: g.home }, output: join(dir, 'out5b') + '/' });
    const layout = async (p: string) =>
      (await g.gpg(['--list-packets', p])).stdout
        .toString()
        .split('\n')
        .filter((l) => l.startsWith(':'))
        .map((l) => l.split(' packet')[0]);
    assert.deepEqual(await layout(viaGpg.path), await layout(own.path));
    // gpg --list-packets stops listing at the literal data; what matters is no compression layer.
    assert.deepEqual(await layout(own.path), [':onepass_sig', ':literal data']);
    const { tokens } = await gpgDecrypt(viaGpg.path);
    assert.ok(tokens.some((t) => t.startsWith(`VALIDSIG ${deviceFpr}`)));

    const enc = await pack({ ...base(), signingKeyFiles: [], gpg: { localUsers: [deviceFpr], home: g.home }, recipients: [deviceFpr], output: join(dir, 'out5c') + '/' });
    const dec = await gpgDecrypt(enc.path);
    assert.ok(dec.tokens.includes('DECRYPTION_OKAY'));
    assert.ok(dec.tokens.some((t) => t.startsWith(`VALIDSIG ${deviceFpr}`)));
  });

  it('writes the manifest as the first archive entry, with the sha256 of every file', async function () {
    const r = await pack({ ...base(), output: join(dir, 'out6') + '/', compatible: ['acme-x1'], sequence: 42 });
    const { plain } = await gpgDecrypt(r.path);
    const list = await execa('tar', ['-tzf', '-'], { input: plain });
    const names = String(list.stdout).split('\n');
    assert.equal(names[0], 'firmware-2026-11-23T10.00.00/');
    assert.equal(names[1], `firmware-2026-11-23T10.00.00/${MANIFEST_NAME}`);
    const out = await untar(plain, 'manifest');
    const m = JSON.parse(await readFile(join(out, 'firmware-2026-11-23T10.00.00', MANIFEST_NAME), 'utf8')) as Manifest;
    assert.equal(m.release, 'firmware-2026-11-23T10.00.00');
    assert.equal(m.sequence, 42);
    assert.deepEqual(m.compatible, ['acme-x1']);
    const snap = await snapshotTree(source);
    const files = snap.filter((n) => n.type === 'file');
    assert.equal(m.fileCount, files.length);
    assert.equal(m.totalBytes, files.reduce((a, n) => a + (n.size ?? 0), 0));
    for (const f of files) {
      const e = m.entries.find((x) => x.path === f.path);
      assert.equal(e?.sha256, f.sha256, f.path);
      assert.equal(e?.mode, f.mode, f.path);
    }
    assert.equal(m.entries.find((x) => x.path === 'lib/libfoo.so')?.target, 'libfoo.so.1');
  });

  it('the same tree, keys and SOURCE_DATE_EPOCH give a byte-identical package, mtimes clamped', async function () {
    const epoch = MTIME - 1000;
    const a = await pack({ ...base(), sourceDateEpoch: epoch, output: join(dir, 'out7a') + '/' });
    const b = await pack({ ...base(), sourceDateEpoch: epoch, output: join(dir, 'out7b') + '/' });
    assert.ok((await readFile(a.path)).equals(await readFile(b.path)), 'packages differ');
    const { plain } = await gpgDecrypt(a.path);
    const out = await untar(plain, 'epoch');
    const snap = await snapshotTree(join(out, 'firmware-2026-11-23T10.00.00'));
    assert.ok(snap.filter((n) => n.type !== 'symlink').every((n) => n.mtime === epoch));
    const m = JSON.parse(await readFile(join(out, 'firmware-2026-11-23T10.00.00', MANIFEST_NAME), 'utf8')) as Manifest;
    assert.equal(m.created, new Date(epoch * 1000).toISOString());
  });

  it('keeps hard links inside the tree as hard links', async function () {
    const src = await writeTree(join(dir, 'hl', 'fw-hardlinks'), [{ path: 'a/one', content: 'same inode\n' }, { path: 'b/x', content: 'other\n' }]);
    await link(join(src, 'a/one'), join(src, 'b/two'));
    const r = await pack({ ...base(), source: src, output: join(dir, 'out8') + '/' });
    const { plain } = await gpgDecrypt(r.path);
    const out = await untar(plain, 'hl');
    const snap = await snapshotTree(join(out, 'fw-hardlinks'), { inodes: true });
    const one = snap.find((n) => n.path === 'a/one');
    const two = snap.find((n) => n.path === 'b/two');
    assert.equal(one?.ino, two?.ino);
  });

  it('leaves out .git, .svn, .bzr always and --exclude patterns by name or path', async function () {
    const src = await writeTree(join(dir, 'ex', 'fw-excludes'), [
      { path: 'keep/a', content: 'a' },
      { path: '.git/config', content: 'x' },
      { path: 'sub/.svn/entries', content: 'x' },
      { path: 'sub/.bzr/x', content: 'x' },
      { path: 'sub/debug.log', content: 'x' },
      { path: 'build/tmp/junk', content: 'x' },
      { path: 'keep/tmp/kept', content: 'x' },
    ]);
    const r = await pack({ ...base(), source: src, excludes: ['*.log', 'build/tmp'], output: join(dir, 'out9') + '/' });
    const { plain } = await gpgDecrypt(r.path);
    const names = String((await execa('tar', ['-tzf', '-'], { input: plain })).stdout).split('\n');
    assert.deepEqual(names.sort(), [
      'fw-excludes/',
      `fw-excludes/${MANIFEST_NAME}`,
      'fw-excludes/build/',
      'fw-excludes/keep/',
      'fw-excludes/keep/a',
      'fw-excludes/keep/tmp/',
      'fw-excludes/keep/tmp/kept',
      'fw-excludes/sub/',
    ]);
  });

  it('finds recipients by key id, subkey id and fingerprint, and gpg 2.2 fingerprints agree', async function () {
    const list = (await g.gpg(['--with-colons', '--with-subkey-fingerprints', '--list-keys', deviceFpr])).stdout.toString().split('\n');
    const subFpr = list.filter((l) => l.startsWith('fpr:'))[1]?.split(':')[9] as string;
    for (const id of [deviceFpr, deviceFpr.slice(-16), `0x${deviceFpr.slice(-16).toLowerCase()}`, subFpr, subFpr.slice(-16)]) {
      const r = await pack({ ...base(), recipients: [id], output: join(dir, `out10-${id.slice(-6)}`) + '/' });
      assert.deepEqual(r.encryptedFor, [deviceFpr], id);
    }
    assert.equal(await fingerprintOf(g, 'device1@example.com'), deviceFpr);
  });
});
