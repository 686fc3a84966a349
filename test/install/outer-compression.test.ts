import assert from 'node:assert/strict';
import * as openpgp from 'openpgp';
import { inflateOuterLayer } from '../../src/install/outer-compression.js';
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
});
