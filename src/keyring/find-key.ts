import type * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import type { KeyLoad, LoadedKey } from './load-keys.js';

/** "ABCD 1234..." or "0xabcd1234..." -> "ABCD1234..." when it is hex, else undefined. */
function asHex(id: string): string | undefined {
  const s = id.replace(/^0x/i, '').replace(/\s+/g, '').toUpperCase();
  return /^[0-9A-F]+$/.test(s) && [8, 16, 40, 64].includes(s.length) ? s : undefined;
}

function keyHexIds(key: openpgp.Key): string[] {
  const ids: string[] = [];
  for (const k of [key, ...key.getSubkeys()]) {
    ids.push(k.getFingerprint().toUpperCase(), k.getKeyID().toHex().toUpperCase());
  }
  return ids;
}

/**
 * Does `key` answer to `id`? Like gpg's key specifiers (gpg(1) "HOW TO SPECIFY A USER ID"):
 * a fingerprint or long/short key id of the key or a subkey, an email address (bare or in <>),
 * or else a case-insensitive substring of a user ID.
 */
export function keyMatches(key: openpgp.Key, id: string): boolean {
  const hex = asHex(id);
  if (hex !== undefined) {
    const ids = keyHexIds(key);
    if (ids.some((k) => k === hex || (hex.length === 8 && k.length === 16 && k.endsWith(hex)))) return true;
  }
  const uids = key.getUserIDs().map((u) => u.toLowerCase());
  const needle = id.trim().toLowerCase();
  const email = needle.replace(/^<|>$/g, '');
  if (email.includes('@')) return uids.some((u) => u.includes(`<${email}>`) || u === email);
  return needle !== '' && uids.some((u) => u.includes(needle));
}

export function describeKey(k: LoadedKey): string {
  const uid = k.key.getUserIDs()[0] ?? '(no user id)';
  return `${k.key.getFingerprint().toUpperCase()} ${uid} [${k.source}]`;
}

/** Exactly one key (counting the same fingerprint from several sources once) or a clear error. */
export function findKey(load: KeyLoad, id: string, what: string): LoadedKey {
  const seen = new Map<string, LoadedKey>();
  for (const k of load.keys) {
    if (!keyMatches(k.key, id)) continue;
    const fpr = k.key.getFingerprint();
    const prev = seen.get(fpr);
    // Prefer a source that has the secret part, then the first one seen.
    if (prev === undefined || (!prev.key.isPrivate() && k.key.isPrivate())) seen.set(fpr, k);
  }
  const hits = [...seen.values()];
  if (hits.length === 1) return hits[0] as LoadedKey;
  if (hits.length === 0) {
    const sources = [...new Set(load.keys.map((k) => k.source))];
    const skipped = load.skipped.map((s) => `${s.source}: ${s.reason}`);
    throw new FussyError('KEY_NOT_FOUND', `no ${what} matches "${id}" (searched ${sources.length > 0 ? sources.join(', ') : 'no key files'})`, {
      hint: `give a fingerprint, key id or email of one of the ${seen.size + load.keys.length} known keys, or add the key with --recipient-key FILE${skipped.length > 0 ? `; unreadable keys: ${skipped.join('; ')}` : ''}`,
      details: { candidates: load.keys.map(describeKey) },
    });
  }
  throw new FussyError('KEY_AMBIGUOUS', `"${id}" matches ${hits.length} keys: ${hits.map(describeKey).join('; ')}`, {
    hint: 'use the full fingerprint of the one you mean',
    details: { candidates: hits.map(describeKey) },
  });
}
