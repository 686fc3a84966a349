import { createReadStream, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { FussyError, isErrno } from '../errors.js';
import { permissionDenied } from '../util/system-error.js';
import type { DeviceKeyring } from '../keyring/device-keyring.js';
import { gpgSessionKey } from '../keyring/gpg-session-key.js';
import { webStreamOf } from '../util/web-stream.js';
import { dearmor } from './armor.js';
import { inflateOuterLayer } from './outer-compression.js';
import { decryptSeipd, findSeipdV1, seipdCipher, type Decrypted } from './seipd.js';
import { checkSigners, hex, keyName, reject, type FoundSignatures, type Verdict } from './signers.js';
import { openWhole, WHOLE_MAX } from './open-whole.js';

export type { Verdict } from './signers.js';

export interface OpenedPackage {
  /** The signed payload (the .tar.gz), streamed. NOT trusted until `verdict` resolves. */
  data: AsyncIterable<Uint8Array>;
  /** Settles once `data` has been read to its end: the signers, or a BAD_SIGNATURE error. */
  verdict: () => Promise<Verdict>;
  encrypted: boolean;
  /** Stop reading the package (its file, a decryption thread); call it however the install ends. */
  close: () => void;
}

export interface OpenOptions {
  /** Cap on bytes produced by OpenPGP decompression (gpg compresses by default): bomb guard. */
  maxBytes: number;
  now: Date;
  /** Where to read it: the descriptor's /proc path (package-source.ts); default `file`, which names it in messages. */
  read?: string;
  /**
   * The package's bytes (PackageSource.size(): its size when it was opened): nothing past them is
   * read, whatever is appended to the file meanwhile. Default: its size when it is opened here.
   */
  size?: number;
}

/**
 * Open a package: binary or armored; signed, or signed and encrypted (docs/format.md). Plaintext is
 * streamed while OpenPGP.js checks it (allowUnauthenticatedStream, to keep memory flat), so the
 * caller must treat every byte as hostile and untrusted until `verdict()` resolves after the end
 * of the stream; OpenPGP.js releases all plaintext of a tampered message before failing
 * (docs/security.md, rule 1). Time checks are off while streaming (devices without an RTC boot in
 * 1970) and done by `verdict()` at max(device clock, signature time), which still refuses
 * expired and revoked keys and signatures past their own expiration time. A signature dated
 * after the device clock is accepted, as gpg and gpgv accept it: checking at its own time means
 * post-dating can only make a key's expiry or revocation hit sooner, never later.
 */
export async function openPackage(file: string, ring: DeviceKeyring, o: OpenOptions): Promise<OpenedPackage> {
  const src = o.read ?? file;
  const opened = await readHead(src, file);
  const size = o.size ?? opened.size;
  const head = opened.head.subarray(0, size); // not what was appended since it was opened
  if (head[0] === 0x1f && head[1] === 0x8b) {
    throw reject(`${file} is a plain gzip file (.tar.gz), not a signed package`, 'sign it: fussy pack, or tar czf - DIR | gpg --sign');
  }
  const armored = head.subarray(0, 256).toString('latin1').includes('-----BEGIN PGP MESSAGE');
  if (size <= WHOLE_MAX) {
    const whole = await openWhole(src, armored, file, ring, { ...o, size });
    if (whole !== undefined) return { ...whole, close: () => {} };
  }
  const config: openpgp.PartialConfig = { maxDecompressedMessageSize: o.maxBytes, allowUnauthenticatedStream: true };
  // 1 MiB reads, or fewer bytes for a smaller package: what each read allocates is garbage later.
  // `end` is inclusive; a package of 0 bytes reads at most one (refused as no OpenPGP message).
  const raw = createReadStream(src, { highWaterMark: Math.min(1 << 20, Math.max(HEAD, size + 1)), end: Math.max(0, size - 1) });
  // What else reads the package (a decryption thread); close() stops it and the file.
  let decrypting: Decrypted | undefined;
  const close = (): void => {
    raw.destroy();
    decrypting?.stop();
  };
  try {
    return { ...(await openWith(raw, armored ? undefined : head, file, ring, { ...o, size }, config, (d) => (decrypting = d))), close };
  } catch (err) {
    close();
    throw err;
  }
}

/** `binaryHead`: the first bytes of a binary package (undefined when armored). */
async function openWith(raw: ReadStream, binaryHead: Buffer | undefined, file: string, ring: DeviceKeyring, o: OpenOptions, config: openpgp.PartialConfig, decrypting: (d: Decrypted) => void): Promise<Omit<OpenedPackage, 'close'>> {
  const armored = binaryHead === undefined;
  let message: openpgp.Message<ReadableStream<Uint8Array>>;
  try {
    // Armor is decoded here, not by OpenPGP.js (armor.ts: bounded memory, nothing around it).
    message = await openpgp.readMessage({ binaryMessage: webStreamOf(inflateOuterLayer(armored ? dearmor(raw, file) : raw, o.maxBytes, file)), config });
  } catch (err) {
    if (err instanceof FussyError) throw err;
    throw reject(`${file} is not an OpenPGP message: ${(err as Error).message}`, 'is this a fussy package (.tar.gz.gpg / .tar.gz.asc)?', err);
  }

  const encryptedFor = message.getEncryptionKeyIDs();
  const encrypted = encryptedFor.length > 0;
  let result: { data: ReadableStream<Uint8Array>; signatures: FoundSignatures };
  let integrity: Promise<void> | undefined;
  try {
    if (encrypted) {
      const wanted = new Set(encryptedFor.map(hex));
      const decryptionKeys = ring.decryptionKeys.filter((k) => k.getKeys().some((sub) => wanted.has(hex(sub.getKeyID()))));
      if (decryptionKeys.length === 0 && !ring.gpgSecretKeys) {
        throw new FussyError('DECRYPT_FAILED', `${file} is encrypted for key ${encryptedFor.map((id) => keyName(id, ring.known)).join(', ')}, and keyring ${ring.dir} has no matching secret key${ring.unusableSecret.length > 0 ? ` (unusable: ${ring.unusableSecret.join('; ')})` : ''}`, {
          hint: 'the package was made for another device, or the device key is missing from the keyring',
        });
      }
      const sessionKey = decryptionKeys.length > 0 ? await firstSessionKey(message, decryptionKeys, config) : await gpgSessionKey(ring.dir, o.read ?? file, file);
      const seipd = binaryHead === undefined || seipdCipher(sessionKey) === undefined ? undefined : findSeipdV1(binaryHead);
      if (seipd !== undefined) {
        // AES SEIPDv1 (fussy pack, gpg -e): decrypted on a thread of its own, verified as a signed message.
        raw.destroy();
        const d = decryptSeipd(file, seipd, sessionKey, o.read, { end: o.size });
        decrypting(d);
        integrity = d.integrity;
        const inner = await openpgp.readMessage({ binaryMessage: webStreamOf(inflateOuterLayer(d.data, o.maxBytes, file, 'the decrypted data')), config });
        result = (await openpgp.verify({ message: inner, verificationKeys: ring.signers as openpgp.PublicKey[], expectSigned: true, format: 'binary', date: null, config })) as typeof result;
      } else {
        result = (await openpgp.decrypt({ message, sessionKeys: sessionKey, verificationKeys: ring.signers as openpgp.PublicKey[], expectSigned: true, format: 'binary', date: null as unknown as Date, config })) as typeof result;
      }
    } else {
      result = (await openpgp.verify({ message, verificationKeys: ring.signers as openpgp.PublicKey[], expectSigned: true, format: 'binary', date: null, config })) as typeof result;
    }
  } catch (err) {
    if (err instanceof FussyError) throw err;
    const msg = (err as Error).message;
    if (/not signed|no signatures/i.test(msg)) throw reject(`${file} is not signed`, 'packages must be signed by a key in the keyring (an encrypted-only package proves nothing about its origin)', err);
    if (encrypted) throw new FussyError('DECRYPT_FAILED', `${file} cannot be decrypted: ${msg}`, { cause: err, hint: 'the package was encrypted for another device key, or is damaged' });
    throw reject(`${file} cannot be read: ${msg}`, 'the package is damaged or not a fussy package', err);
  }

  const verdict = checkSigners(result.signatures, file, ring, o.now, integrity);
  return { data: guardStream(result.data, file), verdict, encrypted };
}

/** The session key from the first PKESK one of `keys` decrypts (OpenPGP.js tries them all). */
async function firstSessionKey(message: openpgp.Message<ReadableStream<Uint8Array>>, keys: openpgp.PrivateKey[], config: openpgp.PartialConfig): Promise<openpgp.SessionKey> {
  const found = await openpgp.decryptSessionKeys({ message, decryptionKeys: keys, date: null as unknown as Date, config });
  const first = found[0];
  if (first === undefined || first.algorithm === null) throw new Error('no session key could be decrypted');
  return { data: first.data, algorithm: first.algorithm as openpgp.enums.symmetricNames };
}

/** Errors from inside the OpenPGP stream (MDC, digest, truncation, inflate) are signature errors. */
async function* guardStream(stream: ReadableStream<Uint8Array>, file: string): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        if (err instanceof FussyError) throw err; // the envelope's own checks (packet grammar, trailing data, ...)
        throw reject(`${file} failed verification: ${(err as Error).message}`, 'the package was tampered with, truncated or damaged; nothing was installed', err);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Enough of the file for the session-key packets in front of the encrypted data (findSeipdV1). */
const HEAD = 64 * 1024;

async function readHead(src: string, file: string): Promise<{ head: Buffer; size: number }> {
  let fh;
  try {
    fh = await open(src, 'r');
  } catch (err) {
    if (isErrno(err, 'EACCES', 'EPERM')) throw permissionDenied(err, `cannot read package ${file}: ${err.code}`, { path: file, need: 'read' });
    if (isErrno(err, 'ENOENT', 'EISDIR')) {
      throw new FussyError('PACKAGE_UNREADABLE', `cannot read package ${file}: ${err.code}`, { cause: err, hint: 'check the path' });
    }
    throw err;
  }
  try {
    const buf = Buffer.alloc(HEAD);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return { head: buf.subarray(0, bytesRead), size: (await fh.stat()).size };
  } finally {
    await fh.close();
  }
}
