import { FussyError } from '../errors.js';

/** A script or data file name: one plain path component, ASCII, no leading dot (docs/daemon.md). */
export const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A script id: the sha256 of its bytes, lower-case hex. */
export const SCRIPT_ID = /^[0-9a-f]{64}$/;

/** `name` as it is, or BAD_NAME naming it: `..`, `a/b`, a leading dot, NUL, non-ASCII, over 128 characters. */
export function checkName(name: string, what = 'script'): string {
  if (NAME.test(name)) return name;
  const shown = JSON.stringify(name.length > 140 ? `${name.slice(0, 140)}...` : name);
  throw new FussyError('BAD_NAME', `${what} name ${shown} is not allowed`, {
    hint: 'a name is one path component of letters, digits, "_", "-" and "." (not first), at most 128 characters',
    details: { name: name.slice(0, 256) },
  });
}

/** An upload is named by the sha256 of the whole package: 64 lower-case hex digits, or BAD_NAME. */
export function checkUploadId(sha256: string): string {
  if (SCRIPT_ID.test(sha256)) return sha256;
  throw new FussyError('BAD_NAME', `upload ${JSON.stringify(sha256.slice(0, 80))} is not named by a sha256`, {
    hint: 'name an upload by the sha256 of the whole package: 64 lower-case hexadecimal digits',
    details: { name: sha256.slice(0, 256) },
  });
}
