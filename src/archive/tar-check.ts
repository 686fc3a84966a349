/**
 * A strict reading of the tar stream's framing, run on the bytes before node-tar parses them, so
 * that fussy never installs an archive that GNU tar would read differently or refuse (a parser
 * differential lets a package mean one thing to the tool that inspects it and another to the
 * device: node-tar's CVE-2026-53655 "file smuggling" was one). node-tar is lenient where GNU tar
 * is not; this refuses:
 * - pax extended headers (POSIX.1-2008 pax "x"/"g") whose records are malformed: every record is
 *   "LEN KEY=VALUE\n" with LEN the record's exact decimal length; numeric keys (size, uid, gid,
 *   mtime, atime, ctime) must be numbers (node-tar read `size=12abc` as 12, `size=-1` as a size);
 * - size fields that are not octal numbers or base-256 (negative ones included);
 * - data on entries that carry none (links, directories, devices, FIFOs): node-tar reads that
 *   many bytes as their data, GNU tar reads none, so the two disagree on where the next header is;
 * - pax headers over 1 MiB (fussy writes a few hundred bytes; a path is at most 4 KiB);
 * - entry types other than POSIX's and GNU's long names: node-tar skips an unknown type (or reads
 *   GNU's obsolete 'N' as a name for the next entry) while GNU tar extracts it as a regular file.
 * It only follows the framing (headers and data lengths); names, types and checksums are left to
 * node-tar (strict) and the unpacker. Memory: one 512-byte header and at most one pax header.
 */
import { FussyError } from '../errors.js';

const BLOCK = 512;
const MAX_PAX = 1024 * 1024;
const NUMERIC_KEYS = new Set(['size', 'uid', 'gid', 'mtime', 'atime', 'ctime']);
/** Types whose data node-tar and GNU tar skip alike: regular files, pax and GNU long names/links. */
const DATA_TYPES = new Set(['0', '\0', '7', 'x', 'g', 'L', 'K']);
/** Types both readers know alike: files, links, devices, FIFOs, directories, pax, GNU long names. */
const KNOWN_TYPES = new Set(['0', '\0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K']);

function bad(message: string): FussyError {
  return new FussyError('BAD_ARCHIVE', `malformed archive: ${message}`, { hint: 'the package is malformed (GNU tar would not read it as fussy would); it is refused as a whole' });
}

export class TarCheck {
  readonly #header = Buffer.alloc(BLOCK);
  #fill = 0;
  /** Bytes of the current entry's data (and padding) still to pass. */
  #skip = 0;
  /** The pax header being collected, and how much of it is still to come. */
  #pax: Buffer | undefined;
  #paxFill = 0;
  /** A pax `size` for the next entry. */
  #nextSize: number | undefined;
  #ended = false;

  write(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && !this.#ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        if (this.#pax !== undefined && this.#paxFill < this.#pax.length) {
          const take = Math.min(n, this.#pax.length - this.#paxFill);
          this.#pax.set(chunk.subarray(i, i + take), this.#paxFill);
          this.#paxFill += take;
          if (this.#paxFill === this.#pax.length) this.#paxDone();
        }
        this.#skip -= n;
        i += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#fill, chunk.length - i);
      this.#header.set(chunk.subarray(i, i + n), this.#fill);
      this.#fill += n;
      i += n;
      if (this.#fill === BLOCK) {
        this.#fill = 0;
        this.#onHeader();
      }
    }
  }

  #onHeader(): void {
    const h = this.#header;
    if (h.every((b) => b === 0)) {
      this.#ended = true; // end-of-archive blocks: what follows is padding, ignored by both readers
      return;
    }
    const type = String.fromCharCode(h[156] as number);
    if (!KNOWN_TYPES.has(type)) throw bad(`an entry has type ${JSON.stringify(type)}, which GNU tar extracts as a file and node-tar skips or reads as a name`);
    let size = headerSize(h.subarray(124, 136));
    if (this.#nextSize !== undefined && type !== 'x' && type !== 'g') {
      size = this.#nextSize;
      this.#nextSize = undefined;
    }
    if (size > 0 && !DATA_TYPES.has(type)) throw bad(`an entry of type "${type}" claims ${size} bytes of data; tar readers disagree on such an entry`);
    this.#skip = Math.ceil(size / BLOCK) * BLOCK;
    this.#pax = undefined;
    if (type === 'x' || type === 'g') {
      if (size > MAX_PAX) throw bad(`a pax extended header of ${size} bytes (at most ${MAX_PAX})`);
      this.#pax = Buffer.alloc(size);
      this.#paxFill = 0;
      if (size === 0) this.#paxDone();
    }
  }

  #paxDone(): void {
    const pax = this.#pax as Buffer;
    const isLocal = this.#header[156] === 0x78; // 'x': applies to the next entry only
    let at = 0;
    while (at < pax.length) {
      const space = pax.indexOf(0x20, at);
      const digits = space < 0 ? '' : pax.toString('latin1', at, space);
      if (!/^[1-9]\d{0,7}$/.test(digits)) throw bad('a pax extended header record has no valid length');
      const len = Number(digits);
      const end = at + len;
      if (end > pax.length || pax[end - 1] !== 0x0a) throw bad(`a pax extended header record's length (${len}) does not match the record`);
      const record = pax.toString('utf8', space + 1, end - 1);
      const eq = record.indexOf('=');
      if (eq <= 0) throw bad('a pax extended header record is not KEY=VALUE');
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (NUMERIC_KEYS.has(key) && !(key === 'size' ? /^\d{1,15}$/ : /^-?\d{1,15}(\.\d{1,9})?$/).test(value)) throw bad(`pax "${key}" is "${value.slice(0, 40)}", not a number`);
      if (key === 'size' && isLocal) this.#nextSize = Number(value);
      at = end;
    }
    this.#pax = undefined;
  }
}

/** The size field: octal digits (space/NUL terminated) or base-256 (high bit set), never negative. */
function headerSize(f: Buffer): number {
  if (((f[0] as number) & 0x80) !== 0) {
    if (((f[0] as number) & 0x40) !== 0) throw bad('an entry has a negative size');
    let n = (f[0] as number) & 0x3f;
    for (let i = 1; i < f.length; i++) n = n * 256 + (f[i] as number);
    if (!Number.isSafeInteger(n)) throw bad('an entry has a size beyond 2^53');
    return n;
  }
  const text = f.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]*$/.test(text)) throw bad(`an entry's size field is not an octal number (${JSON.stringify(text.slice(0, 12))})`);
  return text === '' ? 0 : parseInt(text, 8);
}
