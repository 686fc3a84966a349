import { createCipheriv, createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface TreeNode {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  mtime: number;
  size?: number;
  sha256?: string;
  target?: string;
  ino?: number;
}

/**
 * Everything about a tree that an install must reproduce, sorted by path. `skip`: paths (relative
 * to the root) whose subtree is left out, the path itself kept. Read with synchronous calls: a
 * test does one thing at a time here, and a promise per lstat and read costs several times the
 * call (the suite takes a few thousand of these snapshots).
 */
export async function snapshotTree(root: string, opts: { inodes?: boolean; skip?: string[] } = {}): Promise<TreeNode[]> {
  return Promise.resolve(snapshotTreeSync(root, opts));
}

function snapshotTreeSync(root: string, opts: { inodes?: boolean; skip?: string[] }): TreeNode[] {
  const out: TreeNode[] = [];
  const walk = (rel: string): void => {
    const abs = rel === '' ? root : join(root, rel);
    const st = lstatSync(abs);
    const base = { path: rel || '.', mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      out.push({ ...base, type: 'dir' });
      if (opts.skip?.includes(rel) === true) return;
      for (const name of readdirSync(abs).sort()) walk(rel === '' ? name : `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      out.push({ path: base.path, type: 'symlink', mode: 0, mtime: 0, target: readlinkSync(abs) });
    } else {
      const node: TreeNode = { ...base, type: 'file', size: st.size, sha256: createHash('sha256').update(readFileSync(abs)).digest('hex') };
      if (opts.inodes) node.ino = st.ino;
      out.push(node);
    }
  };
  walk('');
  return out;
}

export interface SampleFile {
  path: string;
  content?: string | Buffer;
  mode?: number;
  symlink?: string;
  dir?: boolean;
}

export const MTIME = 1_700_000_000;

/** Deterministic bytes that look random (AES-CTR of zeros, keyed by `seed`): they do not compress. */
export const noise = (seed: number, n: number): Buffer => createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/** Write a small firmware tree; every entry gets MTIME unless it is a symlink. */
export async function writeTree(root: string, files: SampleFile[]): Promise<string> {
  await mkdir(root, { recursive: true });
  for (const f of files) {
    const abs = join(root, f.path);
    await mkdir(f.dir ? abs : dirname(abs), { recursive: true });
    if (f.symlink !== undefined) await symlink(f.symlink, abs);
    else if (!f.dir) {
      await writeFile(abs, f.content ?? `content of ${f.path}\n`);
      await chmod(abs, f.mode ?? 0o644);
    } else if (f.mode !== undefined) await chmod(abs, f.mode);
  }
  // mtimes last, deepest first, so creating children does not bump their parents again.
  const paths = [...files.filter((f) => f.symlink === undefined).map((f) => f.path), ...new Set(files.map((f) => dirname(f.path)))].sort((a, b) => b.length - a.length);
  for (const p of paths) await utimes(join(root, p), MTIME, MTIME);
  await utimes(root, MTIME, MTIME);
  return root;
}

/** A firmware-like sample: binaries, libraries with a .so symlink chain, config, random data, hooks. */
export function sampleFirmware(): SampleFile[] {
  const random = Buffer.alloc(300 * 1024);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 13 & 0xff;
  return [
    { path: 'bin/app', content: '#!/bin/sh\necho app\n', mode: 0o755 },
    { path: 'bin/helper', content: '#!/bin/sh\necho helper\n', mode: 0o750 },
    { path: 'lib/libfoo.so.1.2', content: Buffer.from('ELF' + 'x'.repeat(5000)) },
    { path: 'lib/libfoo.so.1', symlink: 'libfoo.so.1.2' },
    { path: 'lib/libfoo.so', symlink: 'libfoo.so.1' },
    { path: 'etc/app/app.conf', content: 'level = 3\n'.repeat(50), mode: 0o640 },
    { path: 'etc/fussy/policy', content: 'threshold = 1\n' },
    { path: 'share/blob.bin', content: random },
    { path: 'share/empty', content: '' },
    { path: 'var/empty', dir: true },
    { path: 'opt/link-to-etc', symlink: '../etc/app' },
    { path: '.pre-install', content: '#!/bin/sh\necho pre "$@"\n', mode: 0o755 },
    { path: '.post-install', content: '#!/bin/sh\necho post "$@"\n', mode: 0o755 },
  ];
}
