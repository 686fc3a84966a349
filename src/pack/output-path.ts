import { mkdir, mkdtemp, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { FussyError, isErrno } from '../errors.js';

export interface OutputPlan {
  /** The package file to create. */
  file: string;
  /** A directory fussy created for it and must remove again if packing fails. */
  createdDir?: string;
}

/**
 * `-o` (docs/commands.md): an existing directory, or any path ending in "/" (created if needed), receives
 * `<release><suffix>`; any other path is the package file itself (its directory must exist).
 * Without -o, a fresh temp directory is made, as Fussy did.
 */
export async function planOutput(output: string | undefined, fileName: string, tmpDir: string): Promise<OutputPlan> {
  if (output === undefined || output === '') {
    const dir = await mkdtemp(join(tmpDir, 'fussy-pack-'));
    return { file: join(dir, fileName), createdDir: dir };
  }
  const abs = resolve(output);
  if (output.endsWith('/')) {
    const created = await mkdir(abs, { recursive: true });
    return { file: join(abs, fileName), createdDir: created === undefined ? undefined : created };
  }
  const st = await statOrUndefined(abs);
  if (st?.isDirectory()) return { file: join(abs, fileName) };
  const parent = await statOrUndefined(dirname(abs));
  if (!parent?.isDirectory()) {
    throw new FussyError('BAD_OUTPUT', `cannot write ${abs}: ${dirname(abs)} is not a directory`, {
      hint: `create it first, or end the -o path with "/" to have fussy create a directory for ${basename(abs)}`,
    });
  }
  return { file: abs };
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}
