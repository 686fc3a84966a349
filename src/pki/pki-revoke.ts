import { join, resolve } from 'node:path';
import { FussyError } from '../errors.js';
import { writeAtomic } from '../util/fs-atomic.js';
import { CA_FILES, lockCa, normalSerial, readIndex, requireCa } from './ca-dir.js';
import { openssl } from './openssl.js';

export interface PkiRevokeOptions {
  dir: string;
  /** Revoke every valid certificate with this CN (a rollover may have left two). */
  name?: string;
  /** Revoke the certificate with this serial (hex, as `fussy pki ls` shows it). */
  serial?: string;
  now?: Date;
}

export interface PkiCrlOptions {
  dir: string;
  /** Days until the CRL's nextUpdate; default the CA's (openssl.cnf default_crl_days, 30). */
  days?: number;
  now?: Date;
}

export interface PkiCrlResult {
  crl: string;
  /** When the CRL stops being accepted: a TLS peer that checks it refuses every certificate after that. */
  nextUpdate: string;
}

export interface PkiRevokeResult extends PkiCrlResult {
  revoked: Array<{ serial: string; name: string }>;
}

/**
 * Revoke by CN or serial (openssl ca -revoke, which marks index.txt) and regenerate ca.crl, all
 * under the CA's lock. A CN names every one of its valid certificates; a certificate already
 * revoked, or a CN with none valid, is PKI_NOT_FOUND and changes nothing.
 */
export async function pkiRevoke(o: PkiRevokeOptions): Promise<PkiRevokeResult> {
  const dir = resolve(o.dir);
  if ((o.name === undefined) === (o.serial === undefined)) throw new FussyError('USAGE', 'revoke takes a name or a serial, one of them', { hint: 'fussy pki revoke NAME, or --serial HEX' });
  const serial = o.serial === undefined ? undefined : normalSerial(o.serial);
  requireCa(dir);
  const lock = await lockCa(dir, 'fussy pki revoke', o.now);
  try {
    const now = o.now ?? new Date();
    const index = await readIndex(dir);
    const chosen = index.filter((e) => e.status === 'V' && (serial === undefined ? e.cn === o.name && e.expires > now : normalSerial(e.serial) === serial));
    if (chosen.length === 0) {
      const what = serial === undefined ? `no valid certificate has the CN ${JSON.stringify(o.name)}` : `no valid certificate has the serial ${serial}`;
      const gone = index.some((e) => e.status === 'R' && (serial === undefined ? e.cn === o.name : normalSerial(e.serial) === serial));
      throw new FussyError('PKI_NOT_FOUND', `${what}${gone ? ' (it is revoked already)' : ''}; nothing was changed`, { hint: 'fussy pki ls shows every certificate and its status', details: serial === undefined ? { name: o.name } : { serial } });
    }
    for (const e of chosen) {
      await openssl(['ca', '-batch', '-config', CA_FILES.config, '-revoke', join('newcerts', `${e.serial}.pem`)], { cwd: dir, what: `revoke ${e.cn} (serial ${e.serial})` });
    }
    const crl = await writeCrl(dir, undefined).catch((err: unknown) => {
      if (!(err instanceof FussyError)) throw err;
      throw new FussyError(err.code, `revoked ${chosen.map((e) => e.serial).join(', ')}, but ${err.message}`, { cause: err, hint: 'the revocation is recorded; fix the cause and run fussy pki crl', details: err.details });
    });
    return { revoked: chosen.map((e) => ({ serial: e.serial, name: e.cn })), ...crl };
  } finally {
    await lock.release();
  }
}

/** Regenerate ca.crl. CRLs expire: run this (from cron) well before nextUpdate and copy ca.crl to the devices. */
export async function pkiCrl(o: PkiCrlOptions): Promise<PkiCrlResult> {
  const dir = resolve(o.dir);
  requireCa(dir);
  const lock = await lockCa(dir, 'fussy pki crl', o.now);
  try {
    return await writeCrl(dir, o.days);
  } finally {
    await lock.release();
  }
}

async function writeCrl(dir: string, days: number | undefined): Promise<PkiCrlResult> {
  const pem = await openssl(['ca', '-gencrl', '-batch', '-config', CA_FILES.config, ...(days === undefined ? [] : ['-crldays', String(days)])], { cwd: dir, what: 'make the CRL' });
  const crl = join(dir, CA_FILES.crl);
  await writeAtomic(crl, pem.toString('utf8'), { mode: 0o644, purpose: 'crl' });
  return { crl, nextUpdate: await crlNextUpdate(dir, pem) };
}

/** The nextUpdate of a PEM CRL, as openssl reads it (no X.509 parser in fussy). */
export async function crlNextUpdate(cwd: string, pem: Buffer): Promise<string> {
  const said = (await openssl(['crl', '-noout', '-nextupdate'], { cwd, input: pem, what: 'read the CRL' })).toString('utf8');
  const when = new Date(said.replace(/^nextUpdate=/, '').trim());
  if (Number.isNaN(when.getTime())) throw new Error(`openssl crl -nextupdate said ${JSON.stringify(said)}`);
  return when.toISOString();
}
