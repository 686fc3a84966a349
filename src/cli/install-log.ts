import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';
import { isPermissionError, permissionDenied } from '../util/system-error.js';

/** fussy-install's -l LOGFILE (Fussy 2.6): every line the install reports, with a timestamp. */
export interface InstallLog {
  line(text: string): void;
  close(): void;
}

/**
 * Open the log BEFORE the install takes the target's lock: a log that cannot be created or
 * appended to (a missing directory, a symlink, a directory, a FIFO) is LOG_UNUSABLE naming it
 * (exit 40; PERMISSION_DENIED when this user may not write it) and nothing has changed. The last component is not followed (O_NOFOLLOW: as root,
 * a link planted where the log goes must not make fussy append to another file), and a file with
 * more than one hard link is refused for the same reason; a regular file or a character device
 * (/dev/null, a console) is accepted.
 * A write that fails later (disk full, I/O error) is reported once through `warn` and the log is
 * given up: it never changes what the transaction does. That is why every system error of a
 * write is caught here, not only the few a disk is known for.
 */
export function openInstallLog(file: string, now: () => Date, warn: (message: string) => void): InstallLog {
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY, 0o644);
  } catch (err) {
    if (isPermissionError(err)) throw permissionDenied(err, `cannot open the log file ${file}: ${err.code}`, { path: file, hint: err.code === 'EROFS' ? undefined : `run fussy as root, or pass a -l FILE this user may write; nothing was installed` });
    if (!isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENXIO', 'ENOSPC', 'EDQUOT', 'ENAMETOOLONG')) throw err;
    const why = err.code === 'ENOENT' ? 'its directory does not exist' : err.code === 'ELOOP' ? 'it is a symbolic link, which fussy does not follow' : err.code === 'ENXIO' ? 'it is a FIFO nobody reads' : err.code;
    throw new FussyError('LOG_UNUSABLE', `cannot open the log file ${file}: ${why}`, { cause: err, hint: 'create its directory (mkdir -p), or pass another -l FILE; nothing was installed' });
  }
  const st = fstatSync(fd);
  const wrong = !st.isFile() && !st.isCharacterDevice() ? 'it is not a regular file' : st.isFile() && st.nlink !== 1 ? `it has ${st.nlink} hard links (a link to another file, planted where the log goes?)` : undefined;
  if (wrong !== undefined) {
    closeSync(fd);
    throw new FussyError('LOG_UNUSABLE', `cannot use ${file} as the log file: ${wrong}`, { hint: 'pass another -l FILE; nothing was installed' });
  }
  return {
    line(text) {
      if (fd === undefined) return;
      try {
        const bytes = Buffer.from(`${now().toISOString()} ${text}\n`);
        for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
      } catch (err) {
        if (!isSystemError(err)) throw err;
        warn(`could not write to the log file ${file} (${err.code}); the install goes on without it`);
        const broken = fd;
        fd = undefined;
        try {
          closeSync(broken);
        } catch (e) {
          if (!isSystemError(e)) throw e; // the failure was just reported; close(2) may repeat it (EIO)
        }
      }
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
