import type * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';

/** RFC 9580 algorithm ids that GnuPG 2.2 does not implement (it has only the legacy EdDSA/ECDH forms). */
const NEW_ALGORITHMS = new Set<string>(['ed25519', 'ed448', 'x25519', 'x448']);
/** RFC 9580 §5.2.3.32 feature flag: the key asks for SEIPDv2, which GnuPG 2.2 and 2.4 cannot read. */
const FEATURE_SEIPDV2 = 0x08;

/**
 * Refuse keys whose use would produce packages GnuPG 2.2 cannot read: v6 keys (gpg cannot even
 * import them), keys or subkeys on RFC 9580-only algorithms, and recipients advertising SEIPDv2
 * (openpgp.js would then encrypt with SEIPDv2 / PKESK v6). docs/format.md lists what GnuPG 2.2 reads.
 */
export async function assertGpgCompatible(key: openpgp.Key, role: 'signing' | 'encryption', date: Date): Promise<void> {
  const name = `${key.getFingerprint().toUpperCase()} (${key.getUserIDs()[0] ?? 'no user id'})`;
  const refuse = (why: string, hint: string): never => {
    throw new FussyError('KEY_UNUSABLE', `${role} key ${name} ${why}`, { hint });
  };
  if (key.keyPacket.version !== 4) {
    refuse(`is a v${key.keyPacket.version} key; GnuPG 2.2 only reads v4 keys`, 'generate a v4 key (fussy keygen, or gpg --quick-gen-key)');
  }
  let sub: openpgp.Key | openpgp.Subkey;
  try {
    sub = role === 'signing' ? await key.getSigningKey(undefined, date) : await key.getEncryptionKey(undefined, date);
  } catch (err) {
    return refuse(`has no valid ${role} (sub)key: ${(err as Error).message}`, 'check that it is not expired or revoked, and that it has the capability');
  }
  const algo = sub.getAlgorithmInfo().algorithm;
  if (NEW_ALGORITHMS.has(algo)) {
    refuse(`uses ${algo} in its RFC 9580 form, which GnuPG 2.2 cannot use`, 'use a key made by gpg or fussy keygen (legacy EdDSA/ECDH curve25519, or RSA)');
  }
  if (role === 'encryption') {
    const { selfCertification } = await key.getPrimaryUser(date).catch(() => ({ selfCertification: undefined }));
    const features = selfCertification?.features?.[0] ?? 0;
    if (features & FEATURE_SEIPDV2) {
      refuse('asks for AEAD encryption (SEIPDv2), which GnuPG 2.2 and 2.4 cannot decrypt', 'regenerate the device key without AEAD (fussy keygen does), or let gpg 2.2 make it');
    }
  }
}
