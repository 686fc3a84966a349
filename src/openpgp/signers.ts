import type * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import type { DeviceKeyring } from '../keyring/device-keyring.js';

export interface Verdict {
  /** Primary-key fingerprints (upper-case hex) of the keyring keys whose signatures verified. */
  signers: string[];
}

/** The signatures OpenPGP.js's verify found in a package (their `verified` settle once its data is read). */
export type FoundSignatures = Awaited<ReturnType<typeof openpgp.verify>>['signatures'];

export const hex = (id: openpgp.KeyID): string => id.toHex().toUpperCase();

/**
 * A key id as fussy pack prints keys (issue 11: errors named subkey ids the user never saw): the
 * primary fingerprint when the keyring holds the key, with a subkey's own id in parentheses.
 */
export function keyName(id: openpgp.KeyID, known: readonly openpgp.Key[]): string {
  // getKeys matches a wildcard (anonymous recipient) id to every key: it names no key.
  const key = /^0+$/.test(id.toHex()) ? undefined : known.find((k) => k.getKeys(id).length > 0);
  if (key === undefined) return hex(id);
  const fpr = key.getFingerprint().toUpperCase();
  return key.getKeyID().equals(id) ? fpr : `${fpr} (subkey ${hex(id)})`;
}

export function reject(message: string, hint: string, cause?: unknown): FussyError {
  return new FussyError('BAD_SIGNATURE', message, { hint, cause });
}

/**
 * A package's signatures against the keyring: none, or none by a keyring key, is refused now
 * (BAD_SIGNATURE); else the verdict, for once the data has been read: the signers whose
 * signatures verified and whose keys were valid at max(device clock, signature time), at least
 * the keyring policy's threshold of them, else BAD_SIGNATURE. `integrity`: the MDC of a package
 * decrypted by decryptSeipd, checked first.
 */
export function checkSigners(signatures: FoundSignatures, file: string, ring: DeviceKeyring, now: Date, integrity?: Promise<void>): () => Promise<Verdict> {
  const signerOf = (keyID: openpgp.KeyID): openpgp.Key | undefined => ring.signers.find((k) => k.getKeys(keyID).length > 0);
  if (signatures.length === 0) {
    throw reject(`${file} is not signed`, 'packages must be signed by a key in the keyring');
  }
  if (!signatures.some((s) => signerOf(s.keyID) !== undefined)) {
    const unreadable = ring.unreadable.length > 0 ? ` (keyblocks fussy cannot read there: ${ring.unreadable.join('; ')})` : '';
    throw reject(`${file} is signed by ${signatures.map((s) => keyName(s.keyID, ring.known)).join(', ')}, which is not in keyring ${ring.dir}${unreadable}`, 'install the signer\'s public key in the keyring if you trust it');
  }
  return async (): Promise<Verdict> => {
    await integrity;
    const signers = new Set<string>();
    const problems: string[] = [];
    for (const s of signatures) {
      const key = signerOf(s.keyID);
      if (key === undefined) continue; // an extra signature by an unknown key is ignored
      try {
        await s.verified;
        const sig = (await s.signature).packets[0];
        const created = sig?.created ?? null;
        const at = created !== null && created > now ? created : now;
        const expired = signatureExpiry(sig, at);
        if (expired !== undefined) {
          problems.push(`the signature by ${key.getFingerprint().toUpperCase()} expired at ${expired}`);
          continue;
        }
        await key.getSigningKey(s.keyID, at); // throws when expired or revoked at that time
        signers.add(key.getFingerprint().toUpperCase());
      } catch (err) {
        problems.push(`${keyName(s.keyID, ring.known)}: ${(err as Error).message}`);
      }
    }
    if (signers.size < ring.policy.threshold) {
      const need = ring.policy.threshold > 1 ? `${ring.policy.threshold} valid signatures by distinct keyring keys, got ${signers.size}` : 'a valid signature by a keyring key';
      throw reject(`${file}: signature check failed, need ${need}${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`, 'the package was tampered with, truncated, or signed by a key that is expired, revoked or not trusted');
    }
    return { signers: [...signers] };
  };
}

/**
 * When the signature carries an expiration time (RFC 4880 §5.2.3.10) that `at` has reached, that
 * time (ISO 8601); else undefined. gpg and gpgv refuse such a signature (EXPSIG, exit 1); OpenPGP.js
 * checks it only against a date, and the stream is verified without one (the device clock may be
 * in 1970), so it is checked here, at the same time as the key: max(device clock, signature time).
 */
function signatureExpiry(sig: openpgp.SignaturePacket | undefined, at: Date): string | undefined {
  const expires = sig?.getExpirationTime();
  return expires instanceof Date && at >= expires ? expires.toISOString() : undefined;
}
