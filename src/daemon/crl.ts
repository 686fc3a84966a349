import { FussyError } from '../errors.js';

/**
 * The serial numbers a PEM CRL file revokes (RFC 5280 §5.1), read from its DER without an X.509
 * library: node checks the CRL at the handshake, but a connection made before the CRL gained a
 * serial is checked per request against this set (docs/daemon.md, "Identity and roles"). Serials
 * are upper-case hex without leading zeros, as X509Certificate.serialNumber shows them. The
 * signature is not checked here: openssl does that when the CRL is loaded into the TLS context,
 * and a CRL that fails there fails the reload.
 */
export function revokedSerials(pem: string, file: string): Set<string> {
  const blocks = [...pem.matchAll(/-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g)];
  if (blocks.length === 0) throw bad(file, 'holds no "BEGIN X509 CRL" block');
  const serials = new Set<string>();
  for (const b of blocks) {
    const der = Buffer.from((b[1] ?? '').replace(/\s+/g, ''), 'base64');
    try {
      for (const s of crlSerials(der)) serials.add(s);
    } catch (err) {
      if (err instanceof RangeError) throw bad(file, `is not a CRL: ${err.message}`);
      throw err;
    }
  }
  return serials;
}

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** One DER TLV at `at`, inside `[at, limit)`; RangeError when it does not fit. */
function tlv(der: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new RangeError('truncated');
  const tag = der[at] as number;
  let len = der[at + 1] as number;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new RangeError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] as number);
    start += n;
  }
  if (start + len > limit) throw new RangeError('truncated');
  return { tag, start, end: start + len };
}

function children(der: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end; ) {
    const c = tlv(der, at, t.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

function crlSerials(der: Buffer): string[] {
  const list = tlv(der, 0, der.length);
  if (list.tag !== SEQUENCE) throw new RangeError('not a SEQUENCE');
  const tbs = children(der, list)[0];
  if (tbs === undefined || tbs.tag !== SEQUENCE) throw new RangeError('no tbsCertList');
  const fields = children(der, tbs);
  let i = fields[0]?.tag === INTEGER ? 1 : 0; // version
  i += 2; // signature algorithm, issuer
  i += 1; // thisUpdate
  const next = fields[i];
  if (next !== undefined && (next.tag === UTC_TIME || next.tag === GENERALIZED_TIME)) i += 1; // nextUpdate
  const revoked = fields[i];
  if (revoked === undefined || revoked.tag !== SEQUENCE) return []; // none revoked (or only extensions follow)
  return children(der, revoked).map((entry) => {
    const serial = children(der, entry)[0];
    if (serial === undefined || serial.tag !== INTEGER) throw new RangeError('a revoked entry without a serial');
    return normalSerial(der.subarray(serial.start, serial.end).toString('hex'));
  });
}

/** Upper-case hex without leading zeros ("0" for zero). */
export function normalSerial(hex: string): string {
  return hex.replace(/^0+/, '').toUpperCase() || '0';
}

function bad(file: string, what: string): FussyError {
  return new FussyError('TLS_UNUSABLE', `the CRL ${file} ${what}`, { hint: 'give the PEM CRL of the client CA (fussy pki revoke writes it)', details: { path: file } });
}
