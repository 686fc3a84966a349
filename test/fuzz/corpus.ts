import { execFileSync } from 'node:child_process';
import { chmod, cp, link, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { pack } from '../../src/pack/pack.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';
import { Rng } from './rng.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/fuzz/', import.meta.url));
/** Seed packages are made at this time (after the fixture keys' creation): byte-identical runs. */
export const EPOCH = 1_780_000_000;
export const RELEASE = 'fw-fuzz';

export type SeedName = 'fussy-signed' | 'fussy-encrypted' | 'gpg-signed' | 'gpg-encrypted';

export interface Seed {
  name: SeedName;
  /** The package file's bytes. */
  bytes: Buffer;
  /** The signed literal data: the .tar.gz. */
  payload: Buffer;
  /** The payload's tar. */
  tar: Buffer;
  encrypted: boolean;
  /** The payload starts with a fussy manifest. */
  manifest: boolean;
  /** Made by gpg: re-wrapped payloads get gpg's outer compressed packet too. */
  gpg: boolean;
}

export interface Corpus {
  dir: string;
  /** The device keyring: the signing key's public half, the device's secret key. */
  keyring: string;
  signingKey: openpgp.PrivateKey;
  deviceKey: openpgp.PublicKey;
  seeds: Seed[];
}

/** A small firmware tree (~130 KiB of tar: one gzip member; one file spans several 64 KiB reads), links of every kind, no hooks. */
function firmware(): SampleFile[] {
  const rng = new Rng(1);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'config', 'value', 'device', 'firmware', 'update', 'kernel', 'module'];
  const text = (n: number): string => {
    const parts: string[] = [];
    for (let len = 0; len < n; ) {
      const w = rng.pick(words) + (rng.chance(0.1) ? '\n' : ' ');
      parts.push(w);
      len += w.length;
    }
    return parts.join('').slice(0, n);
  };
  return [
    { path: 'bin/app', content: '#!/bin/sh\necho app\n', mode: 0o755 },
    { path: 'lib/libfoo.so.1.2', content: text(24_000) },
    { path: 'lib/libfoo.so.1', symlink: 'libfoo.so.1.2' },
    { path: 'lib/libfoo.so', symlink: 'libfoo.so.1' },
    { path: 'etc/app.conf', content: 'level = 3\n'.repeat(40), mode: 0o640 },
    { path: 'share/data.txt', content: text(80_000) },
    { path: 'share/blob.bin', content: rng.bytes(12_000) },
    { path: 'share/empty', content: '' },
    { path: 'var/empty', dir: true },
    { path: 'opt/link-to-etc', symlink: '../etc' },
    { path: 'doc/README', content: text(4000) },
  ];
}

/**
 * The fuzzer's seed packages, made in `dir` from the fixture keys: fussy's own signed package,
 * fussy's own signed and encrypted package, and the original pipeline's `tar czf - | gpg --sign`
 * (and `-se`) made by real GNU tar and gpg. Signed ones are byte-identical from run to run;
 * encrypted ones differ only in their random session key (same lengths, same framing).
 */
export async function buildCorpus(dir: string): Promise<Corpus> {
  const keyring = join(dir, 'keys');
  await cp(join(FIXTURES, 'keys'), keyring, { recursive: true });
  const signingKeyFile = join(dir, 'build.key');
  await cp(join(FIXTURES, 'build.key'), signingKeyFile);
  await chmod(signingKeyFile, 0o600);
  const signingKey = await openpgp.readPrivateKey({ armoredKey: await readFile(signingKeyFile, 'utf8') });
  const deviceKey = await openpgp.readKey({ armoredKey: await readFile(join(FIXTURES, 'device.pub.asc'), 'utf8') });
  const devicePrivate = await openpgp.readPrivateKey({ armoredKey: await readFile(join(keyring, 'device-20AAE04580198062.key'), 'utf8') });

  const build = join(dir, 'build');
  const src = await writeTree(join(build, RELEASE), firmware());
  await link(join(src, 'share/data.txt'), join(src, 'share/data-link.txt')); // a hard link inside the tree
  await utimes(join(src, 'share'), EPOCH - 86400, EPOCH - 86400);
  const common = { source: src, tmpDir: dir, signingKeyFiles: [signingKeyFile], sourceDateEpoch: EPOCH };
  const fussySigned = await readFile((await pack({ ...common, output: join(dir, 'seed-fussy-signed.gpg') })).path);
  const fussyEncrypted = await readFile(
    (await pack({ ...common, recipients: [deviceKey.getFingerprint()], recipientKeyFiles: [join(FIXTURES, 'device.pub.asc')], output: join(dir, 'seed-fussy-encrypted.gpg') })).path,
  );
  const signedPayload = async (bytes: Buffer): Promise<Buffer> => {
    const r = await openpgp.verify({ message: await openpgp.readMessage({ binaryMessage: bytes }), verificationKeys: signingKey.toPublic(), format: 'binary', expectSigned: true });
    return Buffer.from(r.data as Uint8Array);
  };
  const fussyPayload = await signedPayload(fussySigned);
  const decrypted = await openpgp.decrypt({ message: await openpgp.readMessage({ binaryMessage: fussyEncrypted }), decryptionKeys: devicePrivate, verificationKeys: signingKey.toPublic(), format: 'binary', expectSigned: true });
  const fussyEncPayload = Buffer.from(decrypted.data as Uint8Array);

  // The original pipeline: GNU tar (reproducible options), gzip -n, gpg with a frozen clock.
  const home = join(dir, 'gnupg');
  const gpg = (args: string[], input?: Buffer): Buffer =>
    execFileSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', '--faked-system-time', `${EPOCH}!`, ...args], { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'ignore'] });
  execFileSync('mkdir', ['-m', '700', '-p', home]);
  gpg(['--import', signingKeyFile]);
  gpg(['--import', join(FIXTURES, 'device.pub.asc')]);
  const tar = execFileSync('tar', ['--sort=name', `--mtime=@${EPOCH}`, '--owner=0', '--group=0', '--numeric-owner', '-cf', '-', RELEASE], { cwd: build, maxBuffer: 1 << 30 });
  const tgz = execFileSync('gzip', ['-n', '-6'], { input: tar, maxBuffer: 1 << 30 });
  const gpgSigned = gpg(['--sign'], tgz);
  const gpgEncrypted = gpg(['--trust-model', 'always', '--sign', '--encrypt', '-r', 'fuzz-device@example.com'], tgz);
  try {
    execFileSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  const seeds: Seed[] = [
    { name: 'fussy-signed', bytes: fussySigned, payload: fussyPayload, tar: gunzipSync(fussyPayload), encrypted: false, manifest: true, gpg: false },
    { name: 'fussy-encrypted', bytes: fussyEncrypted, payload: fussyEncPayload, tar: gunzipSync(fussyEncPayload), encrypted: true, manifest: true, gpg: false },
    { name: 'gpg-signed', bytes: gpgSigned, payload: tgz, tar, encrypted: false, manifest: false, gpg: true },
    { name: 'gpg-encrypted', bytes: gpgEncrypted, payload: tgz, tar, encrypted: true, manifest: false, gpg: true },
  ];
  for (const s of seeds) await writeFile(join(dir, `seed-${s.name}.payload.tar.gz`), s.payload);
  return { dir, keyring, signingKey, deviceKey, seeds };
}
