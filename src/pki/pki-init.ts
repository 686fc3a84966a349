import { generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { FussyError, isErrno } from '../errors.js';
import { fsyncDir, tempBeside, writeNewFile } from '../util/fs-atomic.js';
import { CA_FILES, CA_MARKERS, MODES } from './ca-dir.js';
import { caConfig, openssl } from './openssl.js';

export interface PkiInitOptions {
  /** The CA directory to create (its parents too); it must not exist, or be empty. */
  dir: string;
  /** The CA's CN; default "fussy fleet CA". */
  name?: string;
  /** Validity of the CA certificate; default 3650 days. */
  days?: number;
  /** Next update of the CRLs this CA makes, in days; default 30 (openssl.cnf default_crl_days). */
  crlDays?: number;
}

export interface PkiInitResult {
  dir: string;
  cert: string;
  crl: string;
  name: string;
  fingerprint256: string;
  notAfter: string;
}

/**
 * A new CA key (EC P-256: the curve every TLS stack, Node's and OpenSSL 3's included, accepts
 * for ECDSA in TLS 1.2 and 1.3, server and client auth alike; Ed25519 certificates are not
 * accepted by TLS 1.2 clients of OpenSSL < 1.1.1 nor by browsers), in PKCS#8 PEM.
 */
export async function newKey(): Promise<string> {
  const { privateKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return privateKey;
}

/**
 * Create a CA directory. The tree is built in a hidden staging directory beside DIR and renamed
 * into place, so DIR is either absent (or empty, as before) or a complete CA; a DIR that holds a
 * CA, or anything, is refused and left as it was.
 */
export async function pkiInit(o: PkiInitOptions): Promise<PkiInitResult> {
  const dir = resolve(o.dir);
  const name = o.name ?? 'fussy fleet CA';
  // The CN goes into -subj: the same characters as a certificate name, plus spaces.
  if (!/^[A-Za-z0-9_][A-Za-z0-9 ._-]{0,63}$/.test(name)) {
    throw new FussyError('PKI_BAD_NAME', `the CA name ${JSON.stringify(name)} may hold letters, digits, spaces, ".", "_" and "-" (at most 64)`, { hint: 'e.g. --name "Acme fleet CA"' });
  }
  refuseExisting(dir);
  mkdirSync(dirname(dir), { recursive: true, mode: MODES.dir });
  const stage = tempBeside(dir, 'pki');
  mkdirSync(stage, { mode: MODES.dir });
  try {
    chmodSync(stage, MODES.dir);
    mkdirSync(join(stage, 'newcerts'), { mode: MODES.dir });
    mkdirSync(join(stage, 'issued'), { mode: MODES.dir });
    writeNewFile(join(stage, CA_FILES.config), caConfig({ crlDays: o.crlDays ?? 30 }), MODES.cert);
    writeNewFile(join(stage, CA_FILES.index), '', MODES.cert);
    writeNewFile(join(stage, 'index.txt.attr'), 'unique_subject = no\n', MODES.cert);
    writeNewFile(join(stage, 'serial'), firstSerial() + '\n', MODES.cert);
    writeNewFile(join(stage, 'crlnumber'), '1000\n', MODES.cert);
    writeNewFile(join(stage, CA_FILES.key), await newKey(), MODES.key, { sync: true });
    const days = String(o.days ?? 3650);
    const cert = await openssl(['req', '-new', '-x509', '-config', CA_FILES.config, '-key', CA_FILES.key, '-subj', `/CN=${name}`, '-days', days, '-extensions', 'ca_ext', '-sha256'], { cwd: stage, what: 'make the CA certificate' });
    writeNewFile(join(stage, CA_FILES.cert), cert, MODES.cert, { sync: true });
    const crl = await openssl(['ca', '-gencrl', '-batch', '-config', CA_FILES.config], { cwd: stage, what: 'make the first (empty) CRL' });
    writeNewFile(join(stage, CA_FILES.crl), crl, MODES.cert, { sync: true });
    await fsyncDir(stage);
    await placeStage(stage, dir);
    const x = new X509Certificate(cert);
    return { dir, cert: join(dir, CA_FILES.cert), crl: join(dir, CA_FILES.crl), name, fingerprint256: x.fingerprint256, notAfter: new Date(x.validTo).toISOString() };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** A CA, or anything else, at DIR stays as it is. An empty directory is replaced by the CA. */
function refuseExisting(dir: string): void {
  let entries: string[];
  try {
    if (!lstatSync(dir).isDirectory()) throw notEmpty(dir, 'it is not a directory (a symbolic link is not followed)');
    entries = readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  if (entries.some((e) => CA_MARKERS.includes(e))) {
    throw new FussyError('PKI_CA_EXISTS', `${dir} already holds a CA; nothing was changed`, { hint: `use it (fussy pki ls --ca-dir ${dir}), or name a new directory`, details: { path: dir } });
  }
  if (entries.length > 0) throw notEmpty(dir, `it holds ${entries.length} other entr${entries.length === 1 ? 'y' : 'ies'}`);
}

function notEmpty(dir: string, why: string): FussyError {
  return new FussyError('PKI_DIR_NOT_EMPTY', `cannot make a CA in ${dir}: ${why}; nothing was changed`, { hint: 'name a new (or empty) directory', details: { path: dir } });
}

/** rename(2) onto DIR: allowed when DIR is missing or an empty directory; anything that appeared meanwhile makes it fail. */
async function placeStage(stage: string, dir: string): Promise<void> {
  try {
    await rename(stage, dir);
  } catch (err) {
    if (isErrno(err, 'ENOTEMPTY', 'EEXIST')) refuseExisting(dir);
    if (isErrno(err, 'ENOTEMPTY', 'EEXIST', 'ENOTDIR', 'EISDIR')) throw notEmpty(dir, 'something else appeared there');
    throw err;
  }
  await fsyncDir(dirname(dir));
}

/** 63 random bits (RFC 5280 4.1.2.2: positive, at most 20 octets; CA/B asks for 64 bits of entropy in spirit). */
function firstSerial(): string {
  const b = randomBytes(8);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x10;
  return b.toString('hex').toUpperCase();
}
