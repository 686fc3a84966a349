import * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import { requireStarted, startProgram } from '../util/run.js';

/**
 * Ask the system gpg for a package's session key, for device keys that exist only in gpg's
 * private-keys-v1.d (keyrings made with the Fussy docs' `GNUPGHOME=/etc/fussy/keys gpg --gen-key`).
 * gpg reports `SESSION_KEY algo:hex` on its status fd as soon as it has decrypted the PKESK, and
 * is stopped there: decryption of the data and the signature check stay with fussy. `packageFile`
 * is what gpg reads (a /proc/PID/fd/N path of the install's descriptor works), `name` names it.
 */
export async function gpgSessionKey(home: string, packageFile: string, name: string = packageFile): Promise<openpgp.SessionKey> {
  const gpg = await startProgram('gpg', ['--homedir', home, '--batch', '--no-tty', '--status-fd', '1', '--show-session-key', '--decrypt', '--output', '/dev/null', packageFile], {
    env: { GNUPGHOME: home },
    output: 'pipe',
  });
  let text = '';
  const found = await new Promise<string | undefined>((resolve) => {
    if (gpg.stdout === undefined) return resolve(undefined);
    gpg.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const m = /^\[GNUPG:\] SESSION_KEY (\d+):([0-9A-Fa-f]+)$/m.exec(text);
      if (m !== null) resolve(`${m[1]}:${m[2]}`);
    });
    gpg.stdout.on('end', () => resolve(undefined));
  });
  gpg.kill('SIGKILL');
  const r = await gpg.result;
  if (found === undefined) {
    requireStarted('gpg', r, { needed: `the device key is held by gpg in ${home}` });
    const stderr = (r.stderr ?? '').trim();
    throw new FussyError('DECRYPT_FAILED', `${name} cannot be decrypted with the keys in ${home}: ${stderr.split('\n').slice(-2).join(' / ')}`, {
      hint: 'the package was encrypted for another device key',
    });
  }
  const [algo, hex] = found.split(':') as [string, string];
  const algorithm = openpgp.enums.read(openpgp.enums.symmetric, Number(algo)) as openpgp.enums.symmetricNames;
  return { data: Uint8Array.from(Buffer.from(hex, 'hex')), algorithm };
}
