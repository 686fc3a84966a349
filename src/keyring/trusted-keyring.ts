import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { permissionDenied } from '../util/system-error.js';
import { checkTrustedPath, describeUid, octalMode, type TrustCodes, type TrustOptions } from '../util/trusted-path.js';

export const KEYRING_CODES: TrustCodes = { untrusted: 'KEYRING_UNTRUSTED', missing: 'KEYRING_MISSING' };

/** gpg homes nest one level (private-keys-v1.d/, public-keys.d/, openpgp-revocs.d/). */
const MAX_DEPTH = 2;

/**
 * A keyring is worth only as much as the control over who can change it: a user who can write
 * the keyring directory, any directory above it (the real path: /etc/fussy is usually a link
 * into the firmware), or a file in it can add a signing key fussy would trust, or change the
 * policy. So the keyring directory and everything in it that fussy or gpg reads (key files,
 * `policy`, `device-type`, gpg's files and subdirectories, and the real path of every symlink
 * among them) must be owned by root (or the caller) and not writable by group or others; a FIFO
 * or device node in it is refused too (reading one would stall or act). Refusals are
 * KEYRING_UNTRUSTED or KEYRING_MISSING (exit 40) naming the path, its owner and mode; a directory
 * this user may not read is PERMISSION_DENIED. Returns the keyring's real path.
 */
export function checkKeyring(dir: string): string {
  const o: TrustOptions = { what: 'keyring', codes: KEYRING_CODES, missingHint: "install the build server's public key there (fussy keygen, or gpg --export), or pass -k DIR" };
  const r = checkTrustedPath(dir, o);
  if (!r.stats.isDirectory()) throw new FussyError('KEYRING_MISSING', `keyring ${dir} is not a directory`, { hint: 'pass the keyring directory with -k' });
  checkEntries(r.real, o, 1);
  return r.real;
}

function checkEntries(dir: string, o: TrustOptions, depth: number): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'EACCES')) throw permissionDenied(err, `cannot read keyring directory ${dir}: EACCES`, { path: dir, hint: 'run fussy as root, or as the user who owns the keyring' });
    throw err;
  }
  for (const name of names) {
    const p = join(dir, name);
    const r = checkTrustedPath(p, o);
    const st = r.stats;
    if (st.isDirectory()) {
      if (depth < MAX_DEPTH) checkEntries(r.real, o, depth + 1);
    } else if (!st.isFile() && !st.isSocket()) {
      // gpg-agent's sockets live in a gpg home; anything else that is not a file is not a key.
      throw new FussyError('KEYRING_UNTRUSTED', `keyring entry ${p} is not a regular file (owner ${describeUid(st.uid)}, mode ${octalMode(st)})`, { hint: `remove it (rm ${p})`, details: { path: p } });
    }
  }
}
