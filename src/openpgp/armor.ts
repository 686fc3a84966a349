import { FussyError } from '../errors.js';

const BEGIN = '-----BEGIN PGP MESSAGE-----';
const END = '-----END PGP MESSAGE-----';
/**
 * The longest armor line held while its end is looked for. RFC 4880 §6.3 lines are at most 76
 * characters; gpg writes 64. Without a bound, a file without newlines would be held whole.
 */
export const MAX_ARMOR_LINE = 64 * 1024;

const BLANK = /^\s*$/;
const HEADER = /^[^\s:][^:]*: .*$/;
const DATA_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const CHECKSUM = /^=[A-Za-z0-9+/]{4}$/;
/** Per byte: 1 base64 character, 2 white space, 3 newline, 0 anything else ('=', '-', ...). */
const CLASS = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') CLASS[c.charCodeAt(0)] = 1;
for (const c of ' \t\r\f') CLASS[c.charCodeAt(0)] = 2;
CLASS[0x0a] = 3;

/**
 * Decode whole lines of plain base64 (`lines` ends with a newline) up to the first line that
 * holds anything else (padding, the checksum, END, garbage): `stop` is where that line starts,
 * for the line parser. `quad`: base64 characters left over from before (fewer than 4).
 */
function plainData(lines: Buffer, quad: string): { decoded: { bytes?: Buffer; quad: string }; stop: number } {
  const chars = Buffer.allocUnsafe(quad.length + lines.length);
  let n = chars.write(quad, 'latin1');
  let lineChars = n; // characters kept before the current line began
  let lineStart = 0;
  let stop = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const c = lines[i] as number;
    const k = CLASS[c];
    if (k === 1) chars[n++] = c;
    else if (k === 3) {
      lineStart = i + 1;
      lineChars = n;
    } else if (k === 0) {
      stop = lineStart;
      n = lineChars;
      break;
    }
  }
  const whole = n - (n % 4);
  return { decoded: { bytes: whole > 0 ? Buffer.from(chars.toString('latin1', 0, whole), 'base64') : undefined, quad: chars.toString('latin1', whole, n) }, stop };
}

type State = 'before' | 'headers' | 'data' | 'padded' | 'checksum' | 'after';

/**
 * Decode an armored package (RFC 4880 §6.2) as it streams, in memory bounded by MAX_ARMOR_LINE.
 * OpenPGP.js's own decoder reads everything after the first data line that holds a '-' or '='
 * into one string (an attacker chooses where that is) and ignores what follows the END line.
 * The rule here is the package's rule everywhere: every byte belongs to the message. Only blank
 * lines may come before the BEGIN line and after the END line; armor headers (`Key: value`)
 * are skipped; the data must be well-formed base64 with padding only at its end. The CRC-24
 * line is accepted and not checked (OpenPGP.js does not check it either; the signature covers
 * the data it would protect).
 */
export async function* dearmor(source: AsyncIterable<Uint8Array>, file: string): AsyncGenerator<Buffer> {
  const refuse = (why: string): FussyError => new FussyError('BAD_SIGNATURE', `${file}: ${why}`, { hint: 'the armored package is damaged or was tampered with; nothing was installed' });
  let state = 'before' as State;
  let quad = ''; // base64 characters not yet decoded (fewer than 4)

  const decode = (chars: string): Buffer | undefined => {
    const all = quad + chars;
    const whole = all.length - (all.length % 4);
    quad = all.slice(whole);
    return whole > 0 ? Buffer.from(all.slice(0, whole), 'base64') : undefined;
  };

  /** One complete line, trailing white space removed; returns decoded bytes, if any. */
  const line = (raw: string): Buffer | undefined => {
    const l = raw.replace(/\s+$/, '');
    switch (state) {
      case 'before':
        if (l === BEGIN) state = 'headers';
        else if (!BLANK.test(l)) throw refuse('text comes before the armored message');
        return undefined;
      case 'headers':
        if (BLANK.test(l)) state = 'data';
        else if (!HEADER.test(l)) throw refuse(`a malformed armor header line ("${l.slice(0, 40)}")`);
        return undefined;
      case 'data':
      case 'padded':
      case 'checksum':
        if (l === END) {
          if (quad.length !== 0) throw refuse('the armored data is not valid base64 (it ends inside a group of four characters)');
          state = 'after';
          return undefined;
        }
        if (l === '') return undefined;
        if (state === 'checksum') throw refuse('text follows the armor checksum line');
        if (CHECKSUM.test(l) && (quad.length === 0)) {
          state = 'checksum';
          return undefined;
        }
        if (state === 'padded' || !DATA_LINE.test(l)) throw refuse('the armored data is not valid base64');
        if (l.includes('=')) {
          state = 'padded';
          const out = decode(l);
          if (quad.length !== 0) throw refuse('the armored data is not valid base64 (padding inside a group of four characters)');
          return out;
        }
        return decode(l);
      case 'after':
        if (!BLANK.test(l)) throw refuse('text follows the end of the armored message');
        return undefined;
    }
  };

  let carry: Buffer = Buffer.alloc(0); // the last line, until its end is seen
  for await (const chunk of source) {
    const input = carry.length > 0 ? Buffer.concat([carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const last = input.lastIndexOf(0x0a);
    carry = last < 0 ? input : input.subarray(last + 1);
    if (carry.length > MAX_ARMOR_LINE) throw refuse(`an armor line is longer than ${MAX_ARMOR_LINE} characters`);
    if (last < 0) continue;
    let at = 0;
    if (state === 'data') {
      // The bulk: whole lines of base64, compacted byte by byte (a string per line costs 10x more).
      const { decoded, stop } = plainData(input.subarray(0, last + 1), quad);
      quad = decoded.quad;
      if (decoded.bytes !== undefined) yield decoded.bytes;
      at = stop;
    }
    if (at <= last) {
      for (const l of input.toString('latin1', at, last).split('\n')) {
        const out = line(l);
        if (out !== undefined) yield out;
      }
    }
  }
  if (carry.length > 0) {
    const out = line(carry.toString('latin1'));
    if (out !== undefined) yield out;
  }
  if (state !== 'after') throw refuse('the armored message ends before its END line (truncated)');
}
