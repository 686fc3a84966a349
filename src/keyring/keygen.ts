import { link, mkdir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as openpgp from 'openpgp';
import { FussyError, isErrno } from '../errors.js';
import { fsyncDir, tempBeside, unlinkIfExists, writeNewFile } from '../util/fs-atomic.js';
import { ensureTrustedDir } from '../util/trusted-path.js';
import { KEYRING_CODES } from './trusted-keyring.js';

export type KeyRole = 'signing' | 'device';

export interface KeygenOptions {
  role: KeyRole;
  name: string;
  email?: string;
  /** Protects a signing key; device keys stay unprotected (the device decrypts unattended). */
  passphrase?: string;
  /** RSA modulus size; default: Ed25519 signing primary + Curve25519 encryption subkey (v4). */
  rsaBits?: number;
  /** Signing: where the secret key goes. Device: ignored (it goes into the keyring dir). */
  secretKeyFile?: string;
  /** Where the public key goes (signing: for the devices' keyrings; device: for the build server). */
  publicKeyFile: string;
  /** Signing: also drop the public key here. Device: the secret key goes here. */
  keyringDir?: string;
  force?: boolean;
  date?: Date;
}

export interface KeygenResult {
  fingerprint: string;
  userID: string;
  secretKeyFile: string;
  publicKeyFile: string;
  keyringFile?: string;
}

/**
 * The Fussy docs' dozen gpg steps in one call. Keys are v4 with no AEAD feature flag, so
 * GnuPG 2.2 imports them and the packages made for them (docs/format.md).
 */
export async function keygen(o: KeygenOptions): Promise<KeygenResult> {
  if (o.role === 'device' && o.keyringDir === undefined) {
    throw new FussyError('USAGE', 'a device key needs --keyring DIR (where the device keeps its secret key)', { hint: 'e.g. --keyring /etc/fussy/keys' });
  }
  if (o.role === 'signing' && o.secretKeyFile === undefined) {
    throw new FussyError('USAGE', 'a signing key needs --secret-key FILE', { hint: 'keep that file on the build server only' });
  }
  // The device trusts what is in its keyring: it must be root's alone (util/trusted-path.ts).
  if (o.keyringDir !== undefined) ensureTrustedDir(o.keyringDir, { what: 'keyring', mode: 0o755, codes: KEYRING_CODES });
  const userID = o.email === undefined ? { name: o.name } : { name: o.name, email: o.email };
  const config: openpgp.PartialConfig = { v6Keys: false, aeadProtect: false };
  const algo = o.rsaBits !== undefined ? { type: 'rsa' as const, rsaBits: o.rsaBits } : { type: 'ecc' as const, curve: 'ed25519Legacy' as const };
  let key: openpgp.PrivateKey;
  try {
    ({ privateKey: key } = await openpgp.generateKey({ userIDs: [userID], ...algo, date: o.date, format: 'object', config }));
  } catch (err) {
    throw new FussyError('KEYGEN_FAILED', `cannot generate the key: ${(err as Error).message}`, { cause: err, hint: 'check --name/--email (an email must look like user@example.com) and --rsa' });
  }
  const fingerprint = key.getFingerprint().toUpperCase();
  const publicArmored = key.toPublic().armor();
  const secret = o.role === 'signing' && o.passphrase ? await openpgp.encryptKey({ privateKey: key, passphrase: o.passphrase, config }) : key;
  const secretArmored = secret.armor();
  const short = fingerprint.slice(-16);
  const secretKeyFile = o.role === 'device' ? join(o.keyringDir as string, `device-${short}.key`) : (o.secretKeyFile as string);
  const keyringFile = o.role === 'signing' && o.keyringDir !== undefined ? join(o.keyringDir, `signing-${short}.asc`) : undefined;

  const written: string[] = [];
  try {
    await writeNew(secretKeyFile, secretArmored, 0o600, o.force ?? false, written);
    await writeNew(o.publicKeyFile, publicArmored, 0o644, o.force ?? false, written);
    if (keyringFile !== undefined) await writeNew(keyringFile, publicArmored, 0o644, o.force ?? false, written);
  } catch (err) {
    for (const f of written) await unlinkIfExists(f);
    throw err;
  }
  return { fingerprint, userID: key.getUserIDs()[0] ?? o.name, secretKeyFile, publicKeyFile: o.publicKeyFile, keyringFile };
}

async function writeNew(file: string, text: string, mode: number, force: boolean, written: string[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = tempBeside(file, 'key');
  try {
    try {
      writeNewFile(tmp, text, mode, { sync: true });
    } catch (err) {
      // Name the key file asked for, not the temp name beside it.
      if (!(err instanceof FussyError && err.code === 'PERMISSION_DENIED')) throw err;
      throw new FussyError(err.code, `cannot write key file ${file}: ${String(err.details?.errno)}`, { cause: err, hint: err.details?.errno === 'EROFS' ? err.hint : `run fussy keygen as a user who may write ${dirname(file)}, or pass another path`, details: { ...err.details, path: dirname(file) } });
    }
    if (!force) {
      // link(2) fails with EEXIST instead of replacing: no key is ever overwritten by accident.
      try {
        await link(tmp, file);
      } catch (err) {
        if (isErrno(err, 'EEXIST')) {
          throw new FussyError('BAD_OUTPUT', `${file} already exists`, { hint: 'move it away first, or pass --force to replace it' });
        }
        throw err;
      }
      await unlink(tmp);
      await fsyncDir(dirname(file));
    } else {
      await rename(tmp, file);
      await fsyncDir(dirname(file));
    }
    written.push(file);
  } finally {
    await unlinkIfExists(tmp);
  }
}
