import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';

const MAX_LINKS = 40;

/**
 * The host path of device path `path` in the root file system at `root`, resolved as the device
 * will resolve it: every symlink on the way is followed inside `root` (an absolute target starts
 * again at `root`, `..` stops at it), so a root whose `/var/run -> /run` or `/etc/fussy ->
 * /opt/firmware/current/etc/fussy` never leads provisioning, as root, to the build host's own
 * files. What does not exist yet is joined as it is. With root `/` it is the path itself.
 */
export function inRoot(root: string, path: string): string {
  if (root === '/') return path;
  let todo = path.split('/').filter((c) => c !== '' && c !== '.');
  let done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift() as string;
    if (name === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, name);
    let isLink: boolean;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
      return join(root, ...done, name, ...todo.filter((c) => c !== '..'));
    }
    if (!isLink) {
      done.push(name);
      continue;
    }
    if (++links > MAX_LINKS) throw new FussyError('SETUP', `${path} in ${root}: more than ${MAX_LINKS} symbolic links on the way (a loop)`, { hint: `fix the links on the way to ${path} in ${root}` });
    const to = readlinkSync(host);
    if (to.startsWith('/')) done = [];
    todo = [...to.split('/').filter((c) => c !== '' && c !== '.'), ...todo];
  }
  return join(root, ...done);
}

/** The device path of host path `host` under `root` (for messages and the links fussy makes). */
export function devicePath(root: string, host: string): string {
  if (root === '/') return host;
  return host === root ? '/' : host.slice(root.length);
}
