import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type * as openpgp from 'openpgp';
import { FussyError, isErrno } from '../errors.js';
import { requireStarted, runProgram } from '../util/run.js';
import { parseSexp, sexpFind } from './sexp.js';
import { readSmallFile } from '../util/read-small-file.js';

/** gpg-agent's key files hold one key: a few KiB (RSA 4096 with protection ~3 KiB). */
const KEY_FILE_MAX = 1024 * 1024;

/** True for a key whose primary key or a subkey has its secret held by gpg. */
export type HeldByGpg = (key: openpgp.Key) => boolean;

/**
 * The keys of a GnuPG home whose secret gpg holds, as `gpg --list-secret-keys` lists them: those
 * with a primary key or subkey in private-keys-v1.d. gpg-agent's key files (`<keygrip>.key`, in
 * both the old canonical and the extended key format, gnupg agent/keyformat.txt) carry the
 * public parameters in the clear, so the keys are matched on those without starting gpg, which
 * cost 0.1-0.3 s on every install (issue 11). A file this cannot read makes it ask gpg, as before.
 */
export async function gpgHeldKeys(home: string): Promise<HeldByGpg> {
  const held = await agentKeyMaterial(join(home, 'private-keys-v1.d'));
  if (held !== undefined) return (key) => key.getKeys().some((k) => held.has(publicMaterial(k.keyPacket.publicParams) ?? ''));
  const fprs = new Set(await gpgSecretFingerprints(home));
  return (key) => fprs.has(key.getFingerprint());
}

/** The public parameter of every key file in the agent's directory; undefined when one cannot be read. */
async function agentKeyMaterial(dir: string): Promise<Set<string> | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
  const held = new Set<string>();
  for (const name of names.filter((n) => n.endsWith('.key'))) {
    // A key file is a few KiB; one that is not a plain, small file is one this cannot read: ask gpg.
    const f = readSmallFile(join(dir, name), KEY_FILE_MAX);
    const m = f === undefined || 'problem' in f ? undefined : keyFileMaterial(f.data);
    if (m === undefined) return undefined;
    held.add(m);
  }
  return held;
}

/** `(private-key (rsa (n #00C0...#) ...))`, bare or in the `Key:` field of the extended format. */
function keyFileMaterial(file: Buffer): string | undefined {
  const sexp = parseSexp(file[0] === 0x28 ? file : extendedKeyField(file));
  if (sexp === undefined || !Array.isArray(sexp)) return undefined;
  const algo = sexp[1];
  if (!Array.isArray(algo) || !Buffer.isBuffer(algo[0])) return undefined;
  // The parameter that identifies the public key, per algorithm (libgcrypt's key formats).
  const param = { rsa: 'n', ecc: 'q', ecdsa: 'q', ecdh: 'q', eddsa: 'q', dsa: 'y', elg: 'y' }[algo[0].toString('latin1')];
  const value = param === undefined ? undefined : sexpFind(algo, param)?.[1];
  return Buffer.isBuffer(value) ? normalize(value) : undefined;
}

/** The value of the `Key:` field: its first line and the continuation lines (leading blank). */
function extendedKeyField(file: Buffer): Buffer {
  const lines = file.toString('latin1').split('\n');
  const start = lines.findIndex((l) => /^Key:/i.test(l));
  if (start < 0) return Buffer.alloc(0);
  const value = [lines[start]?.slice(4) ?? ''];
  for (const l of lines.slice(start + 1)) {
    if (!/^[ \t]/.test(l)) break;
    value.push(l);
  }
  return Buffer.from(value.join('\n'), 'latin1');
}

/** OpenPGP's public parameter for the same comparison: RSA n, EC point Q or A, DSA/ElGamal y. */
function publicMaterial(params: object): string | undefined {
  const p = params as Record<string, unknown>;
  const value = p.n ?? p.Q ?? p.A ?? p.y;
  return value instanceof Uint8Array ? normalize(value) : undefined;
}

/**
 * Leading zeros dropped (libgcrypt's MPIs carry a sign byte, OpenPGP's do not), and the 0x40
 * prefix of a native-format EC point (RFC 9580 §11.2), which v6 Ed25519/X25519 keys leave out.
 */
function normalize(value: Uint8Array): string {
  let v = Buffer.from(value);
  let start = 0;
  while (start < v.length - 1 && v[start] === 0) start++;
  v = v.subarray(start);
  if (v[0] === 0x40 && [33, 57, 58].includes(v.length)) v = v.subarray(1);
  return v.toString('hex');
}

/** Fingerprints (lower-case hex) of the secret keys gpg holds in a GnuPG home. */
async function gpgSecretFingerprints(home: string): Promise<string[]> {
  const r = await runProgram('gpg', ['--homedir', home, '--batch', '--no-tty', '--with-colons', '--list-secret-keys'], { env: { GNUPGHOME: home } });
  requireStarted('gpg', r);
  if (r.exitCode !== 0) throw new FussyError('GPG_FAILED', `gpg --list-secret-keys failed for ${home}: ${(r.stderr ?? '').trim()}`, { hint: 'check that gpg can read the keyring' });
  return (r.stdout ?? Buffer.alloc(0))
    .toString('utf8')
    .split('\n')
    .filter((l) => l.startsWith('fpr:'))
    .map((l) => (l.split(':')[9] ?? '').toLowerCase());
}
