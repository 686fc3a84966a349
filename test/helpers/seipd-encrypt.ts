import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';

/** A new-format packet with a 4-byte length. */
export function newPacket(tag: number, body: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h[0] = 0xc0 | tag;
  h[1] = 0xff;
  h.writeUInt32BE(body.length, 2);
  return Buffer.concat([h, body]);
}

/**
 * Encrypt arbitrary packets for `recipients` as an AES-256 SEIPDv1 message (RFC 4880 §5.13):
 * PKESKs made by OpenPGP.js, then the encrypted data, whose plaintext is exactly `inner`
 * (OpenPGP.js would re-frame or re-compress what it is given). For packages no honest packer
 * makes: anyone can encrypt for a device, its key is public.
 */
export async function encryptPackets(inner: Buffer, recipients: openpgp.Key[]): Promise<Buffer> {
  const key = randomBytes(32);
  const esk = Buffer.from(await openpgp.encryptSessionKey({ data: key, algorithm: 'aes256', encryptionKeys: recipients, format: 'binary' }));
  const prefix = randomBytes(16);
  const head = Buffer.concat([prefix, prefix.subarray(14), inner, Buffer.from([0xd3, 0x14])]);
  const plain = Buffer.concat([head, createHash('sha1').update(head).digest()]);
  const c = createCipheriv('aes-256-cfb', key, Buffer.alloc(16));
  const enc = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([esk, newPacket(18, Buffer.concat([Buffer.from([1]), enc]))]);
}
