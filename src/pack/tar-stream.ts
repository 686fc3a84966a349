import { closeSync, fstatSync } from 'node:fs';
import { Header, Pax } from 'tar';
import type { HeaderData } from 'tar';
import { FussyError } from '../errors.js';
import type { Manifest, ManifestEntry } from '../archive/manifest.js';
import { manifestMaxBytes, MANIFEST_NAME, serializeManifest } from '../archive/manifest.js';
import { openForRead } from './digest-files.js';
import type { WalkEntry } from './walk.js';

import type { FileSegment, Segment } from './parallel-gzip.js';

const BLOCK = 512;
const TYPE = { directory: 'Directory', file: 'File', symlink: 'SymbolicLink', hardlink: 'Link' } as const;

/**
 * One tar member: a pax extended header when a field does not fit ustar (long paths and link
 * targets, sizes past 8 GiB), then the ustar header. Only the fields that describe the tree are
 * written (no atime/ctime/user names), so the same tree always gives the same bytes.
 */
export function tarHeader(name: string, e: Omit<ManifestEntry, 'path' | 'sha256'>): Buffer {
  const data: HeaderData = {
    path: e.type === 'directory' ? `${name}/` : name,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.type === 'file' ? (e.size ?? 0) : 0,
    mtime: new Date(e.mtime * 1000),
    type: TYPE[e.type],
    linkpath: e.target ?? '',
    uname: '',
    gname: '',
  };
  const header = new Header(data);
  const block = Buffer.alloc(BLOCK);
  const needPax = header.encode(block);
  if (!needPax) return block;
  const pax = new Pax({ path: data.path, linkpath: e.target, size: data.size, mtime: data.mtime, uid: e.uid, gid: e.gid }).encode();
  return Buffer.concat([pax, block]);
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

export interface TarStreamInput {
  release: string;
  manifest: Manifest;
  walk: WalkEntry[];
  /** Release-relative paths of files whose data should be stored, not deflated. */
  incompressible: Set<string>;
  /** A delta's patched files (from: "chunks"): the archive carries the patch instead of the data. */
  patches?: Map<string, { file: string; size: number }>;
}

/**
 * The archive as a stream of segments: `<release>/.fussy-manifest.json` first (docs/format.md), then
 * every entry in manifest order. File data is handed over as (fd, length) for the compressor to
 * read in place; a file that no longer
 * matches the size seen by the walk aborts the pack rather than producing an archive whose
 * content disagrees with its manifest.
 */
export async function* tarStream(input: TarStreamInput, onBytes: (n: number) => void = () => {}): AsyncGenerator<Segment> {
  const { release, manifest } = input;
  const root = manifest.entries[0] as ManifestEntry;
  const manifestBytes = serializeManifest(manifest);
  if (manifestBytes.length > manifestMaxBytes()) {
    throw new FussyError('BAD_ARCHIVE', `the manifest of ${release} would be ${manifestBytes.length} bytes, more than the ${manifestMaxBytes()} fussy install reads`, { hint: 'leave out files (--exclude), or shorten long paths' });
  }
  yield { data: tarHeader(release, root), store: false };
  yield {
    data: Buffer.concat([
      tarHeader(`${release}/${MANIFEST_NAME}`, { type: 'file', mode: 0o644, uid: root.uid, gid: root.gid, mtime: root.mtime, size: manifestBytes.length }),
      manifestBytes,
      padding(manifestBytes.length),
    ]),
    store: false,
  };
  for (let i = 1; i < manifest.entries.length; i++) {
    const m = manifest.entries[i] as ManifestEntry;
    // A delta package leaves out what the device has: the manifest lists it, the archive does not.
    if (m.from === 'base') continue;
    const w = input.walk[i] as WalkEntry;
    const name = `${release}/${m.path}`;
    const target = m.type === 'hardlink' ? `${release}/${m.target as string}` : m.target;
    const patch = m.from === 'chunks' ? input.patches?.get(m.path) : undefined;
    if (m.from === 'chunks' && patch === undefined) throw new Error(`no patch for ${m.path}`);
    yield { data: tarHeader(name, { ...m, target, size: patch?.size ?? m.size }), store: false };
    if (m.type !== 'file') continue;
    if (patch !== undefined) {
      yield* patchData(patch, input.incompressible.has(m.path), onBytes);
      continue;
    }
    const store = input.incompressible.has(m.path);
    const size = m.size ?? 0;
    const fd = openForRead(w.abs);
    try {
      const seg: FileSegment = { fd, length: size, store, read: 0 };
      yield seg;
      onBytes(seg.read);
      const after = fstatSync(fd);
      if (seg.read !== size || after.mtimeMs !== w.stat.mtimeMs || after.size !== size) {
        throw new FussyError('BAD_SOURCE', `${w.abs} changed while it was being packed`, { hint: 'do not change the tree while packing it, then pack again' });
      }
    } finally {
      closeSync(fd);
    }
    yield { data: padding(size), store: false };
  }
  // End of archive: two zero blocks (POSIX.1-1988 ustar).
  yield { data: Buffer.alloc(BLOCK * 2), store: false };
}

/** A patch's bytes (pack's own temp file), then the block padding. */
function* patchData(patch: { file: string; size: number }, store: boolean, onBytes: (n: number) => void): Generator<Segment> {
  const fd = openForRead(patch.file);
  try {
    const seg: FileSegment = { fd, length: patch.size, store, read: 0 };
    yield seg;
    onBytes(seg.read);
    if (seg.read !== patch.size) throw new Error(`the patch ${patch.file} changed while it was packed`);
  } finally {
    closeSync(fd);
  }
  yield { data: padding(patch.size), store: false };
}
