/**
 * fussy's public API (docs/api.md): what the CLI, the device daemon and other programs call.
 * Each operation takes one options object; only what a caller must decide is required (install:
 * `package`, `keyring`, `target`; status: `target`). Hooks get the caller's environment and
 * working directory unless given; the owner is the calling process (as root, archive owners are
 * kept). Every operation on a target reports through one callback, `onEvent`, with one event
 * type, and stops on `signal` where it safely can. Errors are FussyError: `code` for programs,
 * `exitCode` for the status the CLI exits with. Nothing here keeps state between calls, exits the
 * process or leaves a thread behind; see docs/api.md for the one idle helper process a first
 * install starts. A permission problem (not root, a read-only mount) leaves every operation as
 * SETUP naming the path (util/system-error.ts), never as a raw EACCES.
 */
import { clean as cleanOp, type CleanResult } from './ops/clean.js';
import { install as installOp, type InstallEvent, type InstallResult } from './ops/install.js';
import { linkTree as linkTreeOp, type LinkTreeOptions, type LinkTreeResult } from './ops/link-tree.js';
import { rollback as rollbackOp, type RollbackResult } from './ops/rollback.js';
import { status as statusOp, type TargetStatus } from './ops/status.js';
import { verify as verifyOp, verifyAndRepair, type ReleaseReport, type RepairResult } from './ops/verify.js';
import { keygen as keygenOp, type KeygenOptions, type KeygenResult } from './keyring/keygen.js';
import { withLock, type WithLockOptions } from './lock/with-lock.js';
import { pack as packOp, type PackOptions, type PackResult } from './pack/pack.js';
import { readHistory, type History } from './store/history.js';
import { requireTarget, STATE_DIR } from './store/layout.js';
import { processOwner, type Owner } from './store/ownership.js';
import { recover as recoverOp, type Recovery } from './txn/recover.js';
import { withPermissionProblems as surfaced } from './util/system-error.js';
import { join, resolve } from 'node:path';

export { FussyError, type ErrorCode } from './errors.js';
export { withLock };
export type { PackOptions, PackResult, LinkTreeOptions, LinkTreeResult, WithLockOptions, KeygenOptions, KeygenResult, InstallResult, RollbackResult, CleanResult, Recovery, TargetStatus, History, Owner, ReleaseReport, RepairResult };

/** What an operation on a target reports while it runs: phases, progress, hook output, the switch, recovery, notes. */
export type FussyEvent = InstallEvent;

/** Build a signed (and optionally encrypted) package from a release tree. */
export function pack(o: PackOptions): Promise<PackResult> {
  return surfaced(packOp(o));
}

/** Hard-link a tree against installed releases (fussy link-tree). */
export function linkTree(o: LinkTreeOptions): Promise<LinkTreeResult> {
  return surfaced(linkTreeOp(o));
}

/** Make a signing or device key pair. */
export function keygen(o: KeygenOptions): Promise<KeygenResult> {
  return surfaced(keygenOp(o));
}

/** Hooks run for 10 minutes at most unless told otherwise. */
const HOOK_TIMEOUT_MS = 600_000;

/** What every operation that changes a target shares. */
export interface TargetOptions {
  /** The firmware directory: `current`, `failsafe`, the releases and `.fussy/`. */
  target: string;
  /** Environment of the hooks (fussy adds FUSSY_*); default: this process's. */
  env?: Record<string, string | undefined>;
  /** Working directory of the hooks; default: this process's. */
  cwd?: string;
  /** Each hook's time limit; default 600,000 ms. */
  hookTimeoutMs?: number;
  /** Wait for the target's lock instead of failing with LOCKED. */
  wait?: boolean;
  /** The time recorded in the history and the lock; default: now. */
  now?: Date;
  onEvent?: (e: FussyEvent) => void;
  /**
   * Stops the operation: before anything of the target changed it ends as a refusal
   * (INTERRUPTED, nothing changed, staging removed); once a new release's hooks run, it ends as
   * a failed hook (the previous release re-enabled); the switch itself always completes.
   */
  signal?: AbortSignal;
}

function common(o: TargetOptions): { target: string; env: Record<string, string | undefined>; cwd: string; hookTimeoutMs: number; wait?: boolean; now?: Date } {
  return { target: resolve(o.target), env: o.env ?? { ...process.env }, cwd: o.cwd ?? process.cwd(), hookTimeoutMs: o.hookTimeoutMs ?? HOOK_TIMEOUT_MS, wait: o.wait, now: o.now };
}

export interface InstallOptions extends TargetOptions {
  /** The package file (a pipe or FIFO is spooled first). */
  package: string;
  /** The device keyring directory (key files, or a GnuPG home). */
  keyring: string;
  /** Default: the calling process (root keeps archive owners). */
  owner?: Owner;
  /** Bytes to leave free after the install; default 16 MiB. */
  reserveBytes?: number;
  /** Install a package older than the device's recorded sequence. */
  allowDowngrade?: boolean;
  /** This device's type for `compatible` lists; default: the keyring's `device-type` file. */
  deviceType?: string;
}

/** Verify, unpack with dedup, run the hooks and switch `current` (docs/crash-safety.md). */
export function install(o: InstallOptions): Promise<InstallResult> {
  return surfaced(installOp({
    ...common(o),
    package: resolve(o.package),
    keyring: resolve(o.keyring),
    owner: o.owner ?? processOwner(),
    reserveBytes: o.reserveBytes,
    allowDowngrade: o.allowDowngrade,
    deviceType: o.deviceType,
    onEvent: o.onEvent,
    signal: o.signal,
  }));
}

export interface RollbackOptions extends TargetOptions {
  /** The release to go back to; default: the one most recently current before this one. */
  to?: string;
}

/** Re-enable an installed release through the same hooks and switch as an install. */
export function rollback(o: RollbackOptions): Promise<RollbackResult> {
  return surfaced(rollbackOp({ ...common(o), to: o.to, emit: o.onEvent, signal: o.signal }));
}

export interface CleanOptions extends TargetOptions {
  /** Previous releases to keep besides current and failsafe; default 1. */
  keep?: number;
  dryRun?: boolean;
}

/** Remove all but the most recently enabled previous releases (never current or failsafe). */
export function clean(o: CleanOptions): Promise<CleanResult> {
  return surfaced(cleanOp({ ...common(o), keep: o.keep, dryRun: o.dryRun, emit: o.onEvent }));
}

/** Finish or undo a transaction a crash interrupted (every operation above does this first). */
export function recover(o: TargetOptions): Promise<Recovery> {
  return surfaced(recoverOp({ ...common(o), emit: o.onEvent ?? (() => {}) }));
}

/** What is installed and what happened last; reads only, takes no lock. */
export function status(o: { target: string }): Promise<TargetStatus> {
  return surfaced(statusOp(resolve(o.target)));
}

/** The transaction log, oldest first, with whatever is wrong with it; reads only. */
export function history(o: { target: string }): Promise<History> {
  const target = resolve(o.target);
  return surfaced(requireTarget(target).then(() => readHistory(join(target, STATE_DIR))));
}

export interface VerifyOptions extends TargetOptions {
  /** Releases to check; default: current's. */
  names?: string[];
  all?: boolean;
  /** Default: the calling process (only root's checks include owners). */
  owner?: Owner;
  /** Fix what a healthy copy (or the manifest's mode and owner) can fix, under the target's lock. */
  repair?: boolean;
}

export interface VerifyResult {
  /** Each release checked, with what is still wrong (after the repairs, with `repair`). */
  reports: ReleaseReport[];
  /** With `repair`: what was fixed in each release and what was left. */
  repairs?: RepairResult[];
}

/** Compare installed releases with their manifests, file by file; with `repair`, fix what can be fixed. */
export function verify(o: VerifyOptions): Promise<VerifyResult> {
  return surfaced(verifyReleases(o));
}

async function verifyReleases(o: VerifyOptions): Promise<VerifyResult> {
  const base = { target: resolve(o.target), names: o.names, all: o.all, owner: o.owner ?? processOwner() };
  if (o.repair !== true) return { reports: await verifyOp(base) };
  const r = await verifyAndRepair({ ...common(o), ...base });
  return { reports: r.after, repairs: r.results };
}
