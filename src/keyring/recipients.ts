import { homedir } from 'node:os';
import { join } from 'node:path';
import type * as openpgp from 'openpgp';
import { assertGpgCompatible } from './gpg-compat.js';
import { findKey } from './find-key.js';
import { readGnupgHome, readKeyFile, type KeyLoad } from './load-keys.js';

/** $GNUPGHOME, else ~/.gnupg: where gpg itself would look. */
export function defaultGnupgHome(env: Record<string, string | undefined>): string {
  return env.GNUPGHOME ?? join(homedir(), '.gnupg');
}

/**
 * `-e ID` for each id: looked up in the --recipient-key files first, then the GnuPG home.
 * Every key must be able to encrypt at `date` in a form GnuPG 2.2 can decrypt.
 */
export async function resolveRecipients(ids: string[], keyFiles: string[], gnupgHome: string | undefined, date: Date): Promise<openpgp.Key[]> {
  if (ids.length === 0) return [];
  const load: KeyLoad = { keys: [], skipped: [] };
  for (const f of keyFiles) {
    const part = await readKeyFile(f);
    load.keys.push(...part.keys);
    load.skipped.push(...part.skipped);
  }
  if (gnupgHome !== undefined) {
    const part = await readGnupgHome(gnupgHome);
    load.keys.push(...part.keys);
    load.skipped.push(...part.skipped);
  }
  const keys: openpgp.Key[] = [];
  for (const id of ids) {
    const { key } = findKey(load, id, 'recipient key');
    await assertGpgCompatible(key, 'encryption', date);
    if (!keys.some((k) => k.getFingerprint() === key.getFingerprint())) keys.push(key.isPrivate() ? key.toPublic() : key);
  }
  return keys;
}
