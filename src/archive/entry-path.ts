import { FussyError } from '../errors.js';
import { checkReleaseName } from './release-name.js';

/** Deeper than any real firmware; node-tar's CVE-2024-28863 was a 1500-deep DoS. */
export const MAX_DEPTH = 128;
/** Linux PATH_MAX is 4096 for the whole path, target prefix included. */
export const MAX_PATH_BYTES = 3072;
/** Linux NAME_MAX: no file system takes a longer name. */
export const MAX_NAME_BYTES = 255;

export interface EntryName {
  release: string;
  /** Release-relative POSIX path; "." for the release directory itself. */
  rel: string;
}

/**
 * Split an archive member name into release and release-relative path, refusing anything that
 * is not a plain relative path below one top-level directory: absolute names ("/x", "//x"),
 * any ".." component, NUL bytes, excessive depth, names no file system takes (NAME_MAX). A single leading "./" is accepted (GNU tar
 * writes it for `tar czf - ./rel`); nothing is ever stripped or rewritten silently.
 */
export function splitEntryName(raw: string, what: string): EntryName {
  const unsafe = (why: string): never => {
    throw new FussyError('UNSAFE_PATH', `archive ${what} "${raw.slice(0, 200)}" ${why}`, {
      hint: 'the package was not made by fussy pack or was tampered with; it is refused as a whole',
    });
  };
  if (raw.includes('\0')) unsafe('contains a NUL byte');
  if (raw.startsWith('/')) unsafe('is an absolute path');
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) unsafe(`is longer than ${MAX_PATH_BYTES} bytes`);
  const parts = raw.replace(/^\.\//, '').split('/');
  if (parts[parts.length - 1] === '') parts.pop(); // directories end in "/"
  if (parts.length === 0 || parts[0] === '') unsafe('is empty');
  if (parts.length > MAX_DEPTH) unsafe(`is deeper than ${MAX_DEPTH} levels`);
  for (const p of parts) {
    if (p === '..') unsafe('contains a ".." component');
    if (p === '' || p === '.') unsafe('contains an empty or "." component');
    if (p.length > MAX_NAME_BYTES / 3 && Buffer.byteLength(p) > MAX_NAME_BYTES) unsafe(`has a name longer than ${MAX_NAME_BYTES} bytes ("${p.slice(0, 40)}...")`);
  }
  const release = checkReleaseName(parts[0] as string, 'top-level directory of the archive');
  return { release, rel: parts.length === 1 ? '.' : parts.slice(1).join('/') };
}
