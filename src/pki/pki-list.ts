import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isErrno } from '../errors.js';
import { CA_FILES, readIndex, requireCa } from './ca-dir.js';

/** OIDs of extendedKeyUsage (RFC 5280 4.2.1.12). */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface PkiCertificate {
  serial: string;
  /** From the certificate's extendedKeyUsage; 'unknown' when its copy in newcerts/ is gone. */
  kind: 'server' | 'client' | 'unknown';
  name: string;
  sans: string[];
  notBefore?: string;
  notAfter: string;
  status: 'valid' | 'revoked' | 'expired';
  revokedAt?: string;
  fingerprint256?: string;
}

export interface PkiListOptions {
  dir: string;
  /** For "expired"; default now. */
  now?: Date;
}

export interface PkiListResult {
  dir: string;
  ca: { name: string; notAfter: string; fingerprint256: string };
  certificates: PkiCertificate[];
}

/** Every certificate the CA issued, oldest first: index.txt, and each one's copy in newcerts/. Reads only. */
export async function pkiList(o: PkiListOptions): Promise<PkiListResult> {
  const dir = resolve(o.dir);
  requireCa(dir);
  const now = o.now ?? new Date();
  const ca = new X509Certificate(await readFile(join(dir, CA_FILES.cert)));
  const certificates: PkiCertificate[] = [];
  for (const e of await readIndex(dir)) {
    const x = await issued(dir, e.serial);
    const eku = x?.keyUsage ?? [];
    const notAfter = x === undefined ? e.expires : new Date(x.validTo);
    certificates.push({
      serial: e.serial,
      kind: eku.includes(SERVER_AUTH) ? 'server' : eku.includes(CLIENT_AUTH) ? 'client' : 'unknown',
      name: e.cn,
      sans: (x?.subjectAltName ?? '').split(', ').filter((s) => s !== '').map((s) => s.replace(/^(DNS|IP Address):/, '')),
      ...(x === undefined ? {} : { notBefore: new Date(x.validFrom).toISOString() }),
      notAfter: notAfter.toISOString(),
      status: e.status === 'R' ? 'revoked' : e.status === 'E' || notAfter <= now ? 'expired' : 'valid',
      ...(e.revoked === undefined ? {} : { revokedAt: e.revoked.toISOString() }),
      ...(x === undefined ? {} : { fingerprint256: x.fingerprint256 }),
    });
  }
  return { dir, ca: { name: /CN=(.*)/.exec(ca.subject)?.[1] ?? ca.subject, notAfter: new Date(ca.validTo).toISOString(), fingerprint256: ca.fingerprint256 }, certificates };
}

async function issued(dir: string, serial: string): Promise<X509Certificate | undefined> {
  try {
    return new X509Certificate(await readFile(join(dir, 'newcerts', `${serial}.pem`)));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}
