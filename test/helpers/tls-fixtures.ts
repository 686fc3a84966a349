/**
 * TLS material for the tests of fussyd and fussy remote, made with the system openssl (`openssl
 * ca`, whose database also makes the CRLs) once per test run and removed when it ends. Read-only
 * for tests: copy a file before changing it. Until `fussy pki` lands this is openssl by hand; the
 * shape is what the daemon's tests need, nothing more.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeTmp } from './tmp.js';

export interface Creds {
  cn: string;
  cert: string;
  key: string;
  certPem: Buffer;
  keyPem: Buffer;
}

export type ClientCn = 'admin-cn' | 'operator-cn' | 'viewer-cn' | 'stranger-cn';

export interface TlsFixtures {
  dir: string;
  /** The client CA, which also issued the server certificate. */
  ca: string;
  caPem: Buffer;
  /** SANs 127.0.0.1 and localhost. */
  server: Creds;
  clients: Record<ClientCn, Creds>;
  /** CN expired-cn, valid 2020-01-01 to 2020-02-01. */
  expired: Creds;
  /** CN revoked-cn: listed in `crl`, not in `emptyCrl`. */
  revoked: Creds;
  /** The CA's CRL before revoked-cn was revoked, and after. */
  emptyCrl: string;
  crl: string;
  /** Another CA's client certificate with CN admin-cn. */
  rogueAdmin: Creds;
  rogueCa: string;
}

let made: Promise<TlsFixtures> | undefined;

export function tlsFixtures(): Promise<TlsFixtures> {
  made ??= make();
  return made;
}

const CNF = (dir: string): string => `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
`;

async function openssl(args: string[]): Promise<void> {
  await execa('openssl', args, { stdin: 'ignore' });
}

async function makeCa(dir: string, name: string): Promise<void> {
  mkdirSync(join(dir, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(join(dir, 'ca.cnf'), CNF(dir));
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '3650', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

async function issue(caDir: string, cn: string, ext: 'client_ext' | 'server_ext', dates?: [string, string]): Promise<Creds> {
  const base = join(caDir, cn);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
  await openssl(['ca', '-batch', '-notext', '-config', join(caDir, 'ca.cnf'), '-extensions', ext, '-in', `${base}.csr`, '-out', `${base}.crt`, ...(dates === undefined ? [] : ['-startdate', dates[0], '-enddate', dates[1]])]);
  return { cn, cert: `${base}.crt`, key: `${base}.key`, certPem: readFileSync(`${base}.crt`), keyPem: readFileSync(`${base}.key`) };
}

async function make(): Promise<TlsFixtures> {
  const dir = await makeTmp('fussy-tls-');
  const caDir = join(dir, 'ca');
  const rogueDir = join(dir, 'rogue');
  await Promise.all([makeCa(caDir, 'fussy test CA'), makeCa(rogueDir, 'rogue CA')]);
  const rogueAdmin = issue(rogueDir, 'admin-cn', 'client_ext');
  const server = await issue(caDir, 'localhost', 'server_ext');
  const clients = {} as Record<ClientCn, Creds>;
  for (const cn of ['admin-cn', 'operator-cn', 'viewer-cn', 'stranger-cn'] as const) clients[cn] = await issue(caDir, cn, 'client_ext');
  const expired = await issue(caDir, 'expired-cn', 'client_ext', ['20200101000000Z', '20200201000000Z']);
  const revoked = await issue(caDir, 'revoked-cn', 'client_ext');
  const cnf = join(caDir, 'ca.cnf');
  const emptyCrl = join(dir, 'empty.crl');
  const crl = join(dir, 'ca.crl');
  await openssl(['ca', '-config', cnf, '-gencrl', '-out', emptyCrl]);
  await openssl(['ca', '-config', cnf, '-revoke', revoked.cert]);
  await openssl(['ca', '-config', cnf, '-gencrl', '-out', crl]);
  const ca = join(caDir, 'ca.crt');
  return { dir, ca, caPem: readFileSync(ca), server, clients, expired, revoked, emptyCrl, crl, rogueAdmin: await rogueAdmin, rogueCa: join(rogueDir, 'ca.crt') };
}
