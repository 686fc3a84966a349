import * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import { describeKey } from './find-key.js';
import { assertGpgCompatible } from './gpg-compat.js';
import { readKeyFile } from './load-keys.js';

/** Asked once per passphrase-protected key; the CLI reads a file, the environment or the TTY. */
export type PassphraseSource = (keyDescription: string) => Promise<string>;

/**
 * Load `--signing-key` files: each must hold exactly one secret key, usable for signing at
 * `date` and by GnuPG 2.2, and is unlocked with the passphrase source when protected.
 */
export async function loadSigningKeys(files: string[], passphrase: PassphraseSource | undefined, date: Date): Promise<openpgp.PrivateKey[]> {
  const keys: openpgp.PrivateKey[] = [];
  for (const file of files) {
    const load = await readKeyFile(file);
    const secret = load.keys.filter((k) => k.key.isPrivate());
    if (secret.length !== 1) {
      const why = load.skipped.length > 0 ? `: ${load.skipped.map((s) => s.reason).join('; ')}` : '';
      throw new FussyError('KEY_UNUSABLE', `${file} holds ${secret.length} secret keys${why}; a signing key file must hold exactly one`, {
        hint: 'export it with gpg --export-secret-keys KEYID > FILE, or make one with fussy keygen signing',
      });
    }
    const loaded = secret[0] as (typeof secret)[number];
    let key = loaded.key as openpgp.PrivateKey;
    await assertGpgCompatible(key, 'signing', date);
    if (!key.isDecrypted()) {
      if (passphrase === undefined) {
        throw new FussyError('BAD_PASSPHRASE', `signing key ${file} is passphrase-protected and no passphrase was given`, {
          hint: 'pass --passphrase-file FILE or set FUSSY_PASSPHRASE',
        });
      }
      const pass = await passphrase(describeKey(loaded));
      try {
        key = await openpgp.decryptKey({ privateKey: key, passphrase: pass });
      } catch (err) {
        throw new FussyError('BAD_PASSPHRASE', `wrong passphrase for signing key ${file} (${key.getFingerprint().toUpperCase()})`, {
          cause: err,
          hint: 'check --passphrase-file / FUSSY_PASSPHRASE',
        });
      }
    }
    keys.push(key);
  }
  return keys;
}
