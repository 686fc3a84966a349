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
 * PERMISSION_DENIED naming the path (util/system-error.ts), never as a raw EACCES.
 */
import { join, resolve } from 'node:path';
import type { FussyEvent } from './events.js';
import type { CleanResult } from './ops/clean.js';
import type { InstallResult } from './ops/install.js';
import type { LinkTreeOptions, LinkTreeResult } from './ops/link-tree.js';
import type { RollbackResult } from './ops/rollback.js';
import type { TargetStatus } from './ops/status.js';
import type { ReleaseReport, RepairResult } from './ops/verify.js';
import type { KeyInfo } from './keyring/inspect-keys.js';
import type { KeygenOptions, KeygenResult } from './keyring/keygen.js';
import type { LockHandle } from './lock/pid-lock.js';
import type { WithLockOptions } from './lock/with-lock.js';
import type { PackOptions, PackResult } from './pack/pack.js';
import type { PkiInitOptions, PkiInitResult } from './pki/pki-init.js';
import type { CertKind, PkiIssueOptions, PkiIssueResult } from './pki/pki-issue.js';
import type { PkiCertificate, PkiListOptions, PkiListResult } from './pki/pki-list.js';
import type { PkiCrlOptions, PkiCrlResult, PkiRevokeOptions, PkiRevokeResult } from './pki/pki-revoke.js';
import type { History } from './store/history.js';
import { processOwner, type Owner } from './store/ownership.js';
import type { Recovery } from './txn/recover.js';
import type { TargetRunOptions } from './txn/target-run-options.js';
import { openPackageSource, stdinPackageSource, type PackageSource } from './unpack/package-source.js';
import { withPermissionProblems as surfaced } from './util/system-error.js';

// Each operation's modules load when it is first called: a program (the CLI) that runs one
// pays only for that one at start-up (openpgp alone is 1.2 MB of JavaScript).
export { FussyError, type ErrorCode } from './errors.js';
export type { PackageSource };
/** The state directory inside a target (`.fussy`): lock, journal, history, hash cache. */
export { STATE_DIR } from './store/layout.js';
export type { KeyInfo, PackOptions, PackResult, LinkTreeOptions, LinkTreeResult, WithLockOptions, LockHandle, KeygenOptions, KeygenResult, InstallResult, RollbackResult, CleanResult, Recovery, TargetStatus, History, Owner, ReleaseReport, RepairResult };
export type { PkiInitOptions, PkiInitResult, CertKind, PkiIssueOptions, PkiIssueResult, PkiRevokeOptions, PkiRevokeResult, PkiCrlOptions, PkiCrlResult, PkiListOptions, PkiListResult, PkiCertificate };

/** What an operation on a target reports while it runs: phases, progress, hook output, the switch, recovery, notes. */
export type { FussyEvent };

/** Hooks run for 10 minutes at most unless told otherwise. */
const HOOK_TIMEOUT_MS = 600_000;

/** What every operation that changes a target shares. */
export interface TargetOptions {
  /** Testing only: SIGKILL this process at a named step (util/failpoint.ts; the crash-safety tests). */
  failpoint?: string;
  /** The firmware directory: `current`, `failsafe`, the releases and `.fussy/`. */
  target: string;
  /** Environment of the hooks (fussy adds FUSSY_*); default: this process's. */
  env?: Record<string, string | undefined>;
  /** Working directory of the hooks; default: this process's. */
  cwd?: string;
  /** Each hook's time limit; default 600,000 ms. */
  hookTimeoutMs?: number;
  /** Run the hooks chrooted into this directory (provisioning an image root: fussy provision); needs root. */
  hookRoot?: string;
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

/** The options an operation passes down (txn/target-run-options.ts), defaults filled in. */
function common(o: TargetOptions): TargetRunOptions & { target: string } {
  return { target: resolve(o.target), env: o.env ?? { ...process.env }, cwd: o.cwd ?? process.cwd(), hookTimeoutMs: o.hookTimeoutMs ?? HOOK_TIMEOUT_MS, hookRoot: o.hookRoot === undefined ? undefined : resolve(o.hookRoot), wait: o.wait, now: o.now, onEvent: o.onEvent, signal: o.signal, failpoint: o.failpoint };
}

/** The package to install: a path, or `-` for standard input (spooled before the lock is taken). Its caller closes it. */
export function openPackage(path: string): PackageSource {
  return path === '-' ? stdinPackageSource() : openPackageSource(resolve(path));
}

export interface InstallOptions extends TargetOptions {
  /** The package: a file (a pipe or FIFO is spooled first), or one opened with openPackage() (then the caller closes it). */
  package: string | PackageSource;
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
export async function install(o: InstallOptions): Promise<InstallResult> {
  const given = typeof o.package === 'string' ? undefined : o.package;
  const source = given ?? openPackageSource(resolve(o.package as string));
  // The package's digest for the history starts now, on a thread, while the install's modules
  // load; stopped if the install ends before it needs it. A pipe is hashed as it is spooled.
  const early = new AbortController();
  try {
    const { packageDigest } = await import('./store/package-digest.js');
    const digest = source.kind === 'file' ? packageDigest(source.path, early.signal, source.size()) : undefined;
    const { install: run } = await import('./ops/install.js');
    return await surfaced(run({
      ...common(o),
      package: source.name,
      source,
      packageDigest: digest,
      keyring: resolve(o.keyring),
      owner: o.owner ?? processOwner(),
      reserveBytes: o.reserveBytes,
      allowDowngrade: o.allowDowngrade,
      deviceType: o.deviceType,
    }));
  } finally {
    early.abort();
    if (given === undefined) source.close();
  }
}

export interface RollbackOptions extends TargetOptions {
  /** The release to go back to; default: the one most recently current before this one. */
  to?: string;
}

/** Re-enable an installed release through the same hooks and switch as an install. */
export async function rollback(o: RollbackOptions): Promise<RollbackResult> {
  const { rollback: run } = await import('./ops/rollback.js');
  return surfaced(run({ ...common(o), to: o.to }));
}

export interface CleanOptions extends TargetOptions {
  /** Previous releases to keep besides current and failsafe; default 1. */
  keep?: number;
  dryRun?: boolean;
}

/** Remove all but the most recently enabled previous releases (never current or failsafe). */
export async function clean(o: CleanOptions): Promise<CleanResult> {
  const { clean: run } = await import('./ops/clean.js');
  return surfaced(run({ ...common(o), keep: o.keep, dryRun: o.dryRun }));
}

/** Finish or undo a transaction a crash interrupted (every operation above does this first). */
export async function recover(o: TargetOptions): Promise<Recovery> {
  const { recover: run } = await import('./txn/recover.js');
  return surfaced(run(common(o)));
}

/** What is installed and what happened last; reads only, takes no lock. */
export async function status(o: { target: string }): Promise<TargetStatus> {
  const { status: run } = await import('./ops/status.js');
  return surfaced(run(resolve(o.target)));
}

/** The transaction log, oldest first, with whatever is wrong with it; reads only. */
export async function history(o: { target: string }): Promise<History> {
  const [{ readHistory }, { requireTarget, STATE_DIR }] = await Promise.all([import('./store/history.js'), import('./store/layout.js')]);
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
  const { verify: check, verifyAndRepair } = await import('./ops/verify.js');
  if (o.repair !== true) return { reports: await check(base) };
  const r = await verifyAndRepair({ ...common(o), ...base });
  return { reports: r.after, repairs: r.results };
}

/** Pack a firmware directory into a signed (optionally encrypted) package (docs/format.md). */
export async function pack(o: PackOptions): Promise<PackResult> {
  const { pack: run } = await import('./pack/pack.js');
  return surfaced(run(o));
}

/** Link every file of a tree from another place (provisioning: `fussy link-tree`). */
export async function linkTree(o: LinkTreeOptions): Promise<LinkTreeResult> {
  const { linkTree: run } = await import('./ops/link-tree.js');
  return surfaced(run(o));
}

/**
 * Run `fn` holding the named lock (`fussy lock`): busy is LOCKED at once, a dead holder's lock is
 * taken over. Not wrapped for permission problems: `fn`'s own errors are the caller's.
 */
export async function withLock<T>(name: string, o: WithLockOptions, fn: (lock: LockHandle) => Promise<T>): Promise<T> {
  const { withLock: run } = await import('./lock/with-lock.js');
  return run(name, o, fn);
}

/** Make a signing key (build server) or a device key pair (docs/format.md, Keyrings). */
export async function keygen(o: KeygenOptions): Promise<KeygenResult> {
  const { keygen: run } = await import('./keyring/keygen.js');
  return surfaced(run(o));
}

/** What a key file holds, key by key: fingerprint, user IDs, secret or public, and the public part armored. */
export async function inspectKeys(file: string): Promise<KeyInfo[]> {
  const { inspectKeys: run } = await import('./keyring/inspect-keys.js');
  return surfaced(run(resolve(file)));
}

/** Create a CA directory for a fleet's TLS (fussyd, fussy remote) with the system openssl (docs/commands.md, fussy pki). */
export async function pkiInit(o: PkiInitOptions): Promise<PkiInitResult> {
  const { pkiInit: run } = await import('./pki/pki-init.js');
  return surfaced(run(o));
}

/** Issue a server (device) or client (operator) certificate; the key is made in the output directory, or a CSR is signed. */
export async function pkiIssue(o: PkiIssueOptions): Promise<PkiIssueResult> {
  const { pkiIssue: run } = await import('./pki/pki-issue.js');
  return surfaced(run(o));
}

/** Revoke a certificate by CN or serial and regenerate the CRL. */
export async function pkiRevoke(o: PkiRevokeOptions): Promise<PkiRevokeResult> {
  const { pkiRevoke: run } = await import('./pki/pki-revoke.js');
  return surfaced(run(o));
}

/** Regenerate the CRL (it expires: run this before its nextUpdate, e.g. from cron). */
export async function pkiCrl(o: PkiCrlOptions): Promise<PkiCrlResult> {
  const { pkiCrl: run } = await import('./pki/pki-revoke.js');
  return surfaced(run(o));
}

/** Every certificate the CA issued, with its status (valid, revoked, expired); reads only. */
export async function pkiList(o: PkiListOptions): Promise<PkiListResult> {
  const { pkiList: run } = await import('./pki/pki-list.js');
  return surfaced(run(o));
}
