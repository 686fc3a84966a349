import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import { requireStarted, startProgram } from '../util/run.js';
import { webStreamOf } from '../util/web-stream.js';

/**
 * Output GnuPG 2.2 reads (docs/format.md): v4 signatures, SEIPDv1 with MDC, no AEAD,
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
  const signed = await signMessage(message, o.signingKeys, o.date, config);
  const bytes =
    o.encryptionKeys.length > 0
      ? await openpgp.encrypt({ message: signed, encryptionKeys: o.encryptionKeys, date: o.date, format: 'binary', config })
      : signed.write();
  await pipeline(Readable.fromWeb(bytes as import('node:stream/web').ReadableStream<Uint8Array>), out);
}

type Packet = openpgp.AnyPacket;
/** Not in openpgp's type declarations; the same call Message.sign makes. */
interface OnePassFactory {
  fromSignaturePacket(sig: openpgp.SignaturePacket, last: boolean): Packet;
}
interface SignablePacket {
  sign(key: openpgp.SecretKeyPacket | openpgp.SecretSubkeyPacket, data: openpgp.LiteralDataPacket, date: Date, detached: boolean, config: openpgp.Config): Promise<void>;
}

/**
 * openpgp's Message.sign, with one difference: a legacy EdDSA (Ed25519) key signs with SHA-256,
 * as GnuPG 2.2 does for the same key and as RFC 9580 §5.2.3.3 allows (a digest of at least 256
 * bits); OpenPGP.js would take the curve's SHA-512. SHA-512 has no CPU instructions here and
 * SHA-256 has: verifying a 160 MB package costs ~0.09 s instead of ~0.2 s on the device's main
 * thread (docs/performance.md). Every other key gets the hash OpenPGP.js picks for it.
 * Packets are laid out as Message.sign lays them out: one-pass signatures (innermost first),
 * the literal data, the signatures.
 */
async function signMessage(message: openpgp.Message<ReadableStream<Uint8Array>>, keys: openpgp.PrivateKey[], date: Date, config: openpgp.PartialConfig): Promise<openpgp.Message<ReadableStream<Uint8Array>>> {
  const full = { ...openpgp.config, ...config } as openpgp.Config;
  const literal = message.packets.findPacket(openpgp.enums.packet.literalData) as openpgp.LiteralDataPacket;
  const signatures = await Promise.all(
    keys.map(async (key) => {
      const { keyPacket } = await key.getSigningKey(undefined, date, undefined, full);
      const sig = new openpgp.SignaturePacket();
      sig.signatureType = openpgp.enums.signature.binary;
      sig.publicKeyAlgorithm = keyPacket.algorithm;
      sig.hashAlgorithm = keyPacket.algorithm === openpgp.enums.publicKey.eddsaLegacy ? openpgp.enums.hash.sha256 : await openpgpHashFor(key, date, config);
      sig.rawNotations = [];
      await (sig as unknown as SignablePacket).sign(keyPacket as openpgp.SecretKeyPacket | openpgp.SecretSubkeyPacket, literal, date, false, full);
      return sig;
    }),
  );
  const onePass = openpgp.OnePassSignaturePacket as unknown as OnePassFactory;
  const list = new openpgp.PacketList<Packet>();
  list.push(...signatures.map((sig, i) => onePass.fromSignaturePacket(sig, i === 0)).reverse(), literal, ...signatures);
  return new openpgp.Message(list) as openpgp.Message<ReadableStream<Uint8Array>>;
}

/** The hash OpenPGP.js chooses for `key` (its preferences and the curve's), read off a signature of nothing. */
async function openpgpHashFor(key: openpgp.PrivateKey, date: Date, config: openpgp.PartialConfig): Promise<openpgp.enums.hash> {
  const probe = await openpgp.createMessage({ binary: new Uint8Array(0), date, format: 'binary' });
  const sig = await openpgp.sign({ message: probe, signingKeys: key, date, format: 'object', config });
  const packet = sig.packets.filterByTag(openpgp.enums.packet.signature)[0] as openpgp.SignaturePacket | undefined;
  if (packet?.hashAlgorithm == null) throw new Error(`cannot tell which hash ${key.getFingerprint()} signs with`);
  return packet.hashAlgorithm;
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
  const gpg = await startProgram('gpg', args, { stdin: 'pipe', output: 'pipe' });
  if (gpg.stdin === undefined || gpg.stdout === undefined) {
    requireStarted('gpg', await gpg.result, { instead: 'or sign with --signing-key FILE' });
    throw new Error('gpg started without its pipes');
  }
  const [fed, drained, result] = await Promise.allSettled([pipeline(Readable.from(data), gpg.stdin), pipeline(gpg.stdout, out), gpg.result]);
  const r = result.status === 'fulfilled' ? result.value : undefined;
  if (r === undefined || r.exitCode !== 0) {
    // A source error (file changed while packing) makes gpg see a short input; report the cause.
    if (fed.status === 'rejected' && fed.reason instanceof FussyError) throw fed.reason;
    const stderr = (r?.stderr ?? '').trim();
    throw new FussyError('GPG_FAILED', `gpg --sign failed (exit ${r?.exitCode ?? '?'}): ${stderr.split('\n').slice(-3).join(' / ')}`, {
      hint: localUsers.length > 0 ? `check that gpg has the secret key for ${localUsers.join(', ')}` : 'check that gpg has a default secret key (gpg -K), or pass --local-user ID',
    });
  }
  if (fed.status === 'rejected') throw fed.reason;
  if (drained.status === 'rejected') throw drained.reason;
}
