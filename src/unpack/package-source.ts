import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';
import { permissionDenied } from '../util/system-error.js';

/**
 * The package, opened once (O_NONBLOCK: opening a FIFO never waits for a writer) and checked on
 * that descriptor, never stat-then-open by path: whatever is swapped in at the path afterwards is
 * not what fussy reads. Everything that reads the package (the OpenPGP stream, the decryption
 * thread, the digest thread, gpg for a gpg-held device key) opens `path`, /proc/PID/fd/N, which is
 * the same open file. Light on imports: the CLI opens it before the install module has loaded.
 */
export class PackageSource {
  /** The package as the caller named it, for messages and the history. */
  readonly name: string;
  /** 'file': a regular file, read in place. 'pipe': a FIFO, pipe or socket, spooled before the lock is taken. */
  readonly kind: 'file' | 'pipe';
  #fd: number | undefined;
  #size: number | undefined;

  /** `size`: a regular file's size when it was opened (else taken at the first size()). */
  constructor(name: string, fd: number, kind: 'file' | 'pipe', size?: number) {
    this.name = name;
    this.#fd = fd;
    this.kind = kind;
    this.#size = size;
  }

  get fd(): number {
    if (this.#fd === undefined) throw new Error(`package source ${this.name} is closed`);
    return this.#fd;
  }

  /** A path that opens this very file, in this process, its threads and its children. */
  get path(): string {
    return `/proc/${process.pid}/fd/${this.fd}`;
  }

  /**
   * The package's bytes: a regular file's size when it was opened (a spooled copy's once it is
   * written, at the first call). Nothing that reads the package reads past them, so bytes its
   * owner appends meanwhile (a sparse terabyte in an instant) are never read, hashed or waited
   * for with the target's lock held; a package cut short meanwhile is refused as truncated.
   */
  size(): number {
    this.#size ??= fstatSync(this.fd).size;
    return this.#size;
  }

  /** Hand the descriptor to something that closes it (a stream); close() then does nothing. */
  take(): number {
    const fd = this.fd;
    this.#fd = undefined;
    return fd;
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * Open `file` (absolute) as a package: a regular file, or a FIFO (also `/dev/stdin` from a shell
 * pipe), which the install spools first. Anything else (a directory, a terminal, a device) is a
 * usage error naming it; so is a path that cannot be opened.
 */
export function openPackageSource(file: string): PackageSource {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if (isErrno(err, 'ENXIO')) {
      throw new FussyError('PACKAGE_UNREADABLE', `cannot read package ${file}: ENXIO (a socket, or a device without a driver)`, { cause: err, hint: 'to read the package from stdin, pass - as the package' });
    }
    if (isErrno(err, 'EAGAIN')) {
      throw new FussyError('PACKAGE_UNREADABLE', `cannot read package ${file}: EAGAIN (its owner holds a lease on it, fcntl F_SETLEASE)`, { cause: err, hint: 'copy the package somewhere only root writes, or try again once the lease is released' });
    }
    if (isErrno(err, 'EACCES', 'EPERM')) throw permissionDenied(err, `cannot read package ${file}: ${err.code}`, { path: file, need: 'read' });
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'ENAMETOOLONG')) {
      throw new FussyError('PACKAGE_UNREADABLE', `cannot read package ${file}: ${err.code}`, { cause: err, hint: 'check the path' });
    }
    throw err;
  }
  try {
    return sourceOf(file, fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * The package on stdin (`fussy install -`): descriptor 0 itself, not /dev/stdin reopened, which
 * fails for a socket (what node and many daemons give a child as its stdin "pipe").
 */
export function stdinPackageSource(): PackageSource {
  try {
    return sourceOf(STDIN_NAME, 0);
  } catch (err) {
    if (!isErrno(err, 'EBADF')) throw err;
    throw new FussyError('PACKAGE_UNREADABLE', 'the package is to come from stdin, which is closed', { cause: err, hint: 'pipe the package in: fussy install - < FILE' });
  }
}

export const STDIN_NAME = '/dev/stdin';

function sourceOf(file: string, fd: number): PackageSource {
  const st = fstatSync(fd);
  if (st.isFile()) return new PackageSource(file, fd, 'file', st.size);
  if (st.isFIFO() || st.isSocket()) return new PackageSource(file, fd, 'pipe');
  const what = st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a terminal or character device' : st.isBlockDevice() ? 'a block device' : 'not a regular file';
  throw new FussyError('PACKAGE_UNREADABLE', `package ${file} is ${what}, not a package file`, { hint: 'pass a .tar.gz.gpg / .tar.gz.asc file, or pipe it in as - (fussy install -)' });
}
