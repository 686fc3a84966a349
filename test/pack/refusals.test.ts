import assert from 'node:assert/strict';
import { link, mkdir, readdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import * as openpgp from 'openpgp';
import { FussyError, type ErrorCode } from '../../src/errors.js';
import { digestFiles } from '../../src/pack/digest-files.js';
import { pack, type PackOptions } from '../../src/pack/pack.js';
import { walkTree, type WalkEntry } from '../../src/pack/walk.js';
import { signingKey } from '../helpers/keys.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

/**
 * Every refusal names what is wrong and leaves nothing behind: no package, no temp file, no
 * temp directory (tmpDir is private to each test and must stay empty).
 */
describe('pack refuses bad input and leaves no file behind', function () {
  let dir: string;
  let key: string;
  let protectedKey: string;

  before(async function () {
    dir = await makeTmp();
    key = (await signingKey(dir)).secretKeyFile;
    protectedKey = (await signingKey(dir, 'Protected', 'correct horse')).secretKeyFile;
  });

  let n = 0;
  async function refuses(opts: Partial<PackOptions> & { source: string }, code: ErrorCode, message: RegExp): Promise<void> {
    const tmpDir = join(dir, `tmp-${++n}`);
    const outDir = join(dir, `out-${n}`);
    await mkdir(tmpDir);
    await mkdir(outDir);
    await assert.rejects(
      pack({ tmpDir, signingKeyFiles: [key], output: outDir, ...opts }),
      (err: unknown) => {
        assert.ok(err instanceof FussyError, String(err));
        assert.equal(err.code, code, err.message);
        assert.match(err.message, message);
        return true;
      },
    );
    assert.deepEqual(await readdir(tmpDir), [], 'temp dir must be empty');
    assert.deepEqual(await readdir(outDir), [], 'output dir must be empty');
  }

  const tree = async (name: string, extra: (root: string) => Promise<void> = async () => {}) => {
    const root = await writeTree(join(dir, `t${++n}`, name), sampleFirmware());
    await extra(root);
    return root;
  };

  it('a missing DIR', async function () {
    await refuses({ source: join(dir, 'nope', 'firmware-1') }, 'BAD_SOURCE', /nope\/firmware-1 does not exist/);
  });

  it('a DIR that is a file', async function () {
    const f = join(dir, 'plain-file');
    await writeFile(f, 'x');
    await refuses({ source: f }, 'BAD_SOURCE', /plain-file is not a directory/);
  });

  for (const name of ['current', 'failsafe', '.hidden']) {
    it(`a release named ${name}`, async function () {
      await refuses({ source: await tree(name) }, 'BAD_RELEASE_NAME', new RegExp(`release name "${name.replace('.', '\\.')}"`));
    });
  }

  it('a FIFO in the tree', async function () {
    const root = await tree('fw-fifo', async (r) => void (await execa('mkfifo', [join(r, 'bin', 'pipe')])));
    await refuses({ source: root }, 'UNSAFE_PATH', /bin\/pipe is a FIFO/);
  });

  it('a device node in the tree', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const root = await tree('fw-dev', async (r) => void (await execa('mknod', [join(r, 'null'), 'c', '1', '3'])));
    await refuses({ source: root }, 'UNSAFE_PATH', /null is a character device/);
  });

  it('a socket in the tree', async function () {
    const root = await tree('fw-sock');
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((res) => server.listen(join(root, 'ctl.sock'), res));
    try {
      await refuses({ source: root }, 'UNSAFE_PATH', /ctl.sock is a socket/);
    } finally {
      server.close();
    }
  });

  it('an absolute symlink', async function () {
    const root = await tree('fw-abs', async (r) => symlink('/etc/passwd', join(r, 'etc', 'passwd')));
    await refuses({ source: root }, 'UNSAFE_PATH', /etc\/passwd -> \/etc\/passwd points outside the release/);
  });

  it('a symlink escaping with ..', async function () {
    const root = await tree('fw-dotdot', async (r) => symlink('../../outside', join(r, 'bin', 'up')));
    await refuses({ source: root }, 'UNSAFE_PATH', /bin\/up -> \.\.\/\.\.\/outside points outside/);
  });

  it('a symlink chain that escapes although each link looks inside (CVE-2026-26960 shape)', async function () {
    const root = await tree('fw-chain', async (r) => {
      await mkdir(join(r, 'a', 'b', 'c'), { recursive: true });
      await symlink('../..', join(r, 'a', 'b', 'c', 'up'));
      await symlink('c/up/../..', join(r, 'a', 'b', 'escape'));
    });
    await refuses({ source: root }, 'UNSAFE_PATH', /a\/b\/escape -> c\/up\/\.\.\/\.\. points outside/);
  });

  it('a symlink loop', async function () {
    const root = await tree('fw-loop', async (r) => {
      await symlink('loop-b', join(r, 'loop-a'));
      await symlink('loop-a', join(r, 'loop-b'));
    });
    await refuses({ source: root }, 'UNSAFE_PATH', /symlink loop/);
  });

  it('a hard link shared with a file outside the tree', async function () {
    const outside = join(dir, 'outside-file');
    await writeFile(outside, 'shared');
    const root = await tree('fw-hardlink-out', async (r) => link(outside, join(r, 'bin', 'shared')));
    await refuses({ source: root }, 'UNSAFE_PATH', /bin\/shared is hard-linked to a file outside/);
  });

  it('a wrong passphrase', async function () {
    await refuses({ source: await tree('fw-pass'), signingKeyFiles: [protectedKey], passphrase: async () => 'wrong' }, 'BAD_PASSPHRASE', /wrong passphrase for signing key .*protected\.key/);
  });

  it('a protected key with no passphrase source', async function () {
    await refuses({ source: await tree('fw-nopass'), signingKeyFiles: [protectedKey] }, 'BAD_PASSPHRASE', /passphrase-protected and no passphrase was given/);
  });

  it('no signing key at all', async function () {
    await refuses({ source: await tree('fw-nokey'), signingKeyFiles: [] }, 'USAGE', /no signing key given/);
  });

  it('a key file with no secret key in it', async function () {
    const pub = join(dir, 'protected.pub.asc');
    await refuses({ source: await tree('fw-pubkey'), signingKeyFiles: [pub] }, 'KEY_UNUSABLE', /holds 0 secret keys/);
  });

  it('a v6 signing key, which GnuPG 2.2 cannot read', async function () {
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'v6', email: 'v6@example.com' }], config: { v6Keys: true }, format: 'armored' });
    const f = join(dir, 'v6.key');
    await writeFile(f, privateKey);
    await refuses({ source: await tree('fw-v6'), signingKeyFiles: [f] }, 'KEY_UNUSABLE', /is a v6 key; GnuPG 2.2 only reads v4 keys/);
  });

  it('an expired signing key', async function () {
    const created = new Date(Date.now() - 10 * 86400_000);
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'old', email: 'old@example.com' }], date: created, keyExpirationTime: 86400, format: 'armored' });
    const f = join(dir, 'expired.key');
    await writeFile(f, privateKey);
    await refuses({ source: await tree('fw-expired'), signingKeyFiles: [f] }, 'KEY_UNUSABLE', /has no valid signing \(sub\)key/);
  });

  it('a recipient key asking for AEAD (SEIPDv2), which GnuPG 2.2 cannot decrypt', async function () {
    const { publicKey } = await openpgp.generateKey({ userIDs: [{ name: 'aead', email: 'aead@example.com' }], config: { aeadProtect: true }, format: 'armored' });
    const f = join(dir, 'aead.pub.asc');
    await writeFile(f, publicKey);
    await refuses({ source: await tree('fw-aead'), recipients: ['aead@example.com'], recipientKeyFiles: [f] }, 'KEY_UNUSABLE', /asks for AEAD encryption \(SEIPDv2\)/);
  });

  it('an unknown recipient, listing what was searched', async function () {
    await refuses({ source: await tree('fw-norcpt'), recipients: ['nobody@example.com'], recipientKeyFiles: [join(dir, 'protected.pub.asc')] }, 'KEY_NOT_FOUND', /no recipient key matches "nobody@example.com" \(searched .*protected\.pub\.asc/);
  });

  it('an ambiguous recipient, listing the candidates', async function () {
    await refuses(
      { source: await tree('fw-ambig'), recipients: ['example.com'], recipientKeyFiles: [join(dir, 'protected.pub.asc'), join(dir, 'build-server.pub.asc')] },
      'KEY_AMBIGUOUS',
      /"example.com" matches 2 keys: .*Protected.*Build Server|"example.com" matches 2 keys: .*Build Server.*Protected/,
    );
  });

  it('an output path whose directory does not exist', async function () {
    const tmpDir = join(dir, 'tmp-out');
    await mkdir(tmpDir);
    await assert.rejects(pack({ source: await tree('fw-out'), tmpDir, signingKeyFiles: [key], output: join(dir, 'no', 'such', 'pkg.gpg') }), /no\/such is not a directory/);
    assert.deepEqual(await readdir(tmpDir), []);
  });

  it('file-grows-while-packed: a file made a sparse 8 GiB after the walk is refused at once (BAD_SOURCE), not read to its new end', async function () {
    const src = await tree('fw-grows');
    const entries = await walkTree(src);
    const grown = entries.find((e) => e.type === 'file') as WalkEntry;
    await truncate(grown.abs, 8 * 2 ** 30); // read to its end, it would be told as 8 GiB, seconds later
    assert.throws(() => digestFiles(entries), (e: unknown) => e instanceof FussyError && e.code === 'BAD_SOURCE' && e.message.includes(`${grown.abs} changed size while it was being packed (${grown.stat.size} bytes when listed, more now)`));
  });
});
