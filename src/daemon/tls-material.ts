import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { FussyError } from '../errors.js';
import type { DaemonConfig } from './config.js';
import { revokedSerials } from './crl.js';
import { requireSettingFile } from './read-setting-file.js';

/**
 * The TLS side of the daemon's trust (docs/daemon.md, "Identity and roles"): its own
 * certificate and key, the client CA as the only trust anchor of client certificates (`ca`
 * replaces node's default store for peer verification, so no system root is ever trusted), the
 * CRL, TLS 1.2 at least. Loaded at start and again on every reload; a reload that fails keeps the
 * context in use.
 */

export interface TlsMaterial {
  context: SecureContextOptions;
  /** The serials the CRL revokes (empty without one). */
  revoked: Set<string>;
}

export const MIN_TLS = 'TLSv1.2';

export function loadTlsMaterial(c: Pick<DaemonConfig, 'cert' | 'key' | 'clientCa' | 'crl'>): TlsMaterial {
  const cert = requireSettingFile(c.cert, 'TLS_UNUSABLE', 'server certificate');
  const key = requireSettingFile(c.key, 'TLS_UNUSABLE', 'server key');
  const ca = requireSettingFile(c.clientCa, 'TLS_UNUSABLE', 'client CA');
  const crl = c.crl === undefined ? undefined : requireSettingFile(c.crl, 'TLS_UNUSABLE', 'CRL', 64 * 1024 * 1024);
  const revoked = crl === undefined ? new Set<string>() : revokedSerials(crl.toString('latin1'), c.crl as string);
  const context: SecureContextOptions = { cert, key, ca, minVersion: MIN_TLS, ...(crl === undefined ? {} : { crl }) };
  try {
    createSecureContext(context); // a key that does not match, or PEM openssl cannot read, fails here and not at the first client
  } catch (err) {
    throw new FussyError('TLS_UNUSABLE', `the server certificate ${c.cert}, key ${c.key}, client CA ${c.clientCa}${c.crl === undefined ? '' : ` or CRL ${c.crl}`} cannot be used: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      hint: 'give PEM files: the key of that certificate, the client CA, its CRL (fussy pki writes them)',
    });
  }
  return { context, revoked };
}
