import { createReadStream } from 'node:fs';
import * as openpgp from 'openpgp';
import type { DeviceKeyring } from '../keyring/device-keyring.js';
import { dearmor } from './armor.js';
import { inflateOuterLayer } from './outer-compression.js';
import { checkSigners, type Verdict } from './signers.js';

/** Packages of at most this many bytes (and as many after the outer compression) are read whole. */
export const WHOLE_MAX = 4 << 20;
/** Pieces of the data as unpack reads it. */
const PIECE = 1 << 20;

/**
 * A small signed package (at most WHOLE_MAX bytes, not encrypted, plainly signed: a delta, a
 * configuration update) read whole and verified before any of it is used: OpenPGP.js's verify of a message in
 * memory costs ~10 ms to the data where its streams cost ~30-40 ms (docs/performance.md), and no
 * byte of it reaches unpack unverified. A signature that does not verify is refused here
 * (BAD_SIGNATURE, the verdict's own words). Undefined when it is not such a package or cannot
 * be read so (larger once inflated, encrypted, more than four or text-mode signatures,
 * malformed, unsigned, or signed by no keyring key):
 * the caller streams it as any package, and says what is wrong in the words it always has.
 */
export async function openWhole(src: string, armored: boolean, file: string, ring: DeviceKeyring, o: { maxBytes: number; now: Date; size: number }): Promise<{ data: AsyncIterable<Uint8Array>; verdict: () => Promise<Verdict>; encrypted: false } | undefined> {
  let data: Uint8Array;
  let verdict: () => Promise<Verdict>;
  try {
    const bytes = await readWhole(src, armored, file, o.maxBytes, o.size);
    if (bytes === undefined) return undefined;
    const config: openpgp.PartialConfig = { maxDecompressedMessageSize: WHOLE_MAX };
    const message = await openpgp.readMessage({ binaryMessage: bytes, config });
    if (message.getEncryptionKeyIDs().length > 0 || !plainlySigned(message)) return undefined;
    const result = await openpgp.verify({ message, verificationKeys: ring.signers as openpgp.PublicKey[], expectSigned: false, format: 'binary', date: null, config });
    data = result.data;
    verdict = checkSigners(result.signatures, file, ring, o.now);
  } catch (err) {
    // A bug (ours or the library's) is not papered over. Anything else (OpenPGP.js's errors on a
    // message it cannot read whole, a read error, the envelope's refusals) the streaming path
    // meets again and tells in its own words, at the cost of reading at most 4 MiB twice.
    if (err instanceof ReferenceError || err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError) throw err;
    return undefined;
  }
  const v = await verdict(); // refused here, before unpack sees a byte
  return { data: pieces(data), verdict: () => Promise.resolve(v), encrypted: false };
}

/** Signatures OpenPGP.js checks at once, each over a copy of the data, before any is known good. */
const WHOLE_SIGNATURES = 4;

/**
 * A message the whole path takes (no compressed packet is left in one: the outer layer is
 * inflated by readWhole, any other refused by the grammar there): at most WHOLE_SIGNATURES
 * binary signatures before the data (OpenPGP.js verifies them all at once over a copy of the
 * data each, and a text-mode one over a copy with its line ends changed): the memory it holds
 * stays a few times 4 MiB. Anything else is streamed.
 */
function plainlySigned(message: openpgp.Message<Uint8Array>): boolean {
  const { packet, signature } = openpgp.enums;
  const sigs = message.packets.filterByTag(packet.onePassSignature, packet.signature) as unknown as Array<{ signatureType: openpgp.enums.signature | null }>;
  return sigs.length <= WHOLE_SIGNATURES && sigs.every((p) => p.signatureType === signature.binary);
}

/**
 * The OpenPGP message (armor removed, the outer compression inflated), or undefined past WHOLE_MAX
 * inflated. Only the package's `size` bytes (at most WHOLE_MAX: the caller checked) are read: a
 * file that grows while it is read (its owner appending empty deflate blocks, which inflate to
 * nothing) is not read on.
 */
async function readWhole(src: string, armored: boolean, file: string, maxBytes: number, size: number): Promise<Uint8Array | undefined> {
  const raw = createReadStream(src, { highWaterMark: 1 << 20, end: Math.max(0, Math.min(WHOLE_MAX, size) - 1) }); // `end` is inclusive
  try {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of inflateOuterLayer(armored ? dearmor(raw, file) : raw, maxBytes, file)) {
      n += c.length;
      if (n > WHOLE_MAX) return undefined;
      parts.push(c);
    }
    return Buffer.concat(parts, n);
  } finally {
    raw.destroy();
  }
}

async function* pieces(data: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += PIECE) yield data.subarray(at, Math.min(data.length, at + PIECE));
}
