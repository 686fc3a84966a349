import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { reframeLiterals } from '../../src/openpgp/reframe-literal.js';
import { gpgGenKey, gpgHome, statusTokens, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { Rng } from '../fuzz/rng.js';

const MiB = 1 << 20;

async function* chunks(b: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** A new-format length octet string for a final (fixed) part of n bytes, in its shortest form. */
function fixedLength(n: number): Buffer {
  if (n < 192) return Buffer.from([n]);
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xff;
  b.writeUInt32BE(n, 1);
  return b;
}

/**
 * A literal data packet (tag 11, new format) whose body is framed in partial parts of the given
 * sizes (powers of two), then one fixed-length final part with what is left (possibly empty).
 */
function literalPacket(body: Buffer, partBits: number[]): Buffer {
  const out: Buffer[] = [Buffer.from([0xc0 | 11])];
  let off = 0;
  for (const bits of partBits) {
    out.push(Buffer.from([224 + bits]), body.subarray(off, off + (1 << bits)));
    off += 1 << bits;
  }
  assert.ok(off <= body.length, 'the parts fit the body');
  out.push(fixedLength(body.length - off), body.subarray(off));
  return Buffer.concat(out);
}

/** A literal body: binary format, no file name, date 0, then the content. */
const literalBody = (content: Buffer): Buffer => Buffer.concat([Buffer.from([0x62, 0, 0, 0, 0, 0]), content]);

/** Parse one new-format literal packet at `off` on its own terms: its parts' lengths and its body. */
function readLiteral(msg: Buffer, off: number): { parts: Array<{ length: number; partial: boolean }>; body: Buffer; end: number } {
  assert.equal(msg[off], 0xc0 | 11, 'a new-format literal data packet');
  let p = off + 1;
  const parts: Array<{ length: number; partial: boolean }> = [];
  const body: Buffer[] = [];
  for (;;) {
    const o = msg[p] as number;
    let length: number;
    let partial = false;
    if (o < 192) [length, p] = [o, p + 1];
    else if (o < 224) [length, p] = [((o - 192) << 8) + (msg[p + 1] as number) + 192, p + 2];
    else if (o === 255) [length, p] = [msg.readUInt32BE(p + 1), p + 5];
    else [length, partial, p] = [1 << (o & 0x1f), true, p + 1];
    assert.ok(p + length <= msg.length, 'a part within the message');
    parts.push({ length, partial });
    body.push(msg.subarray(p, p + length));
    p += length;
    if (!partial) return { parts, body: Buffer.concat(body), end: p };
  }
}

/** Parts as reframe-literal writes them: 1 MiB partial parts, then one final part of at most 1 MiB. */
function assertReframed(parts: Array<{ length: number; partial: boolean }>, bodyLength: number): void {
  const last = parts[parts.length - 1] as { length: number; partial: boolean };
  assert.deepEqual(parts.slice(0, -1), Array(parts.length - 1).fill({ length: MiB, partial: true }));
  assert.equal(last.partial, false);
  assert.ok(last.length <= MiB && (last.length > 0 || bodyLength === 0), `final part of ${last.length} bytes`);
}

describe('reframeLiterals (openpgp/reframe-literal.ts): partial-length literal data re-framed into 1 MiB parts', function () {
  const ONE_PASS = Buffer.from([0x90, 13, 3, 0, 8, 22, 1, 2, 3, 4, 5, 6, 7, 8, 1]); // old format, shape only
  const SIGNATURE = Buffer.concat([Buffer.from([0xc2, 20]), Buffer.alloc(20, 0x55)]);

  it('seeded random part sizes and chunk sizes: the same body, in 1 MiB parts, packets around it unchanged', async function () {
    const r = new Rng(0x5eed);
    for (let round = 0; round < 40; round++) {
      const size = round < 4 ? [0, 1, MiB - 6, 2 * MiB - 6][round] as number : r.int(3 * MiB);
      const content = Buffer.alloc(size);
      for (let i = 0; i < size; i += 997) content[i] = r.int(256);
      const body = literalBody(content);
      // gpg's first part is 8 KiB and later ones too; any power of two is valid framing after it.
      const bits: number[] = [];
      for (let used = 0, first = true; ; first = false) {
        const b = first ? 9 + r.int(7) : r.int(22);
        if (used + (1 << b) > body.length) break;
        bits.push(b);
        used += 1 << b;
      }
      if (bits.length === 0) continue; // nothing partial: passed through, below
      const msg = Buffer.concat([ONE_PASS, literalPacket(body, bits), SIGNATURE]);
      const chunk = [1 + r.int(16), 1 + r.int(5000), 4096, 65536, MiB + 7][round % 5] as number;
      if (chunk < 16 && msg.length > 100_000) continue; // byte-sized chunks only on small messages (time)
      const out = await collect(reframeLiterals(chunks(msg, chunk), 'pkg'));
      const what = `round ${round}: ${size} bytes, first part 2^${bits[0]}, ${bits.length} parts, chunks of ${chunk}`;
      assert.ok(out.subarray(0, ONE_PASS.length).equals(ONE_PASS), what);
      const lit = readLiteral(out, ONE_PASS.length);
      assert.ok(lit.body.equals(body), `${what}: the body`);
      if ((1 << (bits[0] as number)) < 64 * 1024) assertReframed(lit.parts, body.length);
      assert.ok(out.subarray(lit.end).equals(SIGNATURE), `${what}: the signature after it`);
    }
  });

  it('a body that fills its last 1 MiB part exactly, and gpg\'s empty final part', async function () {
    for (const [content, bits] of [
      [MiB - 6, Array(128).fill(13)], // exactly 1 MiB of body in 8 KiB parts, then an empty final part
      [3 * MiB - 6, Array(384).fill(13)],
      [20_000, [13, 13]],
    ] as Array<[number, number[]]>) {
      const body = literalBody(Buffer.alloc(content, 0xab));
      const out = await collect(reframeLiterals(chunks(literalPacket(body, bits), 8191), 'pkg'));
      const lit = readLiteral(out, 0);
      assert.ok(lit.body.equals(body));
      assertReframed(lit.parts, body.length);
      assert.equal(lit.end, out.length);
    }
  });

  it('parts of 64 KiB and more are left as they are: the packet passes byte for byte (no copy)', async function () {
    const body = literalBody(Buffer.alloc(3 * MiB, 3));
    const msg = Buffer.concat([ONE_PASS, literalPacket(body, [19, 19, 20, 16]), SIGNATURE]);
    for (const chunk of [4093, MiB + 1]) assert.ok((await collect(reframeLiterals(chunks(msg, chunk), 'pkg'))).equals(msg), `chunks of ${chunk}`);
    const small = Buffer.concat([ONE_PASS, literalPacket(literalBody(Buffer.alloc(150_000, 4)), [16, 16]), SIGNATURE]);
    assert.ok((await collect(reframeLiterals(chunks(small, 5), 'pkg'))).equals(small), 'headers split across chunks of 5');
  });

  it('fixed-length literal data and every other packet pass byte for byte', async function () {
    const msg = Buffer.concat([ONE_PASS, literalPacket(literalBody(Buffer.alloc(100_000, 9)), []), SIGNATURE, SIGNATURE]);
    assert.ok((await collect(reframeLiterals(chunks(msg, 333), 'pkg'))).equals(msg));
  });

  it('a message cut inside a part, or inside the length of the next part, is truncated naming the file', async function () {
    const body = literalBody(Buffer.alloc(40_000, 1));
    const msg = literalPacket(body, [13, 13, 13]);
    const afterTwoParts = 1 + 2 * (1 + 8192);
    for (const cut of [1, 100, afterTwoParts, afterTwoParts + 1, msg.length - 1]) {
      await assert.rejects(collect(reframeLiterals(chunks(msg.subarray(0, cut), 1000), 'cut.gpg')), { code: 'BAD_SIGNATURE', message: /^cut\.gpg: the signed data ends in the middle of a packet \(truncated\)$/ }, `cut at ${cut}`);
    }
    // The final part's five-octet length, cut after two of its octets.
    const five = Buffer.concat([Buffer.from([0xcb, 224 + 9]), Buffer.alloc(512), Buffer.from([0xff, 0, 0])]);
    await assert.rejects(collect(reframeLiterals(chunks(five, 7), 'cut.gpg')), /cut\.gpg: the signed data ends in the middle of a packet/);
  });

  it('a byte that is not a packet header is refused with its offset', async function () {
    const msg = Buffer.concat([ONE_PASS, Buffer.from([0x00, 1, 2, 3, 4, 5, 6])]);
    await assert.rejects(collect(reframeLiterals(chunks(msg, 4), 'x.gpg')), { code: 'BAD_SIGNATURE', message: `x.gpg: byte ${ONE_PASS.length} of the package is not the start of an OpenPGP packet` });
  });

  describe('on a message gpg signed from a pipe', function () {
    let g: GpgHome;
    let dir: string;
    let pub: openpgp.Key;

    before(async function () {
      dir = await makeTmp();
      g = await gpgHome(dir);
      await gpgGenKey(g, 'Signer <signer@example.com>');
      pub = await openpgp.readKey({ binaryKey: (await g.gpg(['--export', 'signer@example.com'])).stdout });
    });

    it('re-cut into small parts of random sizes, then re-framed across chunk boundaries: OpenPGP.js and gpg both verify it', async function () {
      const content = Buffer.alloc(2 * MiB + 4321);
      for (let i = 0; i < content.length; i++) content[i] = (i * 2654435761) >>> 24;
      const signed = (await g.gpg(['--sign', '-z', '0'], content)).stdout;
      // gpg's framing is not signed (RFC 4880 §5.2.4): re-cutting the body keeps the signature valid.
      const opsLen = 2 + (signed[1] as number);
      const lit = readLiteral(signed, opsLen);
      const r = new Rng(7);
      const bits: number[] = [];
      for (let used = 0; ; ) {
        const b = used === 0 ? 9 : 1 + r.int(15);
        if (used + (1 << b) > lit.body.length) break;
        bits.push(b);
        used += 1 << b;
      }
      const recut = Buffer.concat([signed.subarray(0, opsLen), literalPacket(lit.body, bits), signed.subarray(lit.end)]);
      for (const chunk of [1021, 65536 + 3]) {
        const out = await collect(reframeLiterals(chunks(recut, chunk), 'pkg'));
        assertReframed(readLiteral(out, opsLen).parts, lit.body.length);
        const v = await openpgp.verify({ message: await openpgp.readMessage({ binaryMessage: out }), verificationKeys: pub, format: 'binary', expectSigned: true });
        assert.ok(Buffer.from(v.data as Uint8Array).equals(content));
        const file = join(dir, `reframed-${chunk}.gpg`);
        await writeFile(file, out);
        const gv = await g.gpg(['--status-fd', '2', '--decrypt', file]);
        assert.equal(gv.exitCode, 0, gv.stderr);
        assert.ok(statusTokens(gv.stderr).some((t) => t.startsWith('GOODSIG ')), 'gpg: good signature');
        assert.ok(gv.stdout.equals(content));
      }
    });
  });
});
