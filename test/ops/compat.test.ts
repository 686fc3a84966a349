import assert from 'node:assert/strict';
import { cp, lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { FussyError } from '../../src/errors.js';
import { install } from '../../src/ops/install.js';
import { gpgGenKey, gpgHome, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, snapshotTree, writeTree } from '../helpers/tree.js';

const FROZEN = fileURLToPath(new URL('../../../fixtures/gnupg-2.2/', import.meta.url));

interface Setup {
  dir: string;
  keyring: string;
  target: string;
  hookLog: string;
}

async function setup(keyringFrom?: string): Promise<Setup> {
  const dir = await makeTmp();
  const keyring = join(dir, 'keys');
  // Not the sockets of an agent that a gpg run on the fixture home left there (cp cannot copy them).
  if (keyringFrom !== undefined) await cp(keyringFrom, keyring, { recursive: true, filter: (from) => !/^S\.gpg-agent/.test(basename(from)) });
  const target = join(dir, 'firmware');
  await mkdir(join(target, 'current'), { recursive: true });
  await writeFile(join(target, 'current', 'factory'), 'factory\n');
  return { dir, keyring, target, hookLog: join(dir, 'hooks.log') };
}

const run = (s: Setup, pkg: string) =>
  install({ package: pkg, keyring: s.keyring, target: s.target, env: { PATH: process.env.PATH, FUSSY_HOOK_LOG: s.hookLog }, cwd: s.dir, hookTimeoutMs: 600_000, owner: { asRoot: process.getuid?.() === 0, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });

describe('compatibility: packages made by the original pipeline (GNU tar + gpg) install', function () {
  describe('frozen fixtures made by GnuPG 2.2.40 (fixtures/gnupg-2.2/make.sh), keyring made with gpg --gen-key', function () {
    for (const name of ['signed-zip.tar.gz.gpg', 'signed-z0.tar.gz.gpg', 'signed-armored.tar.gz.asc', 'signed-encrypted.tar.gz.gpg']) {
      it(`installs ${name}`, async function () {
        const s = await setup(join(FROZEN, 'keyring'));
        const r = await run(s, join(FROZEN, name));
        assert.equal(r.release, 'fw-frozen');
        assert.equal(r.manifest, false);
        assert.equal(r.encrypted, name.includes('encrypted'));
        assert.equal(await readFile(join(s.target, 'current', 'etc', 'app.conf'), 'utf8'), 'setting = 1\n');
        assert.equal(await readlink(join(s.target, 'fw-frozen', 'lib', 'libf.so')), 'libf.so.1');
        assert.equal(await readlink(join(s.target, 'current')), 'fw-frozen');
        assert.deepEqual((await readFile(s.hookLog, 'utf8')).trim().split('\n'), [`pre-install ${join(s.target, 'fw-frozen')} False`, `post-install ${join(s.target, 'fw-frozen')} False`]);
      });
    }

    it('does not trust the device\'s own key as a signer (its public half sits in pubring.kbx)', async function () {
      const s = await setup(join(FROZEN, 'keyring'));
      const g: GpgHome = { home: s.keyring, gpg: async () => ({ stdout: Buffer.alloc(0), stderr: '', exitCode: 0 }) };
      const fw = await writeTree(join(s.dir, 'fw-evil'), [{ path: 'x', content: 'x' }]);
      const tgz = await execa('tar', ['czf', '-', 'fw-evil'], { cwd: s.dir, encoding: 'buffer', stripFinalNewline: false });
      const signed = await execa('gpg', ['--homedir', g.home, '--batch', '--sign', '-u', 'device@frozen.example'], { input: tgz.stdout, encoding: 'buffer', stripFinalNewline: false });
      const pkg = join(s.dir, 'evil.gpg');
      await writeFile(pkg, signed.stdout);
      await assert.rejects(run(s, pkg), (err: unknown) => err instanceof FussyError && err.code === 'BAD_SIGNATURE' && /not in keyring/.test(err.message));
      void fw;
    });
  });

  describe('made here by gpg and GNU tar, exactly as Fussy did', function () {
    let build: GpgHome;
    let s: Setup;
    let src: string;

    before(async function () {
      const dir = await makeTmp();
      build = await gpgHome(dir);
      await gpgGenKey(build, 'Build <build@example.com>');
      s = await setup();
      // The device keyring as the Fussy docs made it: GNUPGHOME=/etc/fussy/keys gpg --gen-key; gpg --import build.pub
      const devKeyring = await gpgHome(s.dir, s.keyring);
      await gpgGenKey(devKeyring, 'Device <device@example.com>');
      await devKeyring.gpg(['--import'], (await build.gpg(['--export', 'build@example.com'])).stdout);
      await build.gpg(['--import'], (await devKeyring.gpg(['--export', 'device@example.com'])).stdout);
      src = await writeTree(join(dir, 'src', 'fw-legacy'), sampleFirmware());
    });

    async function legacy(gpgArgs: string[], name: string): Promise<string> {
      const tgz = await execa('tar', ['czf', '-', 'fw-legacy'], { cwd: join(src, '..'), encoding: 'buffer', stripFinalNewline: false });
      const out = await build.gpg(['--trust-model', 'always', ...gpgArgs], Buffer.from(tgz.stdout as Uint8Array));
      assert.equal(out.exitCode, 0, out.stderr);
      const pkg = join(s.dir, name);
      await writeFile(pkg, out.stdout);
      return pkg;
    }

    it('tar czf | gpg --sign (ZIP compression inside), then again: the second copy is all hard links', async function () {
      const pkg = await legacy(['--sign'], 'zip.tar.gz.gpg');
      const r1 = await run(s, pkg);
      const installed = (await snapshotTree(r1.path)).filter((n) => n.path !== '.');
      assert.deepEqual(installed, (await snapshotTree(src)).filter((n) => n.path !== '.'));
      const r2 = await run(s, pkg);
      assert.equal(r2.release, 'fw-legacy-1');
      assert.equal(r2.writtenBytes, 0);
      assert.equal((await lstat(join(r1.path, 'share/blob.bin'))).ino, (await lstat(join(r2.path, 'share/blob.bin'))).ino);
    });

    it('gpg -se -r DEVICE (ZLIB inside), decrypted with the key gpg holds in private-keys-v1.d', async function () {
      const r = await run(s, await legacy(['-se', '-r', 'device@example.com'], 'se.tar.gz.gpg'));
      assert.equal(r.encrypted, true);
      assert.equal(await readFile(join(r.path, 'etc/app/app.conf'), 'utf8'), 'level = 3\n'.repeat(50));
    });

    it('gpg -z0 --sign, and an armored .asc', async function () {
      assert.equal((await run(s, await legacy(['-z', '0', '--sign'], 'z0.tar.gz.gpg'))).manifest, false);
      assert.equal((await run(s, await legacy(['--armor', '--sign'], 'a.tar.gz.asc'))).manifest, false);
    });
  });
});
