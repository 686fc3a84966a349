import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { FussyError, isErrno, isSystemError } from '../errors.js';
import { requireStarted, runProgram } from '../util/run.js';
import { permissionDenied } from '../util/system-error.js';
import { isKeybox, keyboxKeyblocks } from './keybox.js';

export interface LoadedKey {
  key: openpgp.Key;
  /** Where it came from, for messages ("pubring.kbx", "device.asc", "gpg --export"). */
  source: string;
}

export interface KeyLoad {
  keys: LoadedKey[];
  /** Keyblocks that could not be parsed, with the reason: shown when a lookup fails. */
  skipped: { source: string; reason: string }[];
}

const ARMOR = '-----BEGIN PGP';

/** Parse one key file: armored, binary (concatenated transferable keys), or a keybox. */
export async function readKeyFile(file: string): Promise<KeyLoad> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    if (isErrno(err, 'EACCES')) throw permissionDenied(err, `cannot read key file ${file}: ${err.code}`, { path: file, need: 'read' });
    if (isErrno(err, 'ENOENT', 'EISDIR')) {
      throw new FussyError('KEY_NOT_FOUND', `cannot read key file ${file}: ${err.code}`, { cause: err, hint: 'check the path' });
    }
    if (!isSystemError(err)) throw err;
    throw new FussyError('KEY_UNREADABLE', `cannot read key file ${file}: ${err.code} (${err.message})`, { cause: err, hint: 'check the disk it is on, or restore the file', details: { path: file } });
  }
  return parseKeys(buf, file);
}

/**
 * The keys in `buf` (an empty file holds none, as gpg leaves a new `pubring.gpg`). A file that is
 * not a keybox and holds no readable key (garbage, a key file cut short) is KEY_UNREADABLE naming it:
 * skipping it would hide that a key somebody meant to trust or use is not there (issue 11). Inside
 * a keybox whose framing holds, a keyblock openpgp.js cannot parse (an algorithm it lacks, a v3
 * key) is listed in `skipped` and the others are read; the device keyring refuses those too.
 */
export async function parseKeys(buf: Buffer, source: string): Promise<KeyLoad> {
  const load: KeyLoad = { keys: [], skipped: [] };
  if (buf.length === 0) return load;
  const keybox = isKeybox(buf);
  const blocks = keybox ? keyboxKeyblocks(buf, source) : [buf];
  for (const [i, block] of blocks.entries()) {
    try {
      const text = block.subarray(0, 64).toString('latin1');
      const keys = text.includes(ARMOR)
        ? await openpgp.readKeys({ armoredKeys: block.toString('utf8') })
        : await openpgp.readKeys({ binaryKeys: block });
      for (const key of keys) load.keys.push({ key, source });
    } catch (err) {
      if (!keybox) {
        throw new FussyError('KEY_UNREADABLE', `${source} holds no readable OpenPGP key: ${(err as Error).message}`, {
          cause: err,
          hint: `replace it with the key it was meant to hold (gpg --export KEY > FILE, or fussy keygen), or remove it`,
          details: { path: source },
        });
      }
      // openpgp.js rejects keyblocks it cannot parse (unknown algorithms, v3 keys): report, go on.
      load.skipped.push({ source: `${source} (keyblock ${i + 1})`, reason: (err as Error).message });
    }
  }
  return load;
}

/**
 * Public keys of a GnuPG home: `pubring.kbx` and `pubring.gpg` are read natively; when neither
 * exists (gpg 2.4 homes using keyboxd keep keys in an SQLite `public-keys.d/pubring.db`), ask gpg.
 */
export async function readGnupgHome(home: string, files = ['pubring.kbx', 'pubring.gpg']): Promise<KeyLoad> {
  const load: KeyLoad = { keys: [], skipped: [] };
  let found = false;
  for (const name of files) {
    let buf: Buffer;
    try {
      buf = await readFile(join(home, name));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) continue;
      throw err;
    }
    found = true;
    const part = await parseKeys(buf, join(home, name));
    load.keys.push(...part.keys);
    load.skipped.push(...part.skipped);
  }
  if (!found && (await exists(join(home, 'public-keys.d')))) {
    const r = await runProgram('gpg', ['--homedir', home, '--batch', '--no-tty', '--export'], { env: { GNUPGHOME: home } });
    requireStarted('gpg', r);
    if (r.exitCode !== 0) {
      throw new FussyError('GPG_FAILED', `gpg --export failed for ${home}: ${(r.stderr ?? '').trim()}`, { hint: 'check that gpg can read that home' });
    }
    const part = await parseKeys(r.stdout ?? Buffer.alloc(0), `gpg --export (${home})`);
    load.keys.push(...part.keys);
    load.skipped.push(...part.skipped);
  }
  return load;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}
