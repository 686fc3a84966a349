import { FussyError, type ErrorCode } from '../errors.js';
import { readSmallFile } from '../util/read-small-file.js';

/**
 * Read a file the daemon is configured with (config, certificates, CRL, roles): never through a
 * symlink at its name's last component is fine for root's own /etc, but a FIFO must not block and
 * a huge file must not be read whole, so readSmallFile's rules apply. undefined when the file does
 * not exist; any other problem is `code` naming the file.
 */
/** The most a settings file (roles, CRL, certificates) may hold. */
export const SETTING_MAX = 1024 * 1024;

export function readSettingFile(path: string, code: ErrorCode, what: string, max = SETTING_MAX): Buffer | undefined {
  let r: ReturnType<typeof readSmallFile>;
  try {
    r = readSmallFile(path, max);
  } catch (err) {
    throw new FussyError(code, `cannot read the ${what} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, hint: `make ${path} a readable regular file`, details: { path } });
  }
  if (r === undefined) return undefined;
  if ('problem' in r) throw new FussyError(code, `the ${what} ${path} ${r.problem}`, { hint: `make ${path} a regular file of at most ${max} bytes`, details: { path } });
  return r.data;
}

/** readSettingFile, and a missing file is `code` too. */
export function requireSettingFile(path: string, code: ErrorCode, what: string, max?: number): Buffer {
  const data = readSettingFile(path, code, what, max);
  if (data === undefined) throw new FussyError(code, `the ${what} ${path} does not exist`, { hint: `create it, or name another file in fussyd.conf`, details: { path } });
  return data;
}
