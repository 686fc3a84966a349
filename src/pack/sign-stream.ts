import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import { spawnFilter } from '../util/run.js';
import { webStreamOf } from '../util/web-stream.js';

/**
 * Output GnuPG 2.2 reads (security-perf.md §1.3-1.4): v4 signatures, SEIPDv1 with MDC, no AEAD,
 * no OpenPGP compression (the payload is gzip already).
 */
export function packConfig(reproducible: boolean): openpgp.PartialConfig {
  return {
    v6Keys: false,
    aeadProtect: false,
    preferredHashAlgorithm: openpgp.enums.hash.sha256,
    preferredSymmetricAlgorithm: openpgp.enums.symmetric.aes256,
    preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
    // The salt notation makes signatures differ run to run; a SOURCE_DATE_EPOCH build wants
    // byte-identical packages, and Ed25519/RSA-PKCS#1 signatures are deterministic without it.
    nonDeterministicSignaturesViaNotation: !reproducible,
  };
}

export interface OpenpgpSignOptions {
  signingKeys: openpgp.PrivateKey[];
  encryptionKeys: openpgp.Key[];
  filename: string;
  date: Date;
  reproducible: boolean;
}

/** Sign (every key signs the same literal data), optionally encrypt, streaming into `out`. */
export async function signWithOpenpgp(data: AsyncIterable<Buffer>, out: Writable, o: OpenpgpSignOptions): Promise<void> {
  const config = packConfig(o.reproducible);
  const binary = webStreamOf(data);
  const message = await openpgp.createMessage({ binary, filename: o.filename, date: o.date, format: 'binary' });
  const encrypted =
    o.encryptionKeys.length > 0
      ? await openpgp.encrypt({ message, encryptionKeys: o.encryptionKeys, signingKeys: o.signingKeys, date: o.date, format: 'binary', config })
      : await openpgp.sign({ message, signingKeys: o.signingKeys, date: o.date, format: 'binary', config });
  await pipeline(Readable.fromWeb(encrypted as import('node:stream/web').ReadableStream<Uint8Array>), out);
}

export interface GpgSignOptions {
  localUsers: string[];
  home?: string;
  passphraseFile?: string;
  filename: string;
  encryptionKeys: openpgp.Key[];
  tmpDir: string;
}

/**
 * Sign through the system gpg (keys in gpg-agent or on a smartcard) with the same packet layout
 * as signWithOpenpgp: `gpg --sign -z 0` gives one-pass signature + literal data + signature, and
 * with recipients `gpg -se` order. Recipients are resolved by fussy (same rules whichever signer)
 * and handed over with --recipient-file, which gpg uses without keyring lookup or trust prompts.
 */
export async function signWithGpg(data: AsyncIterable<Buffer>, out: Writable, o: GpgSignOptions): Promise<void> {
  const args = ['--batch', '--no-tty', '--sign', '--compress-algo', 'none', '--set-filename', o.filename, '--output', '-'];
  for (const u of o.localUsers) args.push('--local-user', u);
  if (o.home !== undefined) args.unshift('--homedir', o.home);
  if (o.passphraseFile !== undefined) args.unshift('--pinentry-mode', 'loopback', '--passphrase-file', o.passphraseFile);
  const keyDir = o.encryptionKeys.length > 0 ? await mkdtemp(join(o.tmpDir, 'fussy-recipients-')) : undefined;
  try {
    if (keyDir !== undefined) {
      args.push('--encrypt');
      for (const [i, key] of o.encryptionKeys.entries()) {
        const file = join(keyDir, `recipient-${i}.gpg`);
        await writeFile(file, key.toPublic().write(), { mode: 0o600 });
        args.push('--recipient-file', file);
      }
    }
    await runGpgFilter(args, data, out, o.localUsers);
  } finally {
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
  }
}

async function runGpgFilter(args: string[], data: AsyncIterable<Buffer>, out: Writable, localUsers: string[]): Promise<void> {
  const { child: gpg } = await spawnFilter('gpg', args);
  const [fed, drained, result] = await Promise.allSettled([pipeline(Readable.from(data), gpg.stdin), pipeline(gpg.stdout, out), gpg]);
  const r = result.status === 'fulfilled' ? result.value : undefined;
  if (r === undefined || r.exitCode !== 0) {
    if (r?.exitCode === undefined && r?.signal === undefined && r?.failed) {
      throw new FussyError('GPG_MISSING', `cannot run gpg: ${r.shortMessage}`, { hint: 'install GnuPG, or sign with --signing-key FILE' });
    }
    // A source error (file changed while packing) makes gpg see a short input; report the cause.
    if (fed.status === 'rejected' && fed.reason instanceof FussyError) throw fed.reason;
    const stderr = Buffer.from((r?.stderr as Uint8Array | undefined) ?? new Uint8Array()).toString('utf8').trim();
    throw new FussyError('GPG_FAILED', `gpg --sign failed (exit ${r?.exitCode ?? '?'}): ${stderr.split('\n').slice(-3).join(' / ')}`, {
      hint: localUsers.length > 0 ? `check that gpg has the secret key for ${localUsers.join(', ')}` : 'check that gpg has a default secret key (gpg -K), or pass --local-user ID',
    });
  }
  if (fed.status === 'rejected') throw fed.reason;
  if (drained.status === 'rejected') throw drained.reason;
}
