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
