import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { byteEntropy } from '../../src/pack/digest-files.js';
import { parallelGzip, type Segment } from '../../src/pack/parallel-gzip.js';
import { makeTmp } from '../helpers/tmp.js';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

describe('parallelGzip: independent gzip members, compressed in parallel, in order', function () {
  it('round-trips mixed text, stored random data and file segments through gunzip and GNU gzip', async function () {
    const dir = await makeTmp();
    const text = Buffer.from('firmware update signal kernel module\n'.repeat(100_000));
    const random = randomBytes(3 * 1024 * 1024 + 17);
    const file = join(dir, 'data');
    writeFileSync(file, random);
    const fd = openSync(file, 'r');
    const fileSeg = { fd, length: random.length, store: true, read: 0 };
    async function* segs(): AsyncGenerator<Segment> {
      yield { data: text, store: false };
      yield fileSeg;
      yield { data: Buffer.from('tail'), store: false };
      yield { data: random.subarray(0, 100), store: true };
    }
    const gz = await collect(parallelGzip(segs(), { chunkSize: 256 * 1024, parallel: 3 }));
    closeSync(fd);
    const expected = Buffer.concat([text, random, Buffer.from('tail'), random.subarray(0, 100)]);
    assert.equal(fileSeg.read, random.length);
    assert.ok(gunzipSync(gz).equals(expected));
    const viaGzip = await execa('gzip', ['-dc'], { input: gz, encoding: 'buffer', stripFinalNewline: false });
    assert.ok(Buffer.from(viaGzip.stdout as Uint8Array).equals(expected));
    assert.ok(gz.length < text.length / 5 + random.length * 1.01, `stored data must not grow: ${gz.length}`);
  });

  it('reports a short file through the segment, not by hanging', async function () {
    const dir = await makeTmp();
    const file = join(dir, 'short');
    writeFileSync(file, 'abc');
    const fd = openSync(file, 'r');
    const seg = { fd, length: 10, store: false, read: 0 };
    async function* segs(): AsyncGenerator<Segment> {
      yield seg;
    }
    await collect(parallelGzip(segs()));
    closeSync(fd);
    assert.equal(seg.read, 3);
  });

  it('tells random bytes from text by entropy', function () {
    assert.ok(byteEntropy(randomBytes(16384)) > 7.9);
    assert.ok(byteEntropy(Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(400))) < 5);
  });
});

describe('parallelGunzip: indexed members inflate in parallel; any other gzip streams', function () {
  it('round-trips fussy\'s indexed members and reads a plain gzip file too', async function () {
    const { parallelGunzip } = await import('../../src/unpack/parallel-gunzip.js');
    const { memberLength } = await import('../../src/archive/gzip-member.js');
    const { gzipSync } = await import('node:zlib');
    const text = Buffer.from('release notes\n'.repeat(300_000));
    async function* segs(): AsyncGenerator<Segment> {
      yield { data: text, store: false };
    }
    const gz = await collect(parallelGzip(segs(), { chunkSize: 256 * 1024 }));
    assert.equal(memberLength(gz), (gz.readUInt32LE(16)), 'first member is indexed');
    async function* from(b: Buffer): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < b.length; i += 65536) yield b.subarray(i, i + 65536);
    }
    assert.ok((await collect(parallelGunzip(from(gz)))).equals(text));
    assert.ok((await collect(parallelGunzip(from(gzipSync(text))))).equals(text), 'plain single-member gzip');
    await assert.rejects(collect(parallelGunzip(from(gz.subarray(0, gz.length - 100)))), /truncated|unexpected end/i);
  });
});
