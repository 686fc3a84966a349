import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import type * as openpgp from 'openpgp';
import { FussyError, isErrno } from '../errors.js';
import { MANIFEST_NAME, MAX_BASES, manifestMaxBytes, parseManifest, type DeltaBase, type Manifest } from '../archive/manifest.js';
import { loadDeviceKeyring, type DeviceKeyring } from '../keyring/device-keyring.js';
import { DEFAULT_POLICY } from '../keyring/policy.js';
import { openPackage } from '../openpgp/open-package.js';
import { CREATE_NEW } from '../util/fs-atomic.js';
import { readSmallFile } from '../util/read-small-file.js';
import { writeAll } from '../unpack/file-io.js';
import { digestFiles } from './digest-files.js';
import { walkTree } from './walk.js';

/** What the devices have: the bases a delta is made against, and every file content (sha256) in them. */
export interface BaseContent {
  bases: DeltaBase[];
  shas: Set<string>;
  /**
   * The bases' files, by path (the first base's wins): what large changed files are patched
   * against. A directory's are on disk (`abs`); a package's are read out of it when needed (`pkg`).
   */
  files: Map<string, BaseFile>;
}

export type BaseFile = { sha256: string; size: number } & ({ abs: string } | { pkg: { file: string; ring: DeviceKeyring; release: string } });

/**
 * Read what the devices running BASE have, for each `--delta-from`: a package (fussy's, its
 * manifest read from the archive's first entry; an encrypted one opened with `keyring`, the
 * build server's keys), a manifest (`.fussy-manifest.json`, as pack writes it and install keeps
 * it), or a release directory (walked and hashed; its own `.fussy-manifest.json`, when it has one,
 * names the base exactly). The build server trusts its own artifacts here: nothing from a base
 * goes into the package, and a base that lies only makes the device refuse the delta, since
 * every file the delta omits is found on the device by its sha256 or not at all.
 */
export async function readBases(paths: string[], o: { keyring?: string; signers: openpgp.Key[]; excludes?: string[]; now: Date }): Promise<BaseContent> {
  if (paths.length > MAX_BASES) throw new FussyError('USAGE', `${paths.length} --delta-from bases; a delta package names at most ${MAX_BASES}`, { hint: 'make one delta per group of devices' });
  const out: BaseContent = { bases: [], shas: new Set(), files: new Map() };
  let ring: DeviceKeyring | undefined;
  for (const path of paths) {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined) throw new FussyError('BAD_SOURCE', `the delta base ${path} does not exist`, { hint: 'give a package, a .fussy-manifest.json or a release directory of the release the devices run' });
    let base: { release: string; manifest?: string; shas: string[]; files?: Map<string, BaseFile> };
    if (st.isDirectory()) base = await directoryBase(path, o.excludes ?? []);
    else if (isJson(path)) base = manifestBase(readManifestFile(path));
    else {
      ring ??= await baseRing(o.keyring, o.signers);
      base = await packageBase(path, ring, o.now);
    }
    out.bases.push(base.manifest === undefined ? { release: base.release } : { release: base.release, manifest: base.manifest });
    for (const s of base.shas) out.shas.add(s);
    for (const [p, f] of base.files ?? []) if (!out.files.has(p)) out.files.set(p, f);
  }
  return out;
}

function manifestBase(r: { bytes: Buffer; manifest: Manifest }): { release: string; manifest: string; shas: string[] } {
  return { release: r.manifest.release, manifest: createHash('sha256').update(r.bytes).digest('hex'), shas: r.manifest.entries.filter((e) => e.type === 'file').map((e) => e.sha256 as string) };
}

function readManifestFile(path: string): { bytes: Buffer; manifest: Manifest } {
  const r = readSmallFile(path, manifestMaxBytes());
  if (r === undefined || 'problem' in r) throw new FussyError('BAD_SOURCE', `the delta base ${path} ${r === undefined ? 'does not exist' : r.problem}`, { hint: 'give the .fussy-manifest.json of the base release' });
  try {
    return { bytes: r.data, manifest: parseManifest(r.data, undefined).manifest };
  } catch (err) {
    if (!(err instanceof FussyError)) throw err;
    throw new FussyError('BAD_SOURCE', `the delta base ${path}: ${err.message}`, { cause: err, hint: 'give the .fussy-manifest.json of the base release, as fussy pack wrote it' });
  }
}

async function directoryBase(dir: string, excludes: string[]): Promise<{ release: string; manifest?: string; shas: string[]; files: Map<string, BaseFile> }> {
  const own = join(dir, MANIFEST_NAME);
  // An installed release (or a copy of one) carries its manifest: that names the base exactly.
  if (lstatSync(own, { throwIfNoEntry: false })?.isFile() === true) {
    const read = readManifestFile(own);
    const files = new Map<string, BaseFile>(read.manifest.entries.filter((e) => e.type === 'file').map((e) => [e.path, { abs: join(dir, e.path), sha256: e.sha256 as string, size: e.size as number }]));
    return { ...manifestBase(read), files };
  }
  const walk = await walkTree(dir, excludes);
  const digests = digestFiles(walk);
  const files = new Map<string, BaseFile>(walk.filter((w) => w.type === 'file').map((w) => [w.path, { abs: w.abs, sha256: (digests.get(w.path) as { sha256: string }).sha256, size: w.stat.size }]));
  return { release: basename(dir), shas: [...digests.values()].map((d) => d.sha256), files };
}

/** The manifest of a fussy package: the archive's first entry after the release directory. */
async function packageBase(file: string, ring: DeviceKeyring, now: Date): Promise<{ release: string; manifest: string; shas: string[]; files: Map<string, BaseFile> }> {
  const opened = await openPackage(file, ring, { maxBytes: manifestMaxBytes() * 64, now });
  try {
    const bytes = await firstManifest(opened.data, file);
    const manifest = parseManifest(bytes, undefined).manifest;
    const pkg = { file, ring, release: manifest.release };
    const files = new Map<string, BaseFile>(manifest.entries.filter((e) => e.type === 'file').map((e) => [e.path, { pkg, sha256: e.sha256 as string, size: e.size as number }]));
    return { ...manifestBase({ bytes, manifest }), files };
  } catch (err) {
    if (err instanceof FussyError && err.code !== 'BAD_ARCHIVE') throw err;
    throw new FussyError('BAD_SOURCE', `the delta base ${file} is not a fussy package with a manifest: ${(err as Error).message}`, { cause: err, hint: 'a package of the original pipeline has no manifest: give the release directory instead' });
  } finally {
    opened.close();
  }
}

async function firstManifest(data: AsyncIterable<Uint8Array>, file: string): Promise<Buffer> {
  const gunzip = createGunzip();
  const parser = new Parser({ strict: true });
  let settled = false;
  const result = new Promise<Buffer | undefined>((resolve, reject) => {
    const settle = (v: Buffer | undefined): void => {
      settled = true;
      resolve(v);
    };
    parser.on('entry', (entry: ReadEntry) => {
      const rel = entry.path.split('/').slice(1).join('/');
      if (!settled && rel === MANIFEST_NAME && entry.size <= manifestMaxBytes()) {
        const parts: Buffer[] = [];
        entry.on('data', (c: Buffer) => parts.push(c));
        entry.on('end', () => settle(Buffer.concat(parts)));
        return;
      }
      // The manifest comes first (after the release directory) or not at all.
      if (entry.type !== 'Directory') settle(undefined);
      entry.resume();
    });
    parser.on('end', () => settle(undefined));
    parser.on('error', (err: Error) => (settled ? undefined : reject(err)));
    gunzip.on('error', (err: Error) => (settled ? undefined : reject(err)));
  });
  gunzip.pipe(parser);
  try {
    for await (const chunk of data) {
      if (settled) break;
      if (!gunzip.write(chunk)) await new Promise<void>((resolve) => gunzip.once('drain', () => resolve()));
    }
    if (!settled) gunzip.end();
    const found = await result;
    if (found === undefined) throw new FussyError('BAD_ARCHIVE', `${file} has no manifest as its first entry`);
    return found;
  } finally {
    gunzip.destroy();
  }
}

function isJson(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(16);
    const n = readSync(fd, b, 0, 16, 0);
    return b.subarray(0, n).toString('latin1').trimStart().startsWith('{');
  } finally {
    closeSync(fd);
  }
}

/**
 * The keys that open base packages: the keys this pack signs with (a build server's own earlier
 * packages), plus `keyring`'s signers and decryption keys when given.
 */
async function baseRing(keyring: string | undefined, signers: openpgp.Key[]): Promise<DeviceKeyring> {
  const ring: DeviceKeyring = keyring === undefined
    ? { dir: 'the signing keys of this pack', signers: [], decryptionKeys: [], gpgSecretKeys: false, unusableSecret: [], unreadable: [], known: [], policy: DEFAULT_POLICY }
    : await loadDeviceKeyring(keyring);
  const publics = signers.map((k) => k.toPublic());
  return { ...ring, signers: [...ring.signers, ...publics], known: [...ring.known, ...publics] };
}

/**
 * Read the files `wanted` (release-relative path -> a new temp file) out of the base package
 * `pkg`: the whole package is streamed (memory stays flat) and its signature must verify with the
 * keys that opened it, since these bytes decide what the patches say.
 */
export async function extractFiles(pkg: { file: string; ring: DeviceKeyring; release: string }, wanted: Map<string, string>, now: Date): Promise<void> {
  const opened = await openPackage(pkg.file, pkg.ring, { maxBytes: Number.MAX_SAFE_INTEGER, now });
  const gunzip = createGunzip();
  const parser = new Parser({ strict: true });
  // The first failure (a name twice, a full disk) ends the reading; thrown in a parser event it
  // would escape as an uncaught exception.
  let failed: unknown;
  const open = new Set<number>();
  const done = new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => {
      failed ??= err;
      reject(failed);
    };
    parser.on('entry', (entry: ReadEntry) => {
      const rel = entry.type === 'File' && entry.path.startsWith(`${pkg.release}/`) ? entry.path.slice(pkg.release.length + 1) : undefined;
      const out = rel === undefined ? undefined : wanted.get(rel);
      if (out === undefined || failed !== undefined) {
        entry.resume();
        return;
      }
      let fd: number;
      try {
        fd = openSync(out, CREATE_NEW, 0o600);
        open.add(fd);
      } catch (err) {
        fail(isErrno(err, 'EEXIST') ? new FussyError('BAD_SOURCE', `the delta base ${pkg.file} holds "${rel}" twice`, { hint: 'give the release directory as the base instead' }) : err);
        entry.resume();
        return;
      }
      entry.on('data', (c: Buffer) => {
        if (failed !== undefined) return;
        try {
          writeAll(fd, c, out);
        } catch (err) {
          fail(err);
        }
      });
      entry.on('end', () => {
        open.delete(fd);
        closeSync(fd);
      });
    });
    parser.on('end', () => resolve());
    parser.on('error', fail);
    gunzip.on('error', fail);
  });
  done.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  gunzip.pipe(parser);
  try {
    for await (const chunk of opened.data) {
      if (failed !== undefined) break;
      if (!gunzip.write(chunk)) await Promise.race([new Promise<void>((resolve) => gunzip.once('drain', () => resolve())), done]);
    }
    gunzip.end();
    await done;
    await opened.verdict();
  } finally {
    opened.close();
    gunzip.destroy();
    for (const fd of open) closeSync(fd); // a member the stream ended inside
  }
}
