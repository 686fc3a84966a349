import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { runQuiet } from './run.js';

/**
 * Make a freshly written tree durable before it is renamed into place. One syncfs(2) through
 * `sync -f` (coreutils >= 8.24) costs one process start; fsync of each of thousands of files
 * costs ~0.5 ms each (PERF-NOTES). Falls back to fsync of every file and directory.
 */
export async function syncFilesystem(dir: string): Promise<void> {
  try {
    if ((await runQuiet('sync', ['-f', dir])) === 0) return;
  } catch (err) {
    // No `sync` program (a minimal image): the fallback below does the same job.
    if (!(err instanceof FussyError && err.code === 'SETUP')) throw err;
  }
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
