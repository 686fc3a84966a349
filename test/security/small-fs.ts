import { execFileSync } from 'node:child_process';
import { mkdir, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';

/**
 * A tmpfs of `bytes` mounted on a fresh temp dir, for disk tests whose free space nothing else
 * changes (the shared /tmp fills and empties with every other test). Needs root (CI runs as
 * root); undefined when mounting is not allowed here.
 */
export async function smallFs(bytes: number): Promise<{ dir: string; unmount: () => void } | undefined> {
  const dir = await makeTmp('fussy-small-fs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    if (process.getuid?.() === 0) throw err;
    return undefined;
  }
  return { dir, unmount: () => execFileSync('umount', [dir]) };
}

/** A target on `fsDir` for `dev`'s keys, with a factory `current` directory. */
export async function targetOn(dev: Device, fsDir: string, name: string): Promise<Device> {
  const target = join(fsDir, name);
  await mkdir(join(target, 'current', 'etc'), { recursive: true });
  await writeFile(join(target, 'current', 'etc', 'version'), 'factory\n');
  return { ...dev, target };
}

/** The reserve that leaves exactly `writable` bytes that an install may write in `dir`. */
export async function reserveLeaving(dir: string, writable: number): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize - writable;
}
