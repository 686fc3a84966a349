/**
 * fussy's gzip members carry their own length, so an installer can inflate several at once.
 * RFC 1952 §2.3.1.1 lets a member carry extra subfields (FLG.FEXTRA) that other readers skip:
 * fussy adds subfield SI1='F' SI2='Y', LEN=4, value = the member's total length in bytes
 * (uint32 little-endian), the idea of BGZF (SAM/BAM spec §4.1) with room for 1 MiB members.
 * gunzip, GNU tar and zlib read such files as plain concatenated gzip.
 */
const FEXTRA = 0x04;
const SUBFIELD = Buffer.from([0x46, 0x59, 4, 0]); // 'F' 'Y', LEN = 4
const EXTRA_LEN = 2 + SUBFIELD.length + 4; // XLEN + subfield header + value

/** Uncompressed bytes fussy pack puts in one member (pack/parallel-gzip.ts): ISIZE never exceeds it. */
export const MEMBER_DATA_BYTES = 1 << 20;
/**
 * The longest member fussy pack writes: a member's data stored or deflated (zlib's deflateBound
 * for 1 MiB is 1 MiB + ~330 bytes; stored blocks add 5 bytes per 64 KiB) plus the gzip header,
 * the FY subfield and the trailer, with a wide margin. An indexed member claiming more was not
 * made by fussy pack, and install does not buffer it (install/parallel-gunzip.ts).
 */
export const MEMBER_MAX_BYTES = MEMBER_DATA_BYTES + (64 << 10);

/** Add the length subfield to a member zlib produced (its header is the fixed 10 bytes, no flags). */
export function indexMember(member: Buffer): Buffer {
  if (member.length < 18 || member[0] !== 0x1f || member[1] !== 0x8b || member[3] !== 0) throw new Error('unexpected gzip member header from zlib');
  const total = member.length + EXTRA_LEN;
  const out = Buffer.allocUnsafe(total);
  member.copy(out, 0, 0, 10);
  out[3] = FEXTRA;
  out.writeUInt16LE(SUBFIELD.length + 4, 10);
  SUBFIELD.copy(out, 12);
  out.writeUInt32LE(total, 12 + SUBFIELD.length);
  member.copy(out, 10 + EXTRA_LEN, 10);
  return out;
}

/**
 * The total length of the member starting at `b`, when it is an indexed fussy member;
 * undefined when it is any other gzip member; 'short' when more header bytes are needed.
 */
export function memberLength(b: Buffer): number | undefined | 'short' {
  if (b.length < 12) return 'short';
  if (b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8 || ((b[3] as number) & FEXTRA) === 0) return undefined;
  const xlen = b.readUInt16LE(10);
  if (b.length < 12 + xlen) return 'short';
  for (let off = 12; off + 4 <= 12 + xlen; ) {
    const len = b.readUInt16LE(off + 2);
    if (b[off] === 0x46 && b[off + 1] === 0x59 && len === 4 && off + 8 <= 12 + xlen) {
      const total = b.readUInt32LE(off + 4);
      return total >= 12 + xlen + 8 ? total : undefined;
    }
    off += 4 + len;
  }
  return undefined;
}
