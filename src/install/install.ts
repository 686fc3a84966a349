import { mkdir, readdir, rename, rm, statfs } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { FussyError } from '../errors.js';
import type { Manifest } from '../archive/manifest.js';
import { loadDeviceKeyring } from '../keyring/device-keyring.js';
import { acquireLock, type LockHandle } from '../lock/pid-lock.js';
import { fsyncDir } from '../util/fs-atomic.js';
import { preloadRunner } from '../util/run.js';
import { SyncHelper, syncFilesystem } from '../util/sync-fs.js';
import { activate, type ActivateEvent } from './activate.js';
import { DedupIndex } from './dedup-index.js';
import { HashCache } from './hash-cache.js';
import { checkLayout, CURRENT, ensureCurrentLink, FAILSAFE, freeReleaseName, readLayout, STATE_DIR } from './layout.js';
import { openPackage } from './open-package.js';
import { unpack } from './unpack.js';

export type InstallEvent =
  | { type: 'phase'; phase: 'lock' | 'unpack' | 'commit' | 'activate' }
  | { type: 'progress'; phase: 'unpack'; done: number; total?: number }
  | { type: 'log'; message: string }
  | ActivateEvent;

export interface InstallOptions {
  package: string;
  keyring: string;
  target: string;
  /** Environment for hooks (fussy adds FUSSY_*), and their working directory. */
  env: Record<string, string | undefined>;
  cwd: string;
  hookTimeoutMs?: number;
  /** Bytes to leave free after the install (default 16 MiB). */
  reserveBytes?: number;
  /** Wait for a running install/clean instead of failing with LOCKED. */
  wait?: boolean;
  owner: { asRoot: boolean; uid: number; gid: number };
  now?: Date;
  onEvent?: (e: InstallEvent) => void;
}

export interface InstallResult {
  release: string;
  path: string;
  previous?: string;
  signers: string[];
  encrypted: boolean;
  manifest: boolean;
  files: number;
  writtenBytes: number;
  deduplicatedBytes: number;
  durationMs: number;
}

/** In the state dir: sha256 of installed files, valid while their ctime is unchanged. */
const HASH_CACHE = 'hash-cache.json';
const DEFAULT_RESERVE = 16 * 1024 * 1024;
const BLOCK = 4096;

/**
 * `fussy install` (SPEC §4): lock → ensure `current` is a link → stream decrypt + verify + gunzip
 * + untar into a hidden staging dir with dedup → only after the stream ended AND the signatures
 * check out: sync, rename to the release name → pre-install → swap `current` → post-install,
 * with recovery to the previous release (else failsafe) on failure. Nothing from the package is
 * executed or visible under a release name before it is verified.
 */
export async function install(o: InstallOptions): Promise<InstallResult> {
  const started = Date.now();
  const emit = o.onEvent ?? (() => {});
  const target = resolve(o.target);
  const now = o.now ?? new Date();
  const ring = await loadDeviceKeyring(resolve(o.keyring));
  await readLayout(target); // target must exist before a lock is made in it
  emit({ type: 'phase', phase: 'lock' });
  const lock = await takeLock(target, `install ${basename(o.package)}`, o.wait === true, now);
  try {
    // A factory `current` directory becomes failsafe only once the package has been verified
    // (a refused package changes nothing); until then it is indexed for dedup under its old name.
    const layout = await readLayout(target);
    checkLayout(layout);
    const previous = layout.currentIsDir ? FAILSAFE : (layout.current ?? (layout.hasFailsafe ? FAILSAFE : undefined));
    const stateDir = join(target, STATE_DIR);
    await removeStaleStaging(stateDir, emit);
    const cacheFile = join(stateDir, HASH_CACHE);
    const index = DedupIndex.build(
      [...layout.releases, ...(layout.currentIsDir ? [CURRENT] : [])].map((r) => join(target, r)),
      HashCache.load(cacheFile),
    );
    const reserve = o.reserveBytes ?? DEFAULT_RESERVE;
    const free = await freeBytes(target);
    const writable = Math.max(0, free - reserve);
    // An update expands to far more than it writes: everything dedup may share counts too.
    const cap = writable + index.bytes;

    emit({ type: 'phase', phase: 'unpack' });
    void preloadRunner().catch(() => {}); // for the hooks, while the main thread waits on zlib
    const staging = join(stateDir, `staging-${process.pid}-${Date.now()}`);
    const flusher = new SyncHelper(stateDir);
    let unpacked;
    let signers: string[];
    let encrypted: boolean;
    try {
      const opened = await openPackage(resolve(o.package), ring, { maxBytes: cap, now });
      encrypted = opened.encrypted;
      unpacked = await unpack(opened.data, {
        staging,
        index,
        owner: o.owner,
        maxBytes: cap,
        maxWrite: writable,
        onManifest: (m) => checkSpace(m, index, o.owner, free, reserve, target),
        onProgress: (done, total) => emit({ type: 'progress', phase: 'unpack', done, total }),
        onWritten: (n) => flusher.wrote(n),
      });
      ({ signers } = await opened.verdict());
    } catch (err) {
      flusher.close();
      await rm(staging, { recursive: true, force: true });
      throw err;
    }

    emit({ type: 'phase', phase: 'commit' });
    let name: string;
    try {
      if (await ensureCurrentLink(target)) emit({ type: 'log', message: `${target}/current was a directory: it is now ${FAILSAFE}, and current -> ${FAILSAFE}` });
      name = await freeReleaseName(target, unpacked.release);
      const synced = await flusher.sync();
      flusher.close();
      if (!synced) await syncFilesystem(staging);
      await rename(staging, join(target, name));
      await fsyncDir(target);
    } catch (err) {
      flusher.close();
      await rm(staging, { recursive: true, force: true });
      throw err;
    }

    emit({ type: 'phase', phase: 'activate' });
    // The hash cache is recorded while the hooks run (see HashCache.save on why that is safe).
    const recording = index.cache.save(cacheFile, join(target, name), unpacked.hashes);
    try {
      await activate({ target, release: name, previous, env: o.env, cwd: o.cwd, hookTimeoutMs: o.hookTimeoutMs ?? 600_000, emit });
    } finally {
      await recording;
    }
    return {
      release: name,
      path: join(target, name),
      previous: previous === undefined ? undefined : join(target, previous),
      signers,
      encrypted,
      manifest: unpacked.manifest !== undefined,
      files: unpacked.files,
      writtenBytes: unpacked.writtenBytes,
      deduplicatedBytes: unpacked.linkedBytes,
      durationMs: Date.now() - started,
    };
  } finally {
    await lock.release();
  }
}

async function takeLock(target: string, what: string, wait: boolean, now: Date): Promise<LockHandle> {
  const file = join(target, STATE_DIR, 'lock');
  for (;;) {
    try {
      return await acquireLock(file, what, { now });
    } catch (err) {
      if (!(wait && err instanceof FussyError && err.code === 'LOCKED')) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Staging dirs of installs that crashed: safe to remove, since we hold the lock. */
async function removeStaleStaging(stateDir: string, emit: (e: InstallEvent) => void): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  for (const n of await readdir(stateDir)) {
    if (n.startsWith(`${HASH_CACHE}.tmp-`)) await rm(join(stateDir, n), { force: true }); // a cache write cut short
    if (!n.startsWith('staging-')) continue;
    await rm(join(stateDir, n), { recursive: true, force: true });
    emit({ type: 'log', message: `removed ${join(stateDir, n)} left by an interrupted install` });
  }
}

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** SPEC: enough disk space, from the manifest net of dedup, is checked before writing. */
function checkSpace(m: Manifest, index: DedupIndex, owner: InstallOptions['owner'], free: number, reserve: number, target: string): void {
  let need = 0;
  for (const e of m.entries) {
    if (e.type === 'directory' || e.type === 'symlink') need += BLOCK;
    if (e.type !== 'file' || e.size === undefined || e.sha256 === undefined) continue;
    const mode = owner.asRoot ? e.mode : e.mode & ~0o6000;
    const uid = owner.asRoot ? e.uid : owner.uid;
    const gid = owner.asRoot ? e.gid : owner.gid;
    if (!index.probablyHas({ sha256: e.sha256, size: e.size, mode, uid, gid })) need += Math.ceil(e.size / BLOCK) * BLOCK;
  }
  if (need + reserve > free) {
    throw new FussyError('NO_SPACE', `${m.release} needs ${need} bytes in ${target} (after sharing identical files) plus a ${reserve}-byte reserve; ${free} are free`, {
      hint: 'free space with fussy clean, then install again',
    });
  }
}
