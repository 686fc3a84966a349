import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import { gpgHeldKeys } from './gpg-held-keys.js';
import { readKeyFile, type KeyLoad } from './load-keys.js';
import { readPolicy, type Policy } from './policy.js';
import { checkKeyring } from './trusted-keyring.js';

/** GnuPG home files that hold public keys (gpg 2.1+ and legacy), and the legacy secret ring. */
const PUBLIC_RINGS = ['pubring.kbx', 'pubring.gpg', 'trustedkeys.kbx', 'trustedkeys.gpg'];
const SECRET_RING = 'secring.gpg';
const KEY_FILE = /\.(asc|gpg|pgp|key)$/;
/** gpg's trust database: named like a key file, holds none (a damaged key file is an error, load-keys.ts). */
const NOT_KEYS = ['trustdb.gpg'];

export interface DeviceKeyring {
  dir: string;
  /** Trusted signers: every public key in the keyring. */
  signers: openpgp.Key[];
  /** Unprotected secret keys that can decrypt packages. */
  decryptionKeys: openpgp.PrivateKey[];
  /** gpg keeps secret keys here (keyrings made with `GNUPGHOME=... gpg --gen-key`). */
  gpgSecretKeys: boolean;
  /** Secret keys that could not be used (passphrase-protected), for the error message. */
  unusableSecret: string[];
  /**
   * Keyblocks of a well-formed keybox that OpenPGP.js cannot parse (an algorithm it lacks, a v3
   * key, damage inside a block): not trusted, and reported on every install that loads them.
   */
  unreadable: string[];
  /**
   * Every key read, trusted or not (decryption keys, protected secret keys, keys gpg holds): only
   * to name a key id in messages by its primary fingerprint, as fussy pack prints keys.
   */
  known: openpgp.Key[];
  policy: Policy;
}

/**
 * Load a device keyring dir (docs/format.md, Keyrings): a GnuPG home and/or key files. Decision: a key
 * that arrives with its secret part is a decryption key only, never a trusted signer; the device
 * key exists on every device, so trusting it to sign would let anyone who extracts it from one
 * device sign firmware for all. A public key file for it can still be added explicitly.
 * Nothing is read before the keyring and everything in it is found to be root's (trusted-keyring.ts).
 */
export async function loadDeviceKeyring(dir: string): Promise<DeviceKeyring> {
  checkKeyring(dir);
  const names = (await readdir(dir)).sort();
  const ring: DeviceKeyring = { dir, signers: [], decryptionKeys: [], gpgSecretKeys: names.includes('private-keys-v1.d'), unusableSecret: [], unreadable: [], known: [], policy: await readPolicy(dir) };
  const files = names.filter((n) => PUBLIC_RINGS.includes(n) || n === SECRET_RING || (KEY_FILE.test(n) && !NOT_KEYS.includes(n)));
  const publicFprs = new Set<string>();
  for (const name of files) {
    const file = join(dir, name);
    const st = await stat(file);
    if (!st.isFile()) continue;
    const load: KeyLoad = await readKeyFile(file); // a file that cannot be read is KEY_UNREADABLE (load-keys.ts)
    // A keyblock OpenPGP.js cannot parse inside a keybox whose framing holds is not trusted, and
    // not quietly: install reports it every time. Decision: not a refusal of every install, since
    // a Fussy device's GnuPG home may hold keys gpg reads and OpenPGP.js does not (v3 keys), and
    // refusing would stop updates of such a device for a key that signs nothing of fussy's. A
    // file that is no keybox and holds no key, or a keybox cut short, is KEY_UNREADABLE (load-keys.ts).
    for (const bad of load.skipped) ring.unreadable.push(`${bad.source}: ${bad.reason}`);
    for (const { key } of load.keys) {
      const fpr = key.getFingerprint();
      ring.known.push(key);
      if (key.isPrivate()) {
        if (key.isDecrypted()) ring.decryptionKeys.push(key);
        else ring.unusableSecret.push(`${fpr.toUpperCase()} in ${file} (passphrase-protected)`);
      } else if (!publicFprs.has(fpr)) {
        publicFprs.add(fpr);
        ring.signers.push(key);
      }
    }
  }
  // Public halves of the device's own keys (secret key files, or gpg's private-keys-v1.d) are
  // not signers: see the decision above.
  const secretFprs = new Set(ring.decryptionKeys.map((k) => k.getFingerprint()));
  const heldByGpg = ring.gpgSecretKeys ? await gpgHeldKeys(dir) : () => false;
  ring.signers = ring.signers.filter((k) => !secretFprs.has(k.getFingerprint()) && !heldByGpg(k));
  if (ring.signers.length === 0) {
    throw new FussyError('KEYRING_EMPTY', `keyring ${dir} has no public keys to trust`, {
      hint: 'copy the build server\'s public key into it (fussy keygen signing --keyring DIR, or gpg --export KEY > DIR/build.gpg)',
    });
  }
  if (ring.signers.length < ring.policy.threshold) {
    throw new FussyError('POLICY_INVALID', `keyring ${dir} asks for ${ring.policy.threshold} signatures but trusts only ${ring.signers.length} keys`, { hint: 'add keys or lower threshold in the policy file' });
  }
  return ring;
}
