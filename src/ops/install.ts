import { rename } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { DeltaBase } from '../archive/manifest.js';
import { FussyError } from '../errors.js';
import { noEvents } from '../events.js';
import type { Owner } from '../store/ownership.js';
import { checkSpace, freeBytes } from './install-space.js';
import { loadDeviceKeyring } from '../keyring/device-keyring.js';
import { abortedWith, throwIfAborted, untilAborted } from '../util/abort.js';
import { fsyncDir } from '../util/fs-atomic.js';
import { removeTree } from '../util/remove-tree.js';
import { preloadRunner } from '../util/run.js';
import { fsyncTree, SyncHelper } from '../util/sync-fs.js';
import { activate } from '../txn/activate.js';
import { HOOK_FILES } from '../txn/hooks.js';
import { DedupIndex } from '../store/dedup-index.js';
import { installedManifestSha256 } from '../store/installed-manifest.js';
import { failpoints } from '../util/failpoint.js';
import { readDeviceState, recordSequence } from '../store/device-state.js';
import { HashCache, monotonicMs, sealAfter } from '../store/hash-cache.js';
import { checkLegacy, checkPolicy, readDeviceType, type PolicyFacts } from './install-policy.js';
import { historyResultOf, recordHistory, type HistoryRecord } from '../store/history.js';
import { packageDigest } from '../store/package-digest.js';
import { trustedStateDir } from '../txn/target-lock.js';
import { checkLayout, CURRENT, ensureCurrentLink, FAILSAFE, freeReleaseName, readLayout, STATE_DIR } from '../store/layout.js';
import { clearJournal, writeJournal, type JournalStep } from '../txn/journal.js';
import { openPackage, type OpenedPackage } from '../openpgp/open-package.js';
import { openPackageSource, type PackageSource } from '../unpack/package-source.js';
import { spoolPackage, type Spooled } from '../unpack/spool-package.js';
import { withTarget } from '../txn/recover.js';
import { unpack, wasReadToEnd } from '../unpack/unpack.js';
import { HashLane, LANE_MIN } from '../unpack/hash-lane.js';
import { sameReleaseAs } from '../store/same-release.js';
import type { TargetRunOptions } from '../txn/target-run-options.js';

/**
 * `now` is the clock for signature times, the lock, the journal and the history. `signal` stops
 * the install (SIGINT/SIGTERM in the CLI). Until the package is verified and renamed into place,
 * and until the new release's first hook starts, it is a refusal: staging removed, history
 * record, INTERRUPTED (or the signal's own Error reason). Once a hook of the new release has
 * started, the running hook's process group is terminated: a failed hook, so the previous release
 * is re-enabled (exit 3). Recovery hooks and the switch are never interrupted.
 */
export interface InstallOptions extends TargetRunOptions {
  package: string;
  keyring: string;
  target: string;
  /** Bytes to leave free after the install (default 16 MiB). */
  reserveBytes?: number;
  owner: Owner;
  /** The package's sha256 for the history, if the caller started it earlier (history.ts). */
  packageDigest?: Promise<string | undefined>;
  /** Install a package older than the device's recorded sequence (a local root decision). */
  allowDowngrade?: boolean;
  /** This device's type for `compatible` lists; default: the keyring dir's `device-type` file. */
  deviceType?: string;
  /** `package` already opened by the caller (openPackageSource), who closes it; default: opened here. */
  source?: PackageSource;
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
  /** What was done with a transaction an earlier crash interrupted, if there was one. */
  recovered?: string;
  /** An installed release with the same manifest (the same package installed again). */
  sameAs?: string;
}

/** Load execa (~60 ms of the main thread) for the new release's hooks while the unpack waits on zlib; without hooks it is not loaded. */
function preloadHookRunner(): void {
  void preloadRunner().catch(() => {});
}

/** In the state dir: sha256 of installed files, valid while their ctime is unchanged. */
const HASH_CACHE = 'hash-cache.json';
const DEFAULT_RESERVE = 16 * 1024 * 1024;

/**
 * `fussy install` (docs/crash-safety.md): lock → ensure `current` is a link → stream decrypt + verify + gunzip
 * + untar into a hidden staging dir with dedup → only after the stream ended AND the signatures
 * check out: sync, rename to the release name → pre-install → swap `current` → post-install,
 * with recovery to the previous release (else failsafe) on failure. Nothing from the package is
 * executed or visible under a release name before it is verified.
 */
export async function install(o: InstallOptions): Promise<InstallResult> {
  const own = o.source === undefined ? openPackageSource(resolve(o.package)) : undefined;
  const source = (o.source ?? own) as PackageSource;
  let spooled: Spooled | undefined;
  let lane: HashLane | undefined;
  try {
    // A pipe is read to its end before the lock is taken: never wait on input while holding it.
    if (source.kind === 'pipe') {
      const target = resolve(o.target);
      // The copy goes into .fussy/, checked (and made) like every directory fussy relies on.
      const stateDir = trustedStateDir(target);
      const maxBytes = Math.max(0, (await freeBytes(target)) - (o.reserveBytes ?? DEFAULT_RESERVE));
      spooled = await spoolPackage(source, { stateDir, maxBytes, signal: o.signal, onWaiting: () => o.onEvent?.({ type: 'phase', phase: 'spool' }) });
    }
    // Large files are hashed on a thread (unpack/hash-lane.ts): started now, while the keyring
    // and OpenPGP.js load, it is up by the first one. Not for a package too small to hold one.
    const pkg = spooled?.source ?? source;
    lane = pkg.size() >= LANE_MIN ? HashLane.start() : undefined;
    return await installFrom(o, pkg, spooled?.sha256, lane);
  } finally {
    await lane?.stop();
    own?.close();
    spooled?.source.close();
  }
}

/** `src`: the package as read (the caller's file, or the spooled copy of a pipe); `sha256` if known; `lane` for unpack. */
async function installFrom(o: InstallOptions, src: PackageSource, sha256: string | undefined, lane: HashLane | undefined): Promise<InstallResult> {
  const started = Date.now();
  const pkg = resolve(o.package);
  const emit = o.onEvent ?? noEvents;
  const target = resolve(o.target);
  const now = o.now ?? new Date();
  const keyringDir = resolve(o.keyring);
  const ring = await loadDeviceKeyring(keyringDir);
  for (const u of ring.unreadable) emit({ type: 'log', message: `keyring ${keyringDir}: ${u}; that key is not trusted (remove it, or replace it with one OpenPGP.js reads)` });
  emit({ type: 'phase', phase: 'lock' });
  const stateDir = join(target, STATE_DIR);
  const fp = failpoints(o.failpoint);
  // Facts for the history record, filled in as they become known.
  const facts: { release?: string; previous?: string; signers?: string[]; delta?: { bases: DeltaBase[] } } = {};
  return withTarget(target, { ...o, what: `install ${basename(o.package)}`, now }, async (recovered) => {
    // Started only now that the lock is held: a busy target answers at once, with nothing left running.
    const digest = sha256 !== undefined ? Promise.resolve(sha256) : (o.packageDigest ?? packageDigest(src.path, undefined, src.size()));
    fp.at('locked');
    try {
      const early = abortedWith(o.signal); // came while an earlier transaction was recovered
      if (early !== undefined) throw refusal(early, pkg);
      // A factory `current` directory becomes failsafe only once the package has been verified
      // (a refused package changes nothing); until then it is indexed for dedup under its old name.
      const layout = await readLayout(target);
      checkLayout(layout);
      const previous = layout.currentIsDir ? FAILSAFE : (layout.current ?? (layout.hasFailsafe ? FAILSAFE : undefined));
      facts.previous = previous;
      const cacheFile = join(stateDir, HASH_CACHE);
      const index = DedupIndex.build(
        [...layout.releases, ...(layout.currentIsDir ? [CURRENT] : [])].map((r) => join(target, r)),
        { cache: HashCache.load(cacheFile), failpoints: fp, onEvent: emit },
      );
      const state = await readDeviceState(stateDir);
      const deviceType = o.deviceType ?? (await readDeviceType(keyringDir));
      const reserve = o.reserveBytes ?? DEFAULT_RESERVE;
      const free = await freeBytes(target);
      const writable = Math.max(0, free - reserve);
      // The inflate bound (CPU and time, not disk: unpack checks every write against `writable`):
      // an update expands to more than it writes, by at most what dedup may share. A manifest
      // tightens it to its own total (unpack.ts).
      const cap = writable + index.bytes;
      const policy: PolicyFacts = { recorded: state.highestSequence, deviceType, allowDowngrade: o.allowDowngrade === true, legacy: ring.policy.legacy };

      emit({ type: 'phase', phase: 'unpack' });
      const staging = join(stateDir, `staging-${process.pid}-${Date.now()}`);
      const flusher = new SyncHelper(stateDir);
      let unpacked;
      let signers: string[];
      let encrypted: boolean;
      let opened: OpenedPackage | undefined;
      let unpackedAt = 0;
      try {
        opened = await openPackage(pkg, ring, { maxBytes: cap, now, read: src.path, size: src.size() });
        encrypted = opened.encrypted;
        unpacked = await unpack(opened.data, {
          staging,
          index,
          maxEntries: ring.policy.maxEntries,
          lane,
          owner: o.owner,
          maxBytes: cap,
          maxWrite: writable,
          onManifest: (m) => {
            if (m.bases !== undefined) facts.delta = { bases: m.bases };
            if (m.entries.some((e) => HOOK_FILES.has(e.path))) preloadHookRunner();
            checkPolicy(m, policy, keyringDir);
            checkSpace(m, index, o.owner, free, reserve, target);
          },
          onLegacy: () => {
            checkLegacy(policy);
            preloadHookRunner();
          },
          describeDevice: () => [...layout.releases, ...(layout.currentIsDir ? [CURRENT] : [])].map((r) => `${r} (${installedManifestSha256(join(target, r))?.slice(0, 12) ?? 'no manifest'})`).join(', ') || 'no release',
          onProgress: (done, total) => emit({ type: 'progress', phase: 'unpack', done, total }),
          onWritten: (n) => {
            flusher.wrote(n);
            fp.wrote(n);
          },
          onDataWritten: () => {
            unpackedAt = monotonicMs(); // the last file is written, with its metadata (sealAfter); what follows checks, and sets directories' modes
            flusher.kick();
          },
          signal: o.signal,
        });
        if (unpackedAt === 0) unpackedAt = monotonicMs();
        ({ signers } = await untilAborted(opened.verdict(), o.signal));
        facts.signers = signers;
        throwIfAborted(o.signal);
      } catch (err) {
        flusher.close();
        await removeTree(staging);
        // A refusal of the content is told only to a package whose signature is good (unpack read
        // it to its end; unpack.ts): a forged one gets the signature's refusal.
        const cause = wasReadToEnd(err) && opened !== undefined ? await untilAborted(opened.verdict(), o.signal).then(() => err, (e: unknown) => e) : err;
        // A child that died of the same Ctrl-C (gpg) fails in its own words: the signal is the cause.
        throw refusal(abortedWith(o.signal) ?? cause, pkg);
      } finally {
        opened?.close();
      }

      fp.at('after-unpack');
      emit({ type: 'phase', phase: 'commit' });
      let name: string;
      let sealedAt: number;
      const sequence = unpacked.manifest?.sequence;
      const txn = { action: 'install' as const, id: `${process.pid}-${started}`, started: now.toISOString(), created: true, previous, sequence };
      try {
        // The staging tree's sync and the journal's own are independent: the disk does both at once.
        const syncing = flusher.sync().catch(() => false);
        name = await freeReleaseName(target, unpacked.release);
        facts.release = name;
        await writeJournal(stateDir, { ...txn, step: 'commit', release: name }); // a staging dir left by a crash is swept anyway
        fp.at('after-commit-journal');
        if (await ensureCurrentLink(target, fp)) emit({ type: 'log', message: `${target}/current was a directory: it is now ${FAILSAFE}, and current -> ${FAILSAFE}` });
        fp.at('after-ensure-current');
        const synced = await syncing;
        flusher.close();
        if (!synced) fsyncTree(staging); // not sync -f again: see SyncHelper.sync
        sealedAt = await sealAfter(unpackedAt);
        await rename(staging, join(target, name));
        await fsyncDir(target);
        fp.at('after-rename');
      } catch (err) {
        flusher.close();
        await removeTree(staging);
        await clearJournal(stateDir);
        throw err;
      }

      const sameAs = sameReleaseAs(target, name, layout.releases);
      if (sameAs !== undefined) emit({ type: 'log', message: `${name} is the same release as ${sameAs} (identical manifest): installed again as a separate copy` });
      emit({ type: 'phase', phase: 'activate' });
      // The hash cache is recorded while the hooks run (see HashCache.save on why that is safe).
      const recording = index.cache.save(cacheFile, join(target, name), unpacked.hashes, sealedAt);
      try {
        const journal = (step: JournalStep, extra: { back?: string; keepRelease?: boolean } = {}): Promise<void> => writeJournal(stateDir, { ...txn, ...extra, step, release: name });
        await activate({ ...o, target, release: name, previous, created: true, journal, failpoints: fp });
        if (sequence !== undefined) await recordSequence(stateDir, sequence);
        await clearJournal(stateDir);
      } catch (err) {
        await clearJournal(stateDir); // activate re-enabled the previous release (or says it could not)
        throw refusal(err, pkg);
      } finally {
        await recording;
      }
      const result: InstallResult = {
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
        recovered,
        sameAs,
      };
      await recordHistory(stateDir, { action: 'install', result: 'ok', ...facts, package: await packageFacts(pkg, src, digest), time: now.toISOString(), durationMs: Date.now() - started }, emit);
      return result;
    } catch (err) {
      const { result, error } = historyResultOf(err);
      const rec = { action: 'install' as const, result, ...facts, package: await packageFacts(pkg, src, digest), error, time: now.toISOString(), durationMs: Date.now() - started };
      // The install's own error is what the caller must see, even if the history cannot take it.
      await recordHistory(stateDir, rec, emit).catch((e: unknown) => emit({ type: 'log', message: `could not add to the history: ${(e as Error).message}` }));
      throw err;
    }
  });
}

async function packageFacts(file: string, src: PackageSource, digest: Promise<string | undefined>): Promise<HistoryRecord['package']> {
  return { file, bytes: src.size(), sha256: await digest };
}

/** An interruption before anything of the new release ran: say that nothing was installed. */
function refusal(err: unknown, pkg: string): unknown {
  if (!(err instanceof FussyError && err.code === 'INTERRUPTED')) return err;
  return new FussyError('INTERRUPTED', `${err.message}: ${basename(pkg)} was not installed`, { cause: err, details: err.details });
}
