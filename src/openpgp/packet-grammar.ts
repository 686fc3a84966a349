import { FussyError } from '../errors.js';
import type { PacketHeader } from './packet-length.js';

/** RFC 4880 / RFC 9580 packet tags a package may hold. */
const TAG = { PKESK: 1, SIGNATURE: 2, SKESK: 3, ONE_PASS: 4, COMPRESSED: 8, SED: 9, MARKER: 10, LITERAL: 11, SEIPD: 18, AEAD: 20, PADDING: 21 } as const;
const NAMES: Record<number, string> = { 1: 'session key', 2: 'signature', 3: 'session key', 4: 'one-pass signature', 8: 'compressed data', 9: 'encrypted data', 10: 'marker', 11: 'literal data', 18: 'encrypted data', 20: 'encrypted data', 21: 'padding' };
/** Packets whose body OpenPGP.js streams; every other packet it reads into memory whole. */
const STREAMED = new Set<number>([TAG.LITERAL, TAG.SED, TAG.SEIPD, TAG.AEAD]);

/**
 * Bounds on the packets OpenPGP.js holds in memory, per packet sequence (the package, its
 * compressed data, its decrypted data): at most MAX_SIGNATURES one-pass signatures and as many
 * signatures (each one-pass signature makes OpenPGP.js hash all of the literal data once more),
 * at most MAX_META_PACKETS packets of other kinds (session keys: one per recipient; markers) and
 * MAX_META_BYTES for all of them together. Real packages: one to a few signatures of < 1 KiB,
 * a session key of < 1 KiB per recipient device.
 */
export const MAX_SIGNATURES = 32;
export const MAX_META_PACKETS = 4096;
export const MAX_META_BYTES = 1 << 20;

type State = 'start' | 'session-keys' | 'one-pass' | 'signatures-first' | 'literal-signed' | 'end';

/**
 * The packet sequences a package can be (RFC 9580 §10.3, narrowed to what gpg, OpenPGP.js and
 * fussy pack write): markers or padding first, then either session keys and one encrypted data
 * packet, or one-pass signatures, the literal data and the signatures, or signatures and the
 * literal data (the old order), or the literal data alone (unsigned: OpenPGP.js refuses it with
 * its own message). A compressed packet is inflated by outer-compression.ts where a package can
 * have one (first in the package or in its decrypted data); anywhere else it is refused, so is
 * every other packet type, and anything after the end of the message: the one rule for data
 * that follows a message, whatever the layer.
 */
export class PacketGrammar {
  #state: State = 'start';
  #onePass = 0;
  #signatures = 0;
  #metaPackets = 0;
  #metaBytes = 0;

  constructor(
    readonly file: string,
    readonly where: string,
  ) {}

  /** Accept the packet `h` at `offset` of the sequence, or throw BAD_SIGNATURE saying why not. */
  next(h: PacketHeader, offset: number): void {
    const { tag } = h;
    const name = NAMES[tag] ?? `type ${tag}`;
    if (this.#state === 'end' || (this.#state === 'literal-signed' && tag !== TAG.SIGNATURE)) this.#refuse(`data follows the end of the message in ${this.where} (a ${name} packet at byte ${offset})`);
    // The one compression layer a package may have is inflated before the grammar reads it (outer-compression.ts).
    if (tag === TAG.COMPRESSED) this.#refuse(`a compressed data packet at byte ${offset} of ${this.where}: a package has at most one layer of compression, directly around the signed message`);
    if (NAMES[tag] === undefined) this.#unexpected(name, offset);
    if (!STREAMED.has(tag)) this.#bound(h, name, offset);
    const s = this.#state;
    switch (tag) {
      case TAG.MARKER:
      case TAG.PADDING:
        if (s !== 'start') this.#unexpected(name, offset);
        return;
      case TAG.PKESK:
      case TAG.SKESK:
        if (s !== 'start' && s !== 'session-keys') this.#unexpected(name, offset);
        this.#state = 'session-keys';
        return;
      case TAG.SED:
      case TAG.SEIPD:
      case TAG.AEAD:
        if (s !== 'session-keys') this.#unexpected(name, offset);
        this.#state = 'end';
        return;
      case TAG.ONE_PASS:
        if (s !== 'start' && s !== 'one-pass') this.#unexpected(name, offset);
        if (++this.#onePass > MAX_SIGNATURES) this.#refuse(`more than ${MAX_SIGNATURES} one-pass signatures in ${this.where}`);
        this.#state = 'one-pass';
        return;
      case TAG.SIGNATURE:
        if (s !== 'start' && s !== 'signatures-first' && s !== 'literal-signed') this.#unexpected(name, offset);
        if (++this.#signatures > MAX_SIGNATURES) this.#refuse(`more than ${MAX_SIGNATURES} signatures in ${this.where}`);
        if (s !== 'literal-signed') this.#state = 'signatures-first';
        return;
      case TAG.LITERAL:
        if (s === 'one-pass') this.#state = 'literal-signed';
        else if (s === 'start' || s === 'signatures-first') this.#state = 'end';
        else this.#unexpected(name, offset);
        return;
      default:
        this.#unexpected(name, offset);
    }
  }

  /** Non-streamed packets: complete lengths, within the count and byte bounds. */
  #bound(h: PacketHeader, name: string, offset: number): void {
    if (h.length.kind !== 'fixed') this.#refuse(`the ${name} packet at byte ${offset} of ${this.where} has no fixed length`);
    if (h.tag !== TAG.ONE_PASS && h.tag !== TAG.SIGNATURE && ++this.#metaPackets > MAX_META_PACKETS) {
      this.#refuse(`more than ${MAX_META_PACKETS} session-key, marker or padding packets in ${this.where}`);
    }
    this.#metaBytes += h.headerLen + h.length.length;
    if (this.#metaBytes > MAX_META_BYTES) this.#refuse(`the signature and session-key packets of ${this.where} exceed ${MAX_META_BYTES} bytes (at byte ${offset})`);
  }

  #unexpected(name: string, offset: number): never {
    this.#refuse(`a ${name} packet cannot come here in a package (byte ${offset} of ${this.where})`);
  }

  #refuse(why: string): never {
    throw new FussyError('BAD_SIGNATURE', `${this.file}: ${why}`, { hint: 'the package is damaged or was tampered with; nothing was installed' });
  }
}
