/**
 * Read the OpenPGP keyblocks out of a GnuPG keybox file (`pubring.kbx`, gpg >= 2.1).
 * Layout from gnupg kbx/keybox-blob.c: every blob starts with
 *   u32 length | u8 type | u8 version | u16 flags | u32 keyblock offset | u32 keyblock length
 * (big-endian); type 1 is the file header (magic "KBXf" at +8), 2 an OpenPGP keyblock,
 * 3 an X.509 certificate. Offsets are relative to the blob start.
 */
export const KEYBOX_MAGIC = 'KBXf';
const TYPE_HEADER = 1;
const TYPE_OPENPGP = 2;

export function isKeybox(buf: Uint8Array): boolean {
  return buf.length >= 12 && buf[4] === TYPE_HEADER && Buffer.from(buf.subarray(8, 12)).toString('latin1') === KEYBOX_MAGIC;
}

/** The binary keyblocks (transferable public keys) a keybox holds, in file order. */
export function keyboxKeyblocks(buf: Buffer, file: string): Buffer[] {
  if (!isKeybox(buf)) throw new Error(`${file} is not a GnuPG keybox (no KBXf header)`);
  const blocks: Buffer[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32BE(off);
    if (len < 16 || off + len > buf.length) throw new Error(`${file}: keybox blob at offset ${off} has a bad length ${len}`);
    const type = buf[off + 4];
    if (type === TYPE_OPENPGP) {
      const kbOff = buf.readUInt32BE(off + 8);
      const kbLen = buf.readUInt32BE(off + 12);
      if (kbOff + kbLen > len) throw new Error(`${file}: keybox blob at offset ${off} points past its end`);
      blocks.push(buf.subarray(off + kbOff, off + kbOff + kbLen));
    }
    off += len;
  }
  return blocks;
}
