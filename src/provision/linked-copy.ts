import { chownSync, chmodSync, constants, copyFileSync, lchownSync, linkSync, lutimesSync, mkdirSync, readlinkSync, renameSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { walkBeneath } from '../util/dir-fd.js';
import { fsyncDir } from '../util/fs-atomic.js';
import { removeTree } from '../util/remove-tree.js';
import { fsyncTree } from '../util/sync-fs.js';

const MAX_DEPTH = 1024;

/**
 * Make `to` a copy of the tree `from` whose files are hard links to `from`'s (the factory release
 * becomes `failsafe` without a second copy of its bytes, as dedup would share them anyway), or,
 * with `copy`, copies of them (a release without a manifest, whose files nothing can check). Built
 * in `stage` (a dot-entry of the same directory, which clean never touches; a leftover of a crash
 * is removed first) with every directory 0700 until it is whole, then each directory gets its
 * mode, owner and times, the tree is synced and renamed to `to` in one step: `to` is either
 * absent or complete. `from` is read by descriptor, never following a link (util/dir-fd.ts).
 */
export async function linkedCopy(from: string, to: string, stage: string, o: { copy?: boolean } = {}): Promise<void> {
  await removeTree(stage);
  mkdirSync(stage, 0o700);
  const dirs: [string, Stats][] = [];
  const top = walkBeneath(
    from,
    (rel, st, path) => {
      const here = join(stage, rel);
      if (st.isDirectory()) {
        mkdirSync(here, 0o700);
        dirs.push([here, st]);
      } else if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(path), here);
        lchownSync(here, st.uid, st.gid);
        lutimesSync(here, st.atime, st.mtime);
      } else if (st.isFile() && o.copy === true) {
        copyFileSync(path, here, constants.COPYFILE_EXCL);
        chownSync(here, st.uid, st.gid);
        chmodSync(here, st.mode & 0o7777);
        utimesSync(here, st.atime, st.mtime);
      } else if (st.isFile()) {
        linkSync(path, here);
      } else {
        throw new FussyError('SETUP', `${join(from, rel)} is neither a file, a directory nor a symbolic link: fussy does not copy it into failsafe`, { hint: 'a release holds only what a package can carry; remove it' });
      }
    },
    { maxDepth: MAX_DEPTH },
  );
  if (top === undefined) throw new FussyError('SETUP', `${from} is not a directory`, { hint: 'the factory release is gone: run fussy provision again to see what is left to do' });
  dirs.push([stage, top]);
  for (const [dir, st] of dirs.reverse()) {
    chownSync(dir, st.uid, st.gid);
    chmodSync(dir, st.mode & 0o7777);
    utimesSync(dir, st.atime, st.mtime);
  }
  fsyncTree(stage);
  renameSync(stage, to);
  await fsyncDir(join(to, '..'));
}
