import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { MAX_ENTRIES } from '../archive/manifest.js';

/**
 * The keyring's `policy` file: `key = value` lines, `#` comments. It lives in the keyring dir, so
 * it is updated together with the keys (/etc/fussy -> /opt/firmware/current/etc/fussy).
 *   threshold = N         packages need valid signatures by N distinct keyring keys (default 1)
 *   legacy = allow|refuse packages without a fussy manifest (made by the original Fussy
 *                         pipeline): installed (default, for compatibility) or refused (exit 21);
 *                         they carry no sequence, so once the device has recorded one they are
 *                         refused as possible downgrades unless --allow-downgrade
 *                         (install/install-policy.ts checkLegacy)
 *   max-entries = N       the most files, directories and links a release may have, 100 up to
 *                         the default MAX_ENTRIES (archive/manifest.ts): it bounds the memory an
 *                         unsigned package can make install use before its signature is checked
 *                         (docs/security.md), so a device with little memory lowers it
 */
export interface Policy {
  threshold: number;
  legacy: 'allow' | 'refuse';
  maxEntries: number;
}

export const DEFAULT_POLICY: Policy = { threshold: 1, legacy: 'allow', maxEntries: MAX_ENTRIES };

export async function readPolicy(keyringDir: string): Promise<Policy> {
  const file = join(keyringDir, 'policy');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { ...DEFAULT_POLICY };
    throw err;
  }
  const policy: Policy = { ...DEFAULT_POLICY };
  const bad = (line: number, why: string): never => {
    throw new FussyError('POLICY_INVALID', `${file}:${line}: ${why}`, { hint: 'fix the policy file; fussy refuses to guess a security policy' });
  };
  for (const [i, rawLine] of text.split('\n').entries()) {
    const line = rawLine.replace(/#.*/, '').trim();
    if (line === '') continue;
    const m = /^([a-z-]+)\s*=\s*(.*)$/.exec(line);
    if (m === null) bad(i + 1, `cannot parse "${rawLine.trim()}" (expected key = value)`);
    const [, key, value] = m as RegExpExecArray;
    if (key === 'threshold') {
      if (!/^[1-9]\d*$/.test(value as string)) bad(i + 1, `threshold must be a whole number >= 1, not "${value}"`);
      policy.threshold = Number(value);
    } else if (key === 'legacy') {
      if (value !== 'allow' && value !== 'refuse') bad(i + 1, `legacy must be allow or refuse, not "${value}"`);
      policy.legacy = value as Policy['legacy'];
    } else if (key === 'max-entries') {
      const n = /^[1-9]\d*$/.test(value as string) ? Number(value) : NaN;
      if (!(n >= 100 && n <= MAX_ENTRIES)) bad(i + 1, `max-entries must be a whole number from 100 to ${MAX_ENTRIES}, not "${value}"`);
      policy.maxEntries = n;
    } else {
      bad(i + 1, `unknown setting "${key}"`);
    }
  }
  return policy;
}
