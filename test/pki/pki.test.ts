import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FussyError, pkiCrl, pkiInit, pkiIssue, pkiList, pkiRevoke } from '../../src/index.js';
import { pkiFixture, type Credentials, type PkiFixture } from '../helpers/pki.js';
import { makeTmp } from '../helpers/tmp.js';
import { handshake, verifyError, type ServerTls } from './tls-probe.js';

function fussydTls(f: PkiFixture, crl: Buffer = f.crlPem): ServerTls {
  return { key: f.server.keyPem, cert: f.server.certPem, ca: f.caPem, crl };
}

const as = (f: PkiFixture, c: Credentials): { ca: Buffer; cert: Buffer; key: Buffer } => ({ ca: f.caPem, cert: c.certPem, key: c.keyPem });

/** Every file under dir with its mode and bytes: "nothing changed" compares two of these. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p);
      out[relative(dir, p)] = `${(st.mode & 0o7777).toString(8)} ${e.isDirectory() ? 'dir' : readFileSync(p).toString('base64')}`;
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

async function refusal(p: Promise<unknown>, code: string): Promise<FussyError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof FussyError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return err;
}

describe('fussy pki: certificates that fussyd and fussy remote use over real TLS', function () {
  let f: PkiFixture;
  before(async function () {
    f = await pkiFixture();
  });

  it('a server with the client CA and CRL accepts a client certificate of the CA, and the client checks the server name', async function () {
    const ok = await handshake(fussydTls(f), as(f, f.clients.operator));
    assert.deepEqual(ok, { accepted: true, answer: 'operator' });
    assert.equal((await handshake(fussydTls(f), { ...as(f, f.clients.admin), servername: undefined })).answer, 'admin', 'by IP address 127.0.0.1 (an IP SAN)');
    const wrongName = await handshake(fussydTls(f), { ...as(f, f.clients.admin), servername: 'other.example' });
    assert.equal(wrongName.accepted, false);
    assert.equal(wrongName.clientError, 'ERR_TLS_CERT_ALTNAME_INVALID');
    const x = new X509Certificate(f.server.certPem);
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(x.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  });

  it('a revoked client certificate is refused at the handshake once pkiRevoke wrote the CRL', async function () {
    const dir = join(await makeTmp(), 'ca');
    await pkiInit({ dir });
    const server = await pkiIssue({ dir, kind: 'server', name: 'localhost' });
    const carol = await pkiIssue({ dir, kind: 'client', name: 'carol' });
    const tlsOf = (): ServerTls => ({ key: readFileSync(server.key as string), cert: readFileSync(server.cert), ca: readFileSync(server.ca), crl: readFileSync(join(dir, 'ca.crl')) });
    const client = { ca: readFileSync(carol.ca), cert: readFileSync(carol.cert), key: readFileSync(carol.key as string) };
    assert.equal((await handshake(tlsOf(), client)).answer, 'carol');
    const r = await pkiRevoke({ dir, name: 'carol' });
    assert.deepEqual(r.revoked, [{ serial: carol.serial, name: 'carol' }]);
    assert.ok(new Date(r.nextUpdate).getTime() > Date.now() + 29 * 86_400_000, r.nextUpdate);
    assert.equal((await handshake(tlsOf(), client)).accepted, false);
    assert.equal(await verifyError(tlsOf(), client), 'CERT_REVOKED');
    assert.equal((await pkiList({ dir })).certificates.find((c) => c.name === 'carol')?.status, 'revoked');
    await refusal(pkiRevoke({ dir, name: 'carol' }), 'PKI_NOT_FOUND');
  });

  it('an expired client certificate is refused at the handshake', async function () {
    assert.equal((await handshake(fussydTls(f), as(f, f.expired))).accepted, false);
    assert.equal(await verifyError(fussydTls(f), as(f, f.expired)), 'CERT_HAS_EXPIRED');
  });

  it('a client certificate of another CA with the same CN is refused at the handshake', async function () {
    assert.equal(f.rogue.admin.cn, 'admin');
    assert.equal((await handshake(fussydTls(f), as(f, f.rogue.admin))).accepted, false);
    assert.match(await verifyError(fussydTls(f), as(f, f.rogue.admin)), /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  it('a server certificate (serverAuth only) presented as a client certificate is refused at the handshake', async function () {
    assert.equal((await handshake(fussydTls(f), as(f, f.serverAsClient))).accepted, false);
    assert.equal(await verifyError(fussydTls(f), as(f, f.serverAsClient)), 'INVALID_PURPOSE');
  });

  it('a client without a certificate is refused at the handshake', async function () {
    assert.equal((await handshake(fussydTls(f), { ca: f.caPem })).accepted, false);
  });

  it('a client refuses a server whose certificate another CA issued', async function () {
    const r = await handshake(fussydTls(f), { ca: f.rogue.caPem, cert: f.clients.admin.certPem, key: f.clients.admin.keyPem });
    assert.equal(r.accepted, false);
    // The server sends its CA with its certificate: the client sees a root it does not trust.
    assert.match(r.clientError ?? '', /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
  });

  it('files get their modes: CA directory 0700, keys 0600, certificates and CRL 0644', function () {
    const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
    assert.equal(mode(f.caDir), '700');
    assert.equal(mode(join(f.caDir, 'ca.key')), '600');
    assert.equal(mode(join(f.caDir, 'ca.crt')), '644');
    assert.equal(mode(f.crl), '644');
    assert.equal(mode(join(f.caDir, 'issued')), '700');
    for (const c of [f.server, f.clients.admin]) {
      assert.equal(mode(c.key), '600', c.key);
      assert.equal(mode(c.cert), '644', c.cert);
      assert.equal(mode(join(c.cert, '..', 'ca.crt')), '644');
      assert.equal(mode(join(c.cert, '..')), '700');
    }
    const ca = new X509Certificate(f.caPem);
    assert.equal(ca.ca, true);
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  it('pkiList shows every certificate: serial, kind, CN, SANs, not-after and status', async function () {
    const { certificates, ca } = await pkiList({ dir: f.caDir });
    assert.equal(ca.name, 'fussy test CA');
    const by = new Map(certificates.map((c) => [c.name, c]));
    assert.deepEqual([...by.keys()], ['localhost', 'admin', 'operator', 'viewer', 'nobody', 'expired', 'revoked']);
    assert.deepEqual({ ...by.get('localhost'), fingerprint256: undefined, notBefore: undefined, notAfter: undefined, serial: undefined }, { kind: 'server', name: 'localhost', sans: ['localhost', '127.0.0.1', '0:0:0:0:0:0:0:1'], status: 'valid', fingerprint256: undefined, notBefore: undefined, notAfter: undefined, serial: undefined });
    assert.equal(by.get('admin')?.kind, 'client');
    assert.equal(by.get('admin')?.status, 'valid');
    assert.equal(by.get('expired')?.status, 'expired');
    assert.equal(by.get('expired')?.notAfter, '2020-02-01T00:00:00.000Z');
    assert.equal(by.get('revoked')?.status, 'revoked');
    assert.equal(by.get('admin')?.serial, new X509Certificate(f.clients.admin.certPem).serialNumber.toUpperCase());
  });
});

describe('fussy pki: refusals change nothing', function () {
  it('pki init on a directory that holds a CA refuses (PKI_CA_EXISTS) and changes nothing', async function () {
    const dir = join(await makeTmp(), 'ca');
    await pkiInit({ dir });
    const before = snapshot(dir);
    const err = await refusal(pkiInit({ dir, name: 'another' }), 'PKI_CA_EXISTS');
    assert.equal(err.exitCode, 2);
    assert.deepEqual(snapshot(dir), before);
    assert.deepEqual(readdirSync(join(dir, '..')), ['ca'], 'no staging directory left beside it');
  });

  it('pki init refuses a directory holding anything else, and takes an empty one', async function () {
    const root = await makeTmp();
    mkdirSync(join(root, 'full'));
    writeFileSync(join(root, 'full', 'notes'), 'x');
    await refusal(pkiInit({ dir: join(root, 'full') }), 'PKI_DIR_NOT_EMPTY');
    assert.deepEqual(readdirSync(join(root, 'full')), ['notes']);
    mkdirSync(join(root, 'empty'));
    await pkiInit({ dir: join(root, 'empty') });
    assert.equal((statSync(join(root, 'empty')).mode & 0o777).toString(8), '700');
    assert.ok(readdirSync(join(root, 'empty')).includes('ca.key'));
  });

  it('unsafe names (path-traversal-dotdot, a slash, a leading dot) are refused and nothing is written', async function () {
    const f = await pkiFixture();
    const dir = join(await makeTmp(), 'ca');
    await pkiInit({ dir });
    const before = snapshot(dir);
    for (const name of ['../x', 'a/b', '.hidden', '', '-rf', 'a b', 'CN=x,O=y']) {
      const err = await refusal(pkiIssue({ dir, kind: 'client', name }), 'PKI_BAD_NAME');
      assert.equal(err.exitCode, 2);
    }
    await refusal(pkiIssue({ dir, kind: 'server', name: 'unit', sans: ['x,DNS:evil.example'] }), 'PKI_BAD_NAME');
    await refusal(pkiIssue({ dir, kind: 'server', name: 'unit', sans: ['a\nb'] }), 'PKI_BAD_NAME');
    assert.deepEqual(snapshot(dir), before);
    assert.ok(f.caDir !== dir);
  });

  it('a CN with a valid certificate is refused (PKI_NAME_TAKEN) unless forced; revoking the name revokes every one', async function () {
    const dir = join(await makeTmp(), 'ca');
    await pkiInit({ dir });
    const first = await pkiIssue({ dir, kind: 'client', name: 'dave' });
    const before = snapshot(dir);
    await refusal(pkiIssue({ dir, kind: 'client', name: 'dave' }), 'PKI_NAME_TAKEN');
    assert.deepEqual(snapshot(dir), before);
    const second = await pkiIssue({ dir, kind: 'client', name: 'dave', force: true });
    assert.notEqual(second.serial, first.serial);
    const r = await pkiRevoke({ dir, name: 'dave' });
    assert.deepEqual(r.revoked.map((e) => e.serial), [first.serial, second.serial]);
    await refusal(pkiIssue({ dir, kind: 'client', name: 'dave' }), 'PKI_FILE_EXISTS');
    const third = await pkiIssue({ dir, kind: 'client', name: 'dave', force: true });
    assert.deepEqual((await pkiList({ dir })).certificates.map((c) => [c.serial, c.status]), [[first.serial, 'revoked'], [second.serial, 'revoked'], [third.serial, 'valid']]);
    await refusal(pkiRevoke({ dir, serial: 'ff' }), 'PKI_NOT_FOUND');
    assert.equal((await pkiRevoke({ dir, serial: third.serial.toLowerCase() })).revoked[0]?.name, 'dave');
    assert.ok(new Date((await pkiCrl({ dir, days: 7 })).nextUpdate).getTime() < Date.now() + 8 * 86_400_000);
  });

  it('a directory that is not a CA is PKI_NOT_A_CA (exit 40) and is not created', async function () {
    const root = await makeTmp();
    const err = await refusal(pkiIssue({ dir: join(root, 'nope'), kind: 'client', name: 'x' }), 'PKI_NOT_A_CA');
    assert.equal(err.exitCode, 40);
    await refusal(pkiList({ dir: root }), 'PKI_NOT_A_CA');
    assert.deepEqual(readdirSync(root), []);
  });
});

describe('fussy pki issue --csr: the key never leaves the machine that made it', function () {
  it('signs a CSR made elsewhere with the kind\'s extensions and CN; writes no key; the pair works over TLS', async function () {
    const f = await pkiFixture();
    const laptop = await makeTmp();
    const key = join(laptop, 'erin.key');
    const csr = join(laptop, 'erin.csr');
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=root/O=asks-for-more', '-addext', 'extendedKeyUsage=serverAuth', '-out', csr], { stdio: 'ignore' });
    const caDir = join(await makeTmp(), 'ca');
    await pkiInit({ dir: caDir });
    const r = await pkiIssue({ dir: caDir, kind: 'client', name: 'erin', csr });
    assert.equal(r.key, undefined);
    assert.deepEqual(readdirSync(r.out).sort(), ['ca.crt', 'erin.crt']);
    const x = new X509Certificate(readFileSync(r.cert));
    assert.equal(x.subject, 'CN=erin');
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    const server = await pkiIssue({ dir: caDir, kind: 'server', name: 'localhost' });
    const ok = await handshake({ key: readFileSync(server.key as string), cert: readFileSync(server.cert), ca: readFileSync(server.ca), crl: readFileSync(join(caDir, 'ca.crl')) }, { ca: readFileSync(r.ca), cert: readFileSync(r.cert), key: readFileSync(key) });
    assert.equal(ok.answer, 'erin');
    assert.ok(f.caDir !== caDir);
  });

  it('a file that is not a CSR is PKI_BAD_CSR and nothing is issued', async function () {
    const dir = join(await makeTmp(), 'ca');
    await pkiInit({ dir });
    const bad = join(await makeTmp(), 'bad.csr');
    writeFileSync(bad, '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n');
    const before = snapshot(dir);
    await refusal(pkiIssue({ dir, kind: 'client', name: 'x', csr: bad }), 'PKI_BAD_CSR');
    await refusal(pkiIssue({ dir, kind: 'client', name: 'x', csr: join(dir, 'missing.csr') }), 'PKI_BAD_CSR');
    assert.deepEqual(snapshot(dir), before);
  });
});
