import { closeSync, constants as FS, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';
import { describeUid, octalMode } from '../util/trusted-path.js';

/** Who holds a lock: enough to tell a live holder from a dead one whose pid was reused. */
export interface LockOwner {
  pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22). */
  start: string;
  /** What the holder is doing ("install firmware-x.tar.gz.gpg"), for the busy message. */
  what: string;
  since: string;
}

export interface LockFile {
  /** The record, or undefined when the file is torn, empty or not a lock record. */
  holder: LockOwner | undefined;
  /** Who owns the file: in a shared directory, whose lock it is. */
  uid: number;
}

/** A record is ~300 bytes (`what` is cut to 256 characters); anything longer is not one of ours. */
export const MAX_LOCK_RECORD = 4096;

const KINDS: [keyof Stats, string][] = [
  ['isSymbolicLink', 'symbolic link'],
  ['isFIFO', 'FIFO'],
  ['isDirectory', 'directory'],
  ['isSocket', 'socket'],
  ['isCharacterDevice', 'character device'],
  ['isBlockDevice', 'block device'],
];

function kind(st: Stats): string {
  return KINDS.find(([m]) => (st[m] as () => boolean).call(st))?.[1] ?? 'special file';
}

function notALockFile(file: string, st: Stats): FussyError {
  return new FussyError('LOCK_UNUSABLE', `${file} is a ${kind(st)} (owner ${describeUid(st.uid)}, mode ${octalMode(st)}), not a lock file`, {
    hint: `remove it (rm ${file}): fussy only ever reads a regular file there`,
    details: { path: file, owner: st.uid, mode: octalMode(st) },
  });
}

/** Control characters in a forged record would reach the terminal of whoever reads the message. */
// eslint-disable-next-line no-control-regex -- control characters are what it replaces
const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** The record's fields, type-checked: a forged or torn file yields undefined, never a crash. */
export function parseLockRecord(text: string): LockOwner | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const { pid, start, what, since } = o as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (typeof start !== 'string' || !/^\d{1,20}$/.test(start)) return undefined;
  if (typeof what !== 'string' || typeof since !== 'string' || since.length > 64) return undefined;
  return { pid, start, what: printable(what.slice(0, 256)), since: printable(since) };
}

/**
 * Read a lock file without trusting what is at its name: lstat first (a symlink, FIFO, socket,
 * device or directory is refused with LOCK_UNUSABLE naming it, and never opened), then open with
 * O_NOFOLLOW|O_NONBLOCK (a FIFO swapped in meanwhile cannot stall fussy) and check the
 * descriptor is a regular file; at most MAX_LOCK_RECORD bytes are read. Undefined when there is
 * no such file; one this user may not read is PERMISSION_DENIED.
 */
export function readLockFile(file: string): LockFile | undefined {
  let st: Stats;
  try {
    st = lstatSync(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  if (!st.isFile()) throw notALockFile(file, st);
  let fd: number;
  try {
    fd = openSync(file, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK | FS.O_NOCTTY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    if (isErrno(err, 'ELOOP')) throw notALockFile(file, lstatSync(file));
    if (isErrno(err, 'EACCES')) {
      throw new FussyError('PERMISSION_DENIED', `cannot read lock file ${file} (owner ${describeUid(st.uid)}, mode ${octalMode(st)}): EACCES`, { cause: err, hint: 'a lock file must be readable by everyone who uses the lock (chmod a+r it), or run fussy as root', details: { path: file, owner: st.uid, errno: err.code } });
    }
    throw err;
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw notALockFile(file, fst);
    const buf = Buffer.alloc(MAX_LOCK_RECORD + 1);
    let n = 0;
    for (let r = -1; r !== 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    return { holder: n > MAX_LOCK_RECORD ? undefined : parseLockRecord(buf.subarray(0, n).toString('utf8')), uid: fst.uid };
  } finally {
    closeSync(fd);
  }
}
