import { createWriteStream } from 'node:fs';
import { realpath, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as openpgp from 'openpgp';
import { FussyError, isErrno } from '../errors.js';
import { checkReleaseName } from '../archive/release-name.js';
import type { DeltaBase } from '../archive/manifest.js';
import type { PassphraseSource } from '../keyring/signing-keys.js';
import { loadSigningKeys } from '../keyring/signing-keys.js';
import { resolveRecipients } from '../keyring/recipients.js';
import { commitFile, tempBeside, unlinkIfExists } from '../util/fs-atomic.js';
import { digestFiles } from './digest-files.js';
import { buildManifest } from './build-manifest.js';
import { readBases } from './delta-bases.js';
import { deltaOf } from './delta.js';
import { planOutput } from './output-path.js';
import { parallelGzip } from './parallel-gzip.js';
import { tarStream } from './tar-stream.js';
import { signWithGpg, signWithOpenpgp } from '../openpgp/sign-stream.js';
import { walkTree } from './walk.js';

export type PackPhase = 'keys' | 'scan' | 'hash' | 'write';

export interface PackEvent {
  type: 'phase' | 'progress';
  phase: PackPhase;
  done?: number;
  total?: number;
}

export interface PackOptions {
  /** The firmware directory; its basename is the release name. */
  source: string;
  /** File, or directory (existing, or ending in "/"); default: a fresh temp dir. */
  output?: string;
  excludes?: string[];
  /** openpgp secret key files; every one signs (m-of-n). */
  signingKeyFiles?: string[];
  passphrase?: PassphraseSource;
  /** Sign through the system gpg (agent, smartcard) instead of key files. */
  gpg?: { localUsers: string[]; home?: string; passphraseFile?: string };
  /** Package file name inside an output directory (default `<release>.tar.gz.gpg`). */
  fileName?: string;
  /** Fussy's `fussy-pack -u`: write the plain .tar.gz, unsigned. */
  unsigned?: boolean;
  /** Key ids, fingerprints or emails to encrypt for. */
  recipients?: string[];
  recipientKeyFiles?: string[];
  /** GnuPG home searched for recipients. */
  gnupgHome?: string;
  compatible?: string[];
  sequence?: number;
  minSequence?: number;
  /** Mark the package as an intended rollback to an older release (manifest `rollback`). */
  rollback?: boolean;
  /** Seconds; fixes manifest time, signature time and clamps mtimes (reproducible-builds.org). */
  sourceDateEpoch?: number;
  now?: Date;
  /** gzip level for compressible data. */
  level?: number;
  /**
   * Make a delta package: leave out the data of every file whose content is in one of these
   * bases (what the devices run: a package, a .fussy-manifest.json or a release directory).
   */
  deltaFrom?: string[];
  /** The keyring that opens encrypted base packages (the build server's own keys). */
  deltaKeyring?: string;
  tmpDir: string;
  onEvent?: (e: PackEvent) => void;
}

export interface PackResult {
  path: string;
  release: string;
  /** A delta package: the bases it was made against, and the files (bytes) it leaves to them. */
  bases?: DeltaBase[];
  /** Files whose data the archive leaves out (all of it, or all but a patch's worth). */
  omittedFiles: number;
  omittedBytes: number;
  /** Of those, files carried as a patch against their base file. */
  patchedFiles: number;
  bytes: number;
  files: number;
  treeBytes: number;
  signedBy: string[];
  encryptedFor: string[];
  durationMs: number;
}

export async function pack(opts: PackOptions): Promise<PackResult> {
  const started = Date.now();
  const emit = opts.onEvent ?? (() => {});
  const source = resolve(opts.source.replace(/\/+$/, '') || '/');
  const release = checkReleaseName(basename(source), `from ${opts.source}`);
  await assertDirectory(source, opts.source);
  const now = opts.now ?? new Date();
  const date = opts.sourceDateEpoch !== undefined ? new Date(opts.sourceDateEpoch * 1000) : now;

  // Keys first: a wrong passphrase or unknown recipient should fail before minutes of hashing.
  emit({ type: 'phase', phase: 'keys' });
  const encryptionKeys: openpgp.Key[] = opts.unsigned
    ? []
    : await resolveRecipients(opts.recipients ?? [], opts.recipientKeyFiles ?? [], opts.gnupgHome, now);
  if (opts.unsigned && (opts.recipients?.length ?? 0) > 0) {
    throw new FussyError('USAGE', 'an unsigned package cannot be encrypted', { hint: 'drop -u, or drop -e' });
  }
  const signingKeys = opts.unsigned || opts.gpg !== undefined ? [] : await loadSigningKeys(opts.signingKeyFiles ?? [], opts.passphrase, now);
  const signatureDate = notBeforeKeys(date, [...signingKeys, ...encryptionKeys]);
  if (!opts.unsigned && opts.gpg === undefined && signingKeys.length === 0) {
    throw new FussyError('USAGE', 'no signing key given', { hint: 'pass --signing-key FILE, or --gpg to sign with the system gpg' });
  }

  emit({ type: 'phase', phase: 'scan' });
  const walk = await walkTree(await realpath(source), opts.excludes ?? []);
  const treeBytes = walk.reduce((n, e) => n + (e.type === 'file' ? e.stat.size : 0), 0);
  emit({ type: 'phase', phase: 'hash' });
  let hashed = 0;
  const digests = digestFiles(walk, (n) => emit({ type: 'progress', phase: 'hash', done: (hashed += n), total: treeBytes }));
  const full = buildManifest({ release, walk, digests, date, sourceDateEpoch: opts.sourceDateEpoch, sequence: opts.sequence, minSequence: opts.minSequence, rollback: opts.rollback, compatible: opts.compatible });
  const delta = (opts.deltaFrom ?? []).length === 0 ? undefined : await deltaOf(full, walk, await readBases(opts.deltaFrom as string[], { keyring: opts.deltaKeyring, signers: signingKeys, excludes: opts.excludes, now }), opts.tmpDir, now);
  const manifest = delta?.manifest ?? full;
  const incompressible = new Set([...digests].filter(([, d]) => d.incompressible).map(([p]) => p));

  const suffix = opts.unsigned ? '.tar.gz' : '.tar.gz.gpg';
  const plan = await planOutput(opts.output, opts.fileName ?? release + suffix, opts.tmpDir);
  const tmp = tempBeside(plan.file, 'pack');
  emit({ type: 'phase', phase: 'write' });
  let written = 0;
  try {
    const gz = parallelGzip(
      tarStream({ release, manifest, walk, incompressible, patches: delta?.patches }, (n) => emit({ type: 'progress', phase: 'write', done: (written += n), total: treeBytes })),
      { level: opts.level, parallel: availableParallelism() * 2 },
    );
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 }) // O_CREAT|O_EXCL: never through a symlink (open(2));
    if (opts.unsigned) await pipeline(Readable.from(gz), out);
    else if (opts.gpg !== undefined) await signWithGpg(gz, out, { ...opts.gpg, filename: `${release}.tar.gz`, encryptionKeys, tmpDir: opts.tmpDir });
    else await signWithOpenpgp(gz, out, { signingKeys, encryptionKeys, filename: `${release}.tar.gz`, date: signatureDate, reproducible: opts.sourceDateEpoch !== undefined });
    await commitFile(tmp, plan.file);
  } catch (err) {
    await unlinkIfExists(tmp);
    if (plan.createdDir !== undefined) await rm(plan.createdDir, { recursive: true, force: true });
    throw err;
  } finally {
    for (const p of delta?.patches.values() ?? []) await unlinkIfExists(p.file);
  }
  const omitted = manifest.entries.filter((e) => e.from !== undefined);
  return {
    path: plan.file,
    release,
    bases: manifest.bases,
    omittedFiles: omitted.length,
    omittedBytes: omitted.reduce((n, e) => n + (e.size ?? 0), 0),
    patchedFiles: manifest.entries.filter((e) => e.from === 'chunks').length,
    bytes: (await stat(plan.file)).size,
    files: manifest.fileCount,
    treeBytes: manifest.totalBytes,
    signedBy: signingKeys.map((k) => k.getFingerprint().toUpperCase()),
    encryptedFor: encryptionKeys.map((k) => k.getFingerprint().toUpperCase()),
    durationMs: Date.now() - started,
  };
}

/**
 * The time written into signatures and the literal packet: SOURCE_DATE_EPOCH (or now), but never
 * before the newest self-signature of a key used, since a key cannot act before it exists and
 * OpenPGP implementations reject that. Both inputs are fixed, so the result stays reproducible.
 */
export function notBeforeKeys(date: Date, keys: openpgp.Key[]): Date {
  let t = date.getTime();
  for (const k of keys) {
    const sigs = [...k.users.flatMap((u) => u.selfCertifications), ...k.getSubkeys().flatMap((s) => s.bindingSignatures)];
    for (const s of sigs) if (s.created !== null && s.created.getTime() > t) t = s.created.getTime();
    if (k.getCreationTime().getTime() > t) t = k.getCreationTime().getTime();
  }
  return new Date(t);
}

async function assertDirectory(abs: string, given: string): Promise<void> {
  try {
    const st = await stat(abs);
    if (st.isDirectory()) return;
    throw new FussyError('BAD_SOURCE', `${given} is not a directory`, { hint: 'pass the firmware directory to pack' });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
      throw new FussyError('BAD_SOURCE', `${given} does not exist`, { cause: err, hint: 'pass the firmware directory to pack' });
    }
    throw err;
  }
}
