import { readFileSync } from 'node:fs';
import { FussyError } from '../../errors.js';

/** The user runs are started as (run-as): uid, primary gid, home. */
export interface RunUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/**
 * `name` (or a decimal uid) looked up in passwd(5) (`file`, /etc/passwd): the uid, the primary
 * gid and the home directory. Supplementary groups are deliberately not looked up: a run gets
 * none (docs/daemon.md "Configuration"). Users only NSS knows (LDAP) are not found.
 */
export function lookupUser(name: string, file = '/etc/passwd'): RunUser {
  const numeric = /^\d+$/.test(name);
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || (numeric ? f[2] !== name : f[0] !== name)) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    return { name: f[0] ?? name, uid, gid, home: f[5] === undefined || f[5] === '' ? '/' : f[5] };
  }
  throw new FussyError('SETUP', `run-as user ${JSON.stringify(name)} is not in ${file}`, { hint: 'create the user (useradd --system) or name another in run-as', details: { user: name } });
}
