import { lstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { sanEntry } from '../util/host-name.js';
import { acquireLock, type LockHandle } from '../lock/pid-lock.js';

/**
 * The CA directory (fussy pki init): ca.key (0600), ca.crt, ca.crl (0644), openssl's `ca`
 * database (index.txt, serial, crlnumber, newcerts/<SERIAL>.pem: every certificate issued),
 * openssl.cnf, and issued/<NAME>/ (what `issue` writes by default). The directory is 0700.
 */
export const CA_FILES = { key: 'ca.key', cert: 'ca.crt', crl: 'ca.crl', config: 'openssl.cnf', index: 'index.txt' } as const;

/** Names that tell a directory holds a CA: any one of them, and init refuses to touch it. */
export const CA_MARKERS: readonly string[] = [CA_FILES.key, CA_FILES.cert, CA_FILES.config, CA_FILES.index];

export const MODES = { dir: 0o700, key: 0o600, cert: 0o644 } as const;

/** The CA's files must all be there: a directory that is not a fussy CA is left alone. */
export function requireCa(dir: string): void {
  for (const name of [CA_FILES.key, CA_FILES.cert, CA_FILES.config, CA_FILES.index]) {
    try {
      if (lstatSync(join(dir, name)).isFile()) continue;
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
    }
    throw new FussyError('PKI_NOT_A_CA', `${dir} is not a CA made by fussy pki init (no ${name})`, {
      hint: `create one with fussy pki init ${dir}, or name yours with --ca-dir`,
      details: { path: dir },
    });
  }
}

/**
 * One pki command at a time changes a CA: openssl's database (index.txt, serial) is read,
 * updated and renamed by each `openssl ca`, and two at once would lose an entry.
 */
export function lockCa(dir: string, what: string, now?: Date): Promise<LockHandle> {
  return acquireLock(join(dir, 'lock'), what, { now, dirWhat: 'CA directory', dirMode: MODES.dir });
}

/**
 * A certificate name: one safe path component (it names issued/<NAME>/ and <NAME>.crt) and
 * nothing openssl's -subj or config would read as syntax. The daemon's names follow the same rule.
 */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A DNS name (RFC 1123 labels; a leading "*." for a wildcard) or an IPv4/IPv6 address. */

export function checkName(name: string, what: string): void {
  if (!SAFE_NAME.test(name)) {
    throw new FussyError('PKI_BAD_NAME', `${what} ${JSON.stringify(name)} is not a safe name: letters, digits, ".", "_" and "-", not starting with "." or "-", at most 128`, {
      hint: 'a device name (unit-17.example) or a person (alice)',
      details: { name },
    });
  }
}

/** subjectAltName entries of a server certificate: "DNS:x" or "IP:a.b.c.d". */
export function sanEntries(names: string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    const entry = isIP(n) !== 0 ? `IP:${n}` : sanEntry(n);
    if (entry === undefined) throw new FussyError('PKI_BAD_NAME', `the server name or --san ${JSON.stringify(n)} is neither a DNS name nor an IP address`, { hint: 'e.g. --san unit-17.example --san 192.0.2.17', details: { san: n } });
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

/** A serial as openssl writes it in index.txt: upper-case hex, no leading zeros beyond an even length. */
export function normalSerial(serial: string): string {
  if (!/^(0x)?[0-9A-Fa-f]{1,40}$/.test(serial)) throw new FussyError('PKI_BAD_NAME', `${JSON.stringify(serial)} is not a serial number (hexadecimal)`, { hint: 'fussy pki ls shows the serials' });
  return serial.replace(/^0x/, '').replace(/^0+(?=.)/, '').toUpperCase();
}

/** One line of index.txt (ca(1ssl), "the index file"): tab-separated. */
export interface IndexEntry {
  status: 'V' | 'R' | 'E';
  expires: Date;
  revoked?: Date;
  /** As openssl writes it (upper-case hex, an even number of digits): newcerts/<serial>.pem. */
  serial: string;
  cn: string;
}

/** index.txt, in the order the certificates were issued. */
export async function readIndex(dir: string): Promise<IndexEntry[]> {
  const text = await readFile(join(dir, CA_FILES.index), 'utf8');
  const entries: IndexEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [status, expires, revoked, serial, , subject] = line.split('\t');
    if ((status !== 'V' && status !== 'R' && status !== 'E') || expires === undefined || serial === undefined || subject === undefined) {
      throw new FussyError('PKI_NOT_A_CA', `${join(dir, CA_FILES.index)} has a line openssl did not write: ${JSON.stringify(line.slice(0, 120))}`, { hint: 'restore index.txt from index.txt.old or a backup' });
    }
    const when = revoked === undefined || revoked === '' ? undefined : asn1Time(revoked.split(',')[0] ?? '');
    entries.push({ status, expires: asn1Time(expires), ...(when === undefined ? {} : { revoked: when }), serial, cn: /\/CN=([^/]*)/.exec(subject)?.[1] ?? '' });
  }
  return entries;
}

/** UTCTime YYMMDDHHMMSSZ (years 1950-2049) or GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 4.1.2.5). */
export function asn1Time(t: string): Date {
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(t);
  if (m === null) throw new Error(`not an ASN.1 time: ${t}`);
  const y = Number(m[1]);
  const year = m[1]?.length === 4 ? y : y < 50 ? 2000 + y : 1900 + y;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** GeneralizedTime for openssl ca -startdate / -enddate. */
export function generalizedTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}
