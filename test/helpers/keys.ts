import { join } from 'node:path';
import { keygen, type KeygenResult } from '../../src/keyring/keygen.js';

/** A fussy keygen signing key in `dir`, optionally passphrase-protected. */
export async function signingKey(dir: string, name = 'Build Server', passphrase?: string): Promise<KeygenResult> {
  const slug = name.toLowerCase().replace(/\W+/g, '-');
  return keygen({
    role: 'signing',
    name,
    email: `${slug}@example.com`,
    passphrase,
    secretKeyFile: join(dir, `${slug}.key`),
    publicKeyFile: join(dir, `${slug}.pub.asc`),
  });
}

/** A fussy keygen device key: secret key in `<dir>/keyring`, public key beside it. */
export async function deviceKey(dir: string, name = 'Device'): Promise<KeygenResult> {
  const slug = name.toLowerCase().replace(/\W+/g, '-');
  return keygen({ role: 'device', name, email: `${slug}@example.com`, keyringDir: join(dir, 'keyring'), publicKeyFile: join(dir, `${slug}.pub.asc`) });
}
