/**
 * TLS material for tests of fussyd and fussy remote, made once per test run with fussy pki and
 * the system openssl (each openssl call costs time): a CA with a server certificate for
 * localhost / 127.0.0.1 / ::1, client certificates for admin, operator, viewer and nobody (a CN in
 * no role), one expired and one revoked client, a server certificate used as a client one, and
 * a rogue CA whose client certificate has the CN "admin". Read-only for tests: copy a file
 * before changing it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pkiInit, pkiIssue, pkiRevoke } from '../../src/index.js';
import { makeTmp } from './tmp.js';

export interface Credentials {
  cn: string;
  cert: string;
  key: string;
  /** PEM contents, for tls.connect / https.request. */
  certPem: Buffer;
  keyPem: Buffer;
}

export interface PkiFixture {
  /** The CA directory (pkiInit). */
  caDir: string;
  /** ca.crt: the server's client-ca and the client's ca. */
  ca: string;
  caPem: Buffer;
  /** ca.crl, listing `revoked`. */
  crl: string;
  crlPem: Buffer;
  /** CN localhost, SANs localhost, 127.0.0.1, ::1; serverAuth only. */
  server: Credentials;
  /** CA-valid client certificates, by CN. */
  clients: Record<'admin' | 'operator' | 'viewer' | 'nobody', Credentials>;
  /** CN "expired": valid from 2020-01-01 to 2020-02-01. */
  expired: Credentials;
  /** CN "revoked": issued, then revoked (it is in `crl`). */
  revoked: Credentials;
  /** The CA-valid server certificate presented as a client certificate (no clientAuth). */
  serverAsClient: Credentials;
  /** Another CA, and its client certificate with CN "admin". */
  rogue: { caDir: string; ca: string; caPem: Buffer; admin: Credentials };
}

let made: Promise<PkiFixture> | undefined;

/** The fixture of this test run (made on first use, removed when the process exits). */
export function pkiFixture(): Promise<PkiFixture> {
  made ??= makeFixture();
  return made;
}

async function makeFixture(): Promise<PkiFixture> {
  const root = await makeTmp('fussy-pki-');
  const caDir = join(root, 'ca');
  const rogueDir = join(root, 'rogue');
  await Promise.all([pkiInit({ dir: caDir, name: 'fussy test CA' }), pkiInit({ dir: rogueDir, name: 'rogue CA' })]);
  // One CA's database takes one issue at a time (its lock); the rogue CA works meanwhile.
  const rogueAdmin = pkiIssue({ dir: rogueDir, kind: 'client', name: 'admin' });
  const server = await pkiIssue({ dir: caDir, kind: 'server', name: 'localhost', sans: ['127.0.0.1', '::1'] });
  const clients = {} as Record<'admin' | 'operator' | 'viewer' | 'nobody', Credentials>;
  for (const cn of ['admin', 'operator', 'viewer', 'nobody'] as const) clients[cn] = creds(await pkiIssue({ dir: caDir, kind: 'client', name: cn }));
  const expired = creds(await pkiIssue({ dir: caDir, kind: 'client', name: 'expired', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-02-01T00:00:00Z') }));
  const revoked = creds(await pkiIssue({ dir: caDir, kind: 'client', name: 'revoked' }));
  const { crl } = await pkiRevoke({ dir: caDir, name: 'revoked' });
  const ca = join(caDir, 'ca.crt');
  const rogueCa = join(rogueDir, 'ca.crt');
  return {
    caDir,
    ca,
    caPem: readFileSync(ca),
    crl,
    crlPem: readFileSync(crl),
    server: creds(server),
    clients,
    expired,
    revoked,
    serverAsClient: creds(server),
    rogue: { caDir: rogueDir, ca: rogueCa, caPem: readFileSync(rogueCa), admin: creds(await rogueAdmin) },
  };
}

function creds(r: { name: string; cert: string; key?: string }): Credentials {
  if (r.key === undefined) throw new Error(`${r.name} has no key here`);
  return { cn: r.name, cert: r.cert, key: r.key, certPem: readFileSync(r.cert), keyPem: readFileSync(r.key) };
}
