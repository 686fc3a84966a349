import { FussyError } from '../errors.js';

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

/**
 * The binary keyblocks (transferable public keys) a keybox holds, in file order. A keybox whose
 * framing does not hold (a blob running past the end, bytes after the last blob: a copy or write
 * cut short) is a keyring problem, KEY_UNREADABLE naming the file: which keys it was meant to hold is not
 * guessed (issue 11).
 */
export function keyboxKeyblocks(buf: Buffer, file: string): Buffer[] {
  if (!isKeybox(buf)) throw damaged(file, 'is not a GnuPG keybox (no KBXf header)');
  const blocks: Buffer[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32BE(off);
    if (len < 16 || off + len > buf.length) throw damaged(file, `keybox blob at offset ${off} has a bad length ${len} (the file has ${buf.length} bytes)`);
    const type = buf[off + 4];
    if (type === TYPE_OPENPGP) {
      const kbOff = buf.readUInt32BE(off + 8);
      const kbLen = buf.readUInt32BE(off + 12);
      if (kbOff + kbLen > len) throw damaged(file, `keybox blob at offset ${off} points past its end`);
      blocks.push(buf.subarray(off + kbOff, off + kbOff + kbLen));
    }
    off += len;
  }
  if (off !== buf.length) throw damaged(file, `keybox ends with ${buf.length - off} bytes that are not a whole blob (offset ${off})`);
  return blocks;
}

function damaged(file: string, why: string): FussyError {
  return new FussyError('KEY_UNREADABLE', `${file}: ${why}: the keybox is truncated or damaged`, {
    hint: `restore ${file} from a backup, or rebuild the keyring (gpg --homedir DIR --import the trusted public keys into a fresh directory)`,
    details: { path: file },
  });
}
