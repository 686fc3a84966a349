import assert from 'node:assert/strict';
import * as openpgp from 'openpgp';
import { inflateOuterLayer } from '../../src/openpgp/outer-compression.js';
import { reframeLiterals } from '../../src/openpgp/reframe-literal.js';
import { gpgGenKey, gpgHome, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';

async function* chunks(b: Uint8Array, size = 4096): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('inflateOuterLayer: the original pipeline\'s OpenPGP compression, inflated by node\'s zlib', function () {
  let g: GpgHome;
  let pub: openpgp.Key;

  before(async function () {
    g = await gpgHome(await makeTmp());
    await gpgGenKey(g, 'Signer <signer@example.com>');
    pub = await openpgp.readKey({ binaryKey: (await g.gpg(['--export', 'signer@example.com'])).stdout });
  });

  for (const algo of ['zip', 'zlib'] as const) {
    it(`gpg --sign --compress-algo ${algo}: the same message comes out uncompressed, in pieces, and still verifies`, async function () {
      const data = Buffer.from('firmware payload\n'.repeat(50_000));
      const signed = (await g.gpg(['--sign', '--compress-algo', algo], data)).stdout;
      assert.ok(signed.length < data.length / 10, 'the input really is compressed');
      const inner = await collect(inflateOuterLayer(chunks(signed), 10 * data.length, 'pkg'));
      const r = await openpgp.verify({ message: await openpgp.readMessage({ binaryMessage: inner }), verificationKeys: pub, format: 'binary', expectSigned: true });
      assert.ok(Buffer.from(r.data as Uint8Array).equals(data));
    });
  }

  it('passes an uncompressed message through unchanged', async function () {
    const signed = (await g.gpg(['--sign', '-z', '0'], Buffer.from('x'))).stdout;
    assert.ok((await collect(inflateOuterLayer(chunks(signed, 7), 100, 'pkg'))).equals(signed));
  });

  it('openpgp-compression-bomb: stops at the cap instead of inflating without bound', async function () {
    const signed = (await g.gpg(['--sign', '-z', '9'], Buffer.alloc(16 * 1024 * 1024))).stdout;
    await assert.rejects(collect(inflateOuterLayer(chunks(signed), 1024 * 1024, 'bomb.gpg')), /bomb\.gpg: the compressed OpenPGP data expands beyond 1048576 bytes/);
  });

  describe('reframeLiterals: gpg\'s 8 KiB partial-length pieces become 1 MiB parts', function () {
    /** The partial-length parts of the literal packet, as (length, partial) pairs. */
    const literalParts = (msg: Buffer): number[] => {
      let off = 0;
      for (;;) {
        const ctb = msg[off] as number;
        const isNew = (ctb & 0x40) !== 0;
        const tag = isNew ? ctb & 0x3f : (ctb >> 2) & 0x0f;
        if (tag === 11) break;
        const len = isNew ? (msg[off + 1] as number) : (msg[off + 1] as number); // short one-pass packet
        off += 2 + len;
      }
      const parts: number[] = [];
      off += 1;
      for (;;) {
        const o = msg[off] as number;
        if (o >= 224 && o < 255) {
          parts.push(1 << (o & 0x1f));
          off += 1 + (1 << (o & 0x1f));
          continue;
        }
        parts.push(o === 255 ? msg.readUInt32BE(off + 1) : o < 192 ? o : ((o - 192) << 8) + (msg[off + 1] as number) + 192);
        return parts;
      }
    };

    for (const size of [2 * 1024 * 1024 - 6 /* body exactly 2 MiB */, 2 * 1024 * 1024 + 12345, 100]) {
      it(`${size} bytes signed by gpg from a pipe: same content, verifies, parts of 1 MiB`, async function () {
        const data = Buffer.alloc(size);
        for (let i = 0; i < size; i++) data[i] = (i * 2654435761) >>> 24;
        const signed = (await g.gpg(['--sign', '-z', '0'], data)).stdout;
        const out = await collect(reframeLiterals(chunks(signed, 5000), 'pkg'));
        const parts = literalParts(out);
        if (size > 1 << 20) {
          assert.ok(literalParts(signed).length > 100, 'gpg wrote small pieces');
          assert.deepEqual(parts.slice(0, -1), Array(parts.length - 1).fill(1 << 20));
        }
        assert.equal(parts.reduce((a, b) => a + b, 0), size + 6, 'the literal body: format, empty name, date, content');
        const r = await openpgp.verify({ message: await openpgp.readMessage({ binaryMessage: out }), verificationKeys: pub, format: 'binary', expectSigned: true });
        assert.ok(Buffer.from(r.data as Uint8Array).equals(data));
        await r.signatures[0]?.verified;
      });
    }

    it('a message cut inside the literal data is an error naming the file, not a shorter message', async function () {
      const signed = (await g.gpg(['--sign', '-z', '0'], Buffer.alloc(300_000, 7))).stdout;
      await assert.rejects(collect(reframeLiterals(chunks(signed.subarray(0, 200_000)), 'cut.gpg')), /cut\.gpg: the signed data ends in the middle of a packet/);
    });

    it('a byte changed in the content still fails verification after re-framing', async function () {
      const data = Buffer.alloc(1_500_000, 1);
      const signed = Buffer.from((await g.gpg(['--sign', '-z', '0'], data)).stdout);
      signed.writeUInt8((signed.readUInt8(signed.length - 50_000) ^ 1), signed.length - 50_000);
      const out = await collect(reframeLiterals(chunks(signed), 'pkg'));
      const r = await openpgp.verify({ message: await openpgp.readMessage({ binaryMessage: out }), verificationKeys: pub, format: 'binary', expectSigned: true }).catch((e: Error) => e);
      if (r instanceof Error) return assert.match(r.message, /signature|digest/i);
      await assert.rejects(r.signatures[0]?.verified as Promise<unknown>, /signature|digest/i);
    });
  });
});
