/**
 * What the launchers in bin/ run: the CLI bundle (dist/bundle/cli.cjs, the whole CLI in one
 * CommonJS file) compiled with V8's code cache for it (cli.cjs.cache), so that a command starts
 * without parsing and compiling the ~1.4 MB of fussy, OpenPGP.js and node-tar it runs
 * (docs/performance.md, "Start-up"). Node 20 has no code cache for ES modules, hence CommonJS
 * through vm.Script, which has no loader for import(): the build refuses a bundle that calls it.
 * Only node's own modules are imported here: this file is loaded before the bundle, on every
 * start.
 *
 * The cache is made at build by a training run (scripts/train-cli.mjs: keygen, pack, install,
 * a delta, status, verify), and holds every function those compiled. It is code, trusted like
 * the bundle beside it (the same owner, read-only, never written by fussy at run time;
 * docs/security.md). It is checksummed with the sha256 of the bundle and of itself: one from
 * another build, or damaged, is not used (a checksum, not a signature: whoever can write it can
 * write the bundle too). V8 itself refuses one made by another V8 or with other flags. Without a
 * cache the bundle is compiled from its source, as node would.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as FS, fstatSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import type * as Cli from './main.js';

/** What happened to the cache: used, refused by V8, not made from this bundle (or damaged), or absent. */
export type CodeCacheUse = 'accepted' | 'rejected' | 'stale' | 'none';

export interface LoadedCli {
  readonly exports: typeof Cli;
  readonly cache: CodeCacheUse;
  /** The cache file for the bundle as compiled so far (the training run writes it after its commands). */
  record(): Buffer;
}

/** The bundle beside this file (dist/bundle/cli.cjs). */
export const CLI_BUNDLE = fileURLToPath(new URL('./cli.cjs', import.meta.url));

/** The cache file: the sha256 of the bundle's bytes followed by V8's data, then V8's data. */
const SUM_BYTES = 32;
/** More than any cache of this CLI (1.6 MB): a larger file is not read. */
const MAX_CACHE_BYTES = 64 << 20;
const checksum = (source: Buffer, data: Buffer): Buffer => createHash('sha256').update(source).update(data).digest();

/**
 * Compile and run the CLI bundle `file` as node runs a CommonJS module, with `file`.cache when its
 * checksum is of these very bytes: V8 checks that a cache was made by the same V8 with the same
 * flags, not that it is whole (a damaged one can crash node), and not which source it was made
 * from beyond its length.
 */
export function loadCli(file: string = CLI_BUNDLE): LoadedCli {
  // Stack traces in the original sources (node --enable-source-maps) come from node's own loader.
  if (process.sourceMapsEnabled) {
    const record = (): Buffer => {
      throw new Error('no code cache is recorded with source maps on');
    };
    return { exports: createRequire(import.meta.url)(file) as typeof Cli, cache: 'none', record };
  }
  const source = readFileSync(file);
  let cachedData: Buffer | undefined;
  let cache: CodeCacheUse = 'none';
  try {
    const bytes = readCache(`${file}.cache`);
    const data = bytes?.subarray(SUM_BYTES);
    if (bytes !== undefined && data !== undefined && bytes.length > SUM_BYTES && bytes.subarray(0, SUM_BYTES).equals(checksum(source, data))) cachedData = data;
    else cache = 'stale';
  } catch (err) {
    // No cache (a build without one), or one that cannot be read: compiled from the source.
    cache = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'stale';
  }
  // The wrapper node gives a CommonJS module; the same text at training and at every start.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`, { filename: file, cachedData });
  if (cachedData !== undefined) cache = script.cachedDataRejected === true ? 'rejected' : 'accepted';
  const module = { exports: {} as typeof Cli };
  (script.runInThisContext() as (...a: unknown[]) => void).call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  const record = (): Buffer => {
    const data = script.createCachedData();
    return Buffer.concat([checksum(source, data), data]);
  };
  return { exports: module.exports, cache, record };
}

/** The cache file's bytes; undefined unless it is a regular file (a FIFO would stall the start) of a sane size. */
function readCache(path: string): Buffer | undefined {
  const fd = openSync(path, FS.O_RDONLY | FS.O_NONBLOCK | FS.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    return st.isFile() && st.size <= MAX_CACHE_BYTES ? readFileSync(fd) : undefined;
  } finally {
    closeSync(fd);
  }
}

/** A launcher's whole job: run the CLI as `launcher` on this process's arguments. */
export async function launch(launcher: Cli.Launcher): Promise<void> {
  await loadCli().exports.runLauncher(launcher);
}
