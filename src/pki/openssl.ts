import { FussyError } from '../errors.js';
import { requireStarted, runProgram } from '../util/run.js';

export interface OpensslCall {
  /** The CA directory: openssl.cnf names every file relative to it (the CA can be moved). */
  cwd: string;
  /** Bytes on openssl's standard input (a CSR). */
  input?: Uint8Array;
  /** The subjectAltName of a server certificate (openssl.cnf reads $ENV::FUSSY_PKI_SAN). */
  san?: string;
  /** What this call does, for the message ("sign the certificate of unit-17"). */
  what: string;
  /** The code of a failure (default OPENSSL_FAILED). */
  code?: 'OPENSSL_FAILED' | 'PKI_BAD_CSR';
}

/** One minute: openssl does a few signatures; past that something is wrong (a blocked read). */
const TIMEOUT_MS = 60_000;

/** Run openssl with `args`; its stdout, or OPENSSL_FAILED with the end of what it said. */
export async function openssl(args: string[], c: OpensslCall): Promise<Buffer> {
  const r = await runProgram('openssl', args, {
    cwd: c.cwd,
    // openssl.cnf refers to $ENV::FUSSY_PKI_SAN, which must be set for every command that reads it.
    env: { FUSSY_PKI_SAN: c.san ?? 'DNS:unused.invalid' },
    stdin: c.input ?? 'ignore',
    timeoutMs: TIMEOUT_MS,
  });
  requireStarted('openssl', r, { needed: c.what });
  if (r.exitCode !== 0) {
    const said = (r.stderr ?? '').trim().split('\n').filter((l) => l !== '').slice(-4).join('; ');
    throw new FussyError(c.code ?? 'OPENSSL_FAILED', `openssl could not ${c.what}: ${r.timedOut ? 'it ran longer than a minute' : said || `exit status ${r.exitCode ?? r.signal}`}`, {
      hint: c.code === 'PKI_BAD_CSR' ? 'make the request again (openssl req -new -key KEY -subj /CN=NAME -out FILE) and pass that file' : 'the message above is openssl\'s; check the CA directory (fussy pki ls)',
      details: { program: 'openssl', args },
    });
  }
  return r.stdout ?? Buffer.alloc(0);
}

/**
 * The CA's openssl.cnf (config(5), ca(1ssl), x509v3_config(5)). Every path is relative to the CA
 * directory, which is openssl's working directory. `unique_subject = no`: fussy checks duplicate
 * CNs itself (pkiIssue, with --force for a rollover). `copy_extensions = none`: a CSR asks for
 * nothing; the kind decides the extensions. `policy_cn`: the subject is exactly /CN=NAME (ca -subj).
 */
export function caConfig(o: { crlDays: number }): string {
  return `# Made by fussy pki init. Paths are relative to this directory (fussy runs openssl here).
[ca]
default_ca = fussy_ca

[fussy_ca]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
certificate = ./ca.crt
private_key = ./ca.key
serial = ./serial
crlnumber = ./crlnumber
default_md = sha256
default_crl_days = ${o.crlDays}
policy = policy_cn
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = no
crl_extensions = crl_ext

[policy_cn]
commonName = supplied

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = unused

[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::FUSSY_PKI_SAN

[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[crl_ext]
authorityKeyIdentifier = keyid
`;
}
