import { readKeyFile } from './load-keys.js';

export interface KeyInfo {
  /** Upper-case hex. */
  fingerprint: string;
  userIDs: string[];
  /** A secret key (else a public one). */
  secret: boolean;
  /** A secret key protected by a passphrase (a device cannot use it unattended). */
  protected: boolean;
  /** The public part, armored: what a build server encrypts to or a device trusts. */
  publicKey: string;
}

/** What the key file `file` holds (armored, binary or a keybox), key by key; KEY_UNREADABLE when it holds none. */
export async function inspectKeys(file: string): Promise<KeyInfo[]> {
  const { keys } = await readKeyFile(file);
  return keys.map(({ key }) => ({
    fingerprint: key.getFingerprint().toUpperCase(),
    userIDs: key.getUserIDs(),
    secret: key.isPrivate(),
    protected: key.isPrivate() && !key.isDecrypted(),
    publicKey: key.toPublic().armor(),
  }));
}
