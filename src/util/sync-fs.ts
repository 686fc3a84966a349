import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './run.js';

/**
 * Make a freshly written tree durable before it is renamed into place. One syncfs(2) through
 * `sync -f` (coreutils >= 8.24) costs one process start; fsync of each of thousands of files
 * costs ~0.5 ms each (PERF-NOTES). Falls back to fsync of every file and directory.
 */
export async function syncFilesystem(dir: string): Promise<void> {
  const r = await run('sync', ['-f', dir]).catch((err: unknown) => ({ exitCode: -1, stderr: String(err) }));
  if (r.exitCode === 0) return;
  fsyncTree(dir);
}

function fsyncTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) fsyncTree(p);
    else if (e.isFile()) fsyncPath(p);
  }
  fsyncPath(dir);
}

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
