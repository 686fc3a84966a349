/** OpenPGP packet body lengths (RFC 4880 §4.2). */
export type BodyLength = { kind: 'fixed'; length: number } | { kind: 'partial'; length: number } | { kind: 'indeterminate' };

/** Decode a new-format body length at the start of `b` (RFC 4880 §4.2.2); undefined if incomplete. */
export function newLength(b: Buffer): [BodyLength, number] | undefined {
  const o = b[0];
  if (o === undefined) return undefined;
  if (o < 192) return [{ kind: 'fixed', length: o }, 1];
  if (o < 224) return b.length < 2 ? undefined : [{ kind: 'fixed', length: ((o - 192) << 8) + (b[1] as number) + 192 }, 2];
  if (o === 255) return b.length < 5 ? undefined : [{ kind: 'fixed', length: b.readUInt32BE(1) }, 5];
  return [{ kind: 'partial', length: 1 << (o & 0x1f) }, 1];
}

export interface PacketHeader {
  tag: number;
  length: BodyLength;
  /** Bytes of the header: tag byte and length. */
  headerLen: number;
}

/** Decode the packet header at the start of `b` (old or new format); undefined if incomplete or not a packet. */
export function packetHeader(b: Buffer): PacketHeader | undefined {
  const ctb = b[0];
  if (ctb === undefined || (ctb & 0x80) === 0) return undefined;
  if ((ctb & 0x40) !== 0) {
    const l = newLength(b.subarray(1));
    return l === undefined ? undefined : { tag: ctb & 0x3f, length: l[0], headerLen: 1 + l[1] };
  }
  const type = ctb & 3;
  const tag = (ctb >> 2) & 0x0f;
  if (type === 3) return { tag, length: { kind: 'indeterminate' }, headerLen: 1 };
  const n = 1 << type;
  if (b.length < 1 + n) return undefined;
  const length = n === 1 ? (b[1] as number) : n === 2 ? b.readUInt16BE(1) : b.readUInt32BE(1);
  return { tag, length: { kind: 'fixed', length }, headerLen: 1 + n };
}
