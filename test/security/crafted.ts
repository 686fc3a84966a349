import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { indexMember, MEMBER_DATA_BYTES } from '../../src/archive/gzip-member.js';
import type { ErrorCode } from '../../src/errors.js';
import { readHistory } from '../../src/store/history.js';
import { installInto, rawTar, signPayload, type Device, type RawEntry } from '../helpers/device.js';
import { assertRefused } from './helpers.js';

/**
 * Packages no honest packer makes, for the attacks an uploader with no key (a forged signature)
 * or a careless signer (signed but wrong) can mount before install has checked the signature.
 */

/**
 * An uploader without the key: the package is signed by the device's signing key, then the
 * signature's last byte is flipped. It names a keyring key, so install streams it as it would a
 * real one, and only the verdict at the end of the stream refuses it.
 */
export async function forge(file: string): Promise<string> {
  const fh = await open(file, 'r+');
  try {
    const at = (await fh.stat()).size - 1;
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, at);
    last[0] = (last[0] as number) ^ 0x01;
    await fh.write(last, 0, 1, at);
  } finally {
    await fh.close();
  }
  return file;
}

let padding: Buffer | undefined;
/** The padding and the tar's end (two zero blocks) as one gzip member, made once per process. */
let paddingMember: Buffer | undefined;
const END_OF_TAR = Buffer.alloc(1024);
/**
 * 16 MiB of random data (stored, not deflated) placed after an attack: a forged package's bad
 * signature surfaces only at the end of the stream, and install reads at most a few MiB ahead,
 * so the attack is met first, structurally, not by timing.
 */
export function pad(release: string): RawEntry {
  padding ??= randomBytes(16 * 1024 * 1024);
  return { path: `${release}/zz-padding.bin`, data: padding };
}

/**
 * gzip at level 1: these packages are mostly random data (the padding), which zlib's default
 * level 6 searches for matches it never finds (~4x the time of level 1). One plain member; or,
 * when the archive ends with the padding (pad() as its last entry), two: what comes before it,
 * and the padding with the tar's end, compressed once per process (0.45 s a package otherwise).
 * A gzip stream may hold several members (RFC 1952) and every reader of the pipeline's packages
 * accepts them; no test here is about the member layout of these packages.
 */
export function quickGzip(payload: Buffer): Buffer {
  const tail = padding === undefined ? 0 : padding.length + END_OF_TAR.length;
  if (padding === undefined || payload.length < tail || !payload.subarray(payload.length - END_OF_TAR.length).equals(END_OF_TAR) || !payload.subarray(payload.length - tail, payload.length - END_OF_TAR.length).equals(padding)) return gzipSync(payload, { level: 1 });
  paddingMember ??= gzipSync(Buffer.concat([padding, END_OF_TAR]), { level: 1 });
  return Buffer.concat([gzipSync(payload.subarray(0, payload.length - tail), { level: 1 }), paddingMember]);
}

/** A payload as fussy pack gzips it: independent 1 MiB members, each carrying its length (FY); level 1 as quickGzip. */
export function fussyGzip(payload: Buffer, level = 1): Buffer {
  const members: Buffer[] = [];
  for (let off = 0; off < payload.length; off += MEMBER_DATA_BYTES) members.push(indexMember(gzipSync(payload.subarray(off, off + MEMBER_DATA_BYTES), { level })));
  return Buffer.concat(members);
}

const sha = (d: Buffer | string): string => createHash('sha256').update(d).digest('hex');
let paddingSha: string | undefined;

/** The manifest fussy pack would write for these raw entries (all below `release/`). */
export function manifestOf(release: string, entries: RawEntry[], sequence = 1): Record<string, unknown> & { entries: Array<Record<string, unknown>> } {
  const list: Array<Record<string, unknown>> = [{ path: '.', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }];
  let totalBytes = 0;
  let fileCount = 0;
  for (const e of entries) {
    const path = e.path.slice(release.length + 1).replace(/\/$/, '');
    const base = { path, mode: e.mode ?? (e.type === 'Directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: 1_700_000_000 };
    const type = e.type ?? 'File';
    if (type === 'Directory') list.push({ ...base, type: 'directory' });
    else if (type === 'SymbolicLink') list.push({ ...base, type: 'symlink', target: e.linkpath });
    else if (type === 'Link') list.push({ ...base, type: 'hardlink', target: (e.linkpath ?? '').slice(release.length + 1) });
    else {
      const data = e.data === padding && padding !== undefined ? padding : Buffer.from(e.data ?? '');
      const sum = data === padding ? (paddingSha ??= sha(data)) : sha(data);
      list.push({ ...base, type: 'file', size: data.length, sha256: sum });
      totalBytes += data.length;
      fileCount += 1;
    }
  }
  return { format: 'fussy-manifest', version: 1, release, created: '2026-12-01T00:00:00.000Z', sequence, totalBytes, fileCount, entries: list };
}

export interface CraftOptions {
  /** Change the manifest (object) before it is written; or the manifest's exact text. */
  mutate?: (m: ReturnType<typeof manifestOf>) => unknown;
  text?: string;
  /** An uploader without the key (forge) rather than a signer who signed it (default). */
  forged?: boolean;
  /** gzip as fussy pack does (indexed members) instead of one plain member. */
  members?: boolean;
}

/** A package of `entries` (below `release/`) with a manifest as its first entry, signed by `dev`'s key. */
export async function manifestPackage(dev: Device, file: string, release: string, entries: RawEntry[], o: CraftOptions = {}): Promise<string> {
  const body = o.forged === true ? [...entries, pad(release)] : entries;
  const m = manifestOf(release, body);
  const text = o.text ?? JSON.stringify(o.mutate === undefined ? m : (o.mutate(m) ?? m));
  const all = [{ path: `${release}/`, type: 'Directory' as const }, { path: `${release}/.fussy-manifest.json`, data: text }, ...body];
  const tar = rawTar(all);
  await signPayload(file, o.members === true ? fussyGzip(tar) : quickGzip(tar), { signingKeys: [dev.signingKey], gzip: false });
  return o.forged === true ? forge(file) : file;
}

/**
 * Another target on `dev`'s keys inside `dev.dir` (deviceBeside's are shared between runs): a
 * factory `current` directory, then `packages` installed in order.
 */
export async function targetBeside(dev: Device, name: string, packages: string[] = []): Promise<Device> {
  const dir = join(dev.dir, name);
  const d: Device = { ...dev, dir, target: join(dir, 'firmware'), hookLog: join(dir, 'hooks.log') };
  await mkdir(join(d.target, 'current', 'etc'), { recursive: true });
  await writeFile(join(d.target, 'current', 'etc', 'version'), 'factory\n');
  for (const p of packages) await installInto(d, p);
  return d;
}

/**
 * assertRefused (code, message, target unchanged, no staging dir), and the refusal is the newest
 * record of the target's history, with the same code and message.
 */
export async function assertRefusal(dev: Device, pkg: string, code: ErrorCode, message: RegExp, extra: Parameters<typeof installInto>[2] = {}): Promise<void> {
  const before = (await readHistory(join(dev.target, '.fussy'))).records.length;
  await assertRefused(dev, pkg, code, message, extra);
  const h = await readHistory(join(dev.target, '.fussy'));
  assert.deepEqual(h.problems, []);
  assert.equal(h.records.length, before + 1, 'one history record for the refusal');
  const rec = h.records[h.records.length - 1];
  assert.equal(rec?.action, 'install');
  assert.equal(rec?.result, 'refused');
  assert.equal(rec?.error?.code, code);
  assert.match(rec?.error?.message ?? '', message);
}
