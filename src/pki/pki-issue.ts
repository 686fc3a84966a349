import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { commitFile, tempBeside, unlinkIfExists, writeAtomic, writeNewFile } from '../util/fs-atomic.js';
import { CA_FILES, checkName, generalizedTime, lockCa, MODES, readIndex, requireCa, sanEntries } from './ca-dir.js';
import { openssl } from './openssl.js';
import { newKey } from './pki-init.js';

export type CertKind = 'server' | 'client';

export interface PkiIssueOptions {
  /** The CA directory (pkiInit). */
  dir: string;
  /** server: a device's TLS certificate (serverAuth); client: an operator's (clientAuth). */
  kind: CertKind;
  /** The CN: a device's host name or address, or the operator's identity (the roles file names it). */
  name: string;
  /** server: subjectAltNames (DNS names, IP addresses) besides NAME, which is always one. */
  sans?: string[];
  /** Validity in days; default 825 (server: a device is visited rarely) or 365 (client). */
  days?: number;
  /** Exact validity instead of `days` (openssl ca -startdate/-enddate); tests make expired certificates with it. */
  notBefore?: Date;
  notAfter?: Date;
  /** Where <NAME>.crt, <NAME>.key and ca.crt go; default DIR/issued/<NAME>/. */
  out?: string;
  /** Sign this PEM certificate request (made where its key lives) instead of making a key here. */
  csr?: string;
  /** Issue although the CN has a valid certificate (a rollover), and replace files in `out`. */
  force?: boolean;
  /** For "valid" (not expired) in the duplicate check; default now. */
  now?: Date;
}

export interface PkiIssueResult {
  kind: CertKind;
  name: string;
  serial: string;
  sans: string[];
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
  out: string;
  cert: string;
  /** Absent when a CSR was signed: the key is wherever the request was made. */
  key?: string;
  ca: string;
}

const MAX_CSR_BYTES = 64 * 1024;

/**
 * Issue a certificate from the CA in `dir`. The key is made in the output directory (a temp
 * file there, renamed to <NAME>.key once the certificate is signed) and nowhere else; with `csr`
 * no key is made at all. The subject is exactly /CN=NAME and the extensions are the kind's
 * (openssl.cnf server_ext / client_ext), whatever a CSR asks for.
 */
export async function pkiIssue(o: PkiIssueOptions): Promise<PkiIssueResult> {
  const dir = resolve(o.dir);
  if (o.kind !== 'server' && o.kind !== 'client') throw new Error(`bad certificate kind ${String(o.kind)}`);
  checkName(o.name, o.kind === 'server' ? 'the server name' : 'the client CN');
  const sans = o.kind === 'server' ? sanEntries([o.name, ...(o.sans ?? [])]) : [];
  if (o.kind === 'client' && (o.sans ?? []).length > 0) throw new FussyError('USAGE', 'a client certificate has no --san: its identity is its CN', { hint: 'drop --san' });
  const validity = o.notBefore !== undefined || o.notAfter !== undefined ? dates(o) : ['-days', String(o.days ?? (o.kind === 'server' ? 825 : 365))];
  requireCa(dir);
  const csr = o.csr === undefined ? undefined : await readCsr(resolve(o.csr), dir);
  const out = resolve(o.out ?? join(dir, 'issued', o.name));
  const paths = { cert: join(out, `${o.name}.crt`), key: join(out, `${o.name}.key`), ca: join(out, CA_FILES.cert) };
  const lock = await lockCa(dir, `fussy pki issue ${o.name}`, o.now);
  let tmpKey: string | undefined;
  try {
    const now = o.now ?? new Date();
    const taken = (await readIndex(dir)).filter((e) => e.status === 'V' && e.cn === o.name && e.expires > now);
    if (taken.length > 0 && o.force !== true) {
      throw new FussyError('PKI_NAME_TAKEN', `${o.name} already has a valid certificate (serial ${taken.map((e) => e.serial).join(', ')})`, {
        hint: `revoke it first (fussy pki revoke ${o.name}), or pass --force to issue a second one for a rollover`,
        details: { name: o.name, serials: taken.map((e) => e.serial) },
      });
    }
    for (const p of csr === undefined ? [paths.cert, paths.key] : [paths.cert]) {
      if (existsSync(p) && o.force !== true) throw new FussyError('PKI_FILE_EXISTS', `${p} exists`, { hint: 'pass --force to replace it, or another --out', details: { path: p } });
    }
    mkdirSync(out, { recursive: true, mode: MODES.dir });
    let request = csr;
    if (request === undefined) {
      tmpKey = tempBeside(paths.key, 'key');
      writeNewFile(tmpKey, await newKey(), MODES.key, { sync: true });
      request = await openssl(['req', '-new', '-config', CA_FILES.config, '-key', tmpKey, '-subj', `/CN=${o.name}`], { cwd: dir, what: `make the request of ${o.name}` });
    }
    const pem = await openssl(['ca', '-batch', '-notext', '-config', CA_FILES.config, '-in', '-', '-subj', `/CN=${o.name}`, '-extensions', `${o.kind}_ext`, ...validity], {
      cwd: dir,
      input: request,
      san: sans.join(','),
      what: `sign the ${o.kind} certificate of ${o.name}`,
    });
    const x = new X509Certificate(pem);
    if (tmpKey !== undefined) {
      await commitFile(tmpKey, paths.key);
      tmpKey = undefined;
    }
    await writeAtomic(paths.cert, pem.toString('utf8'), { mode: MODES.cert, purpose: 'crt' });
    await writeAtomic(paths.ca, await readFile(join(dir, CA_FILES.cert), 'utf8'), { mode: MODES.cert, purpose: 'crt' });
    return {
      kind: o.kind,
      name: o.name,
      serial: x.serialNumber.toUpperCase(),
      sans: sans.map((s) => s.replace(/^(DNS|IP):/, '')),
      notBefore: new Date(x.validFrom).toISOString(),
      notAfter: new Date(x.validTo).toISOString(),
      fingerprint256: x.fingerprint256,
      out,
      cert: paths.cert,
      ...(csr === undefined ? { key: paths.key } : {}),
      ca: paths.ca,
    };
  } finally {
    if (tmpKey !== undefined) await unlinkIfExists(tmpKey);
    await lock.release();
  }
}

function dates(o: PkiIssueOptions): string[] {
  if (o.notBefore === undefined || o.notAfter === undefined || !(o.notBefore < o.notAfter)) {
    throw new FussyError('USAGE', 'notBefore and notAfter go together, notBefore first', { hint: 'or give days' });
  }
  return ['-startdate', generalizedTime(o.notBefore), '-enddate', generalizedTime(o.notAfter)];
}

/** The CSR's bytes, once openssl has checked it is one and its signature verifies. */
async function readCsr(file: string, cwd: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EISDIR', 'ENOTDIR')) throw new FussyError('PKI_BAD_CSR', `cannot read the request ${file}: ${err.code}`, { cause: err, hint: 'name a PEM certificate request (openssl req -new)', details: { path: file } });
    throw err;
  }
  if (data.length > MAX_CSR_BYTES) throw new FussyError('PKI_BAD_CSR', `${file} is larger than a certificate request (${MAX_CSR_BYTES} bytes)`, { hint: 'name a PEM certificate request', details: { path: file } });
  await openssl(['req', '-verify', '-noout', '-in', '-'], { cwd, input: data, what: `read the request ${file}`, code: 'PKI_BAD_CSR' });
  return data;
}
