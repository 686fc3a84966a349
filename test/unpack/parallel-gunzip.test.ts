import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { indexMember, MEMBER_DATA_BYTES, MEMBER_MAX_BYTES, memberLength } from '../../src/archive/gzip-member.js';
import { parallelGunzip } from '../../src/unpack/parallel-gunzip.js';

/** A source that hands out `b` in 64 KiB pieces and counts what was taken. */
function counted(b: Buffer): { source: AsyncGenerator<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  async function* gen(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < b.length; i += 65536) {
      const piece = b.subarray(i, i + 65536);
      pulled += piece.length;
      yield piece;
    }
  }
  return { source: gen(), pulled: () => pulled };
}

async function collect(it: AsyncIterable<Buffer>, seen: number[] = []): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) {
    seen.push(c.length);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** fussy's members: 1 MiB each, indexed. */
const members = (data: Buffer, level = 1): Buffer[] => {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += MEMBER_DATA_BYTES) out.push(indexMember(gzipSync(data.subarray(off, off + MEMBER_DATA_BYTES), { level })));
  return out;
};

/** Set a member's FY length field (bytes 16..19: header 10, XLEN 2, subfield header 4). */
const claim = (member: Buffer, total: number): Buffer => {
  const m = Buffer.from(member);
  m.writeUInt32LE(total, 16);
  return m;
};

describe('parallelGunzip: what a member claims buys no memory, and no failure goes unobserved', function () {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    rejections.push(reason);
  };
  before(() => process.on('unhandledRejection', onRejection));
  after(() => process.off('unhandledRejection', onRejection));
  beforeEach(() => rejections.splice(0));
  afterEach(async () => {
    await new Promise((r) => setTimeout(r, 50)); // an unhandled rejection is reported after the microtask queue drains
    assert.deepEqual(rejections, [], 'no promise was rejected without a handler');
  });

  it('oversized-gzip-member-claim: a member whose FY field claims 4 GiB is inflated by the stream, exactly, without buffering the claim', async function () {
    const data = randomBytes(3 * MEMBER_DATA_BYTES);
    const [first, ...rest] = members(data);
    const gz = Buffer.concat([claim(first as Buffer, 0xfffffff0), ...rest]);
    assert.equal(memberLength(gz), 0xfffffff0);
    assert.ok((await collect(parallelGunzip(counted(gz).source))).equals(data));
  });

  it('oversized-gzip-member-claim: a genuine 8 MiB member is streamed; output starts long before its end is read', async function () {
    const data = randomBytes(8 * MEMBER_DATA_BYTES);
    const one = indexMember(gzipSync(data, { level: 0 }));
    assert.ok(one.length > MEMBER_MAX_BYTES);
    const src = counted(one);
    let pulledAtFirstOutput = -1;
    const parts: Buffer[] = [];
    for await (const c of parallelGunzip(src.source)) {
      if (pulledAtFirstOutput < 0) pulledAtFirstOutput = src.pulled();
      parts.push(c);
    }
    assert.ok(Buffer.concat(parts).equals(data));
    // The old reader copied the whole claimed member into one buffer before inflating a byte.
    assert.ok(pulledAtFirstOutput < one.length / 2, `first output after ${pulledAtFirstOutput} of ${one.length} bytes`);
  });

  it('oversized-gzip-member-output: a small member that inflates past 1 MiB is streamed in 1 MiB pieces, not inflated into one buffer', async function () {
    const zeros = Buffer.alloc(16 * MEMBER_DATA_BYTES);
    const member = indexMember(gzipSync(zeros, { level: 9 }));
    assert.ok(member.length <= MEMBER_MAX_BYTES && member.readUInt32LE(member.length - 4) > MEMBER_DATA_BYTES);
    const sizes: number[] = [];
    assert.ok((await collect(parallelGunzip(counted(member).source), sizes)).equals(zeros));
    assert.ok(Math.max(...sizes) <= MEMBER_DATA_BYTES, `largest piece ${Math.max(...sizes)}`);
  });

  it('failing-large-member: a corrupt member bigger than fussy writes, queued behind good ones, is a clean error', async function () {
    const data = randomBytes(6 * MEMBER_DATA_BYTES);
    const ms = members(data.subarray(0, 2 * MEMBER_DATA_BYTES));
    const big = indexMember(gzipSync(data.subarray(2 * MEMBER_DATA_BYTES, 5 * MEMBER_DATA_BYTES), { level: 0 }));
    big[big.length >> 1] = (big[big.length >> 1] as number) ^ 0xff;
    const gz = Buffer.concat([...ms, big, ...members(data.subarray(5 * MEMBER_DATA_BYTES))]);
    await assert.rejects(collect(parallelGunzip(counted(gz).source)), /incorrect data check|invalid/);
  });

  it('failing-pooled-member: a corrupt member inflating in parallel while earlier ones are still queued is reported in order, and nothing is left running', async function () {
    const data = randomBytes(8 * MEMBER_DATA_BYTES);
    const ms = members(data, 0);
    const bad = Buffer.from(ms[1] as Buffer);
    bad[bad.length >> 1] = (bad[bad.length >> 1] as number) ^ 0xff;
    ms[1] = bad;
    const got: Buffer[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of parallelGunzip(counted(Buffer.concat(ms)).source)) got.push(c);
      })(),
      /incorrect data check|invalid/,
    );
    assert.equal(got.length, 1, 'the member before the bad one was delivered');
    assert.ok((got[0] as Buffer).equals(data.subarray(0, MEMBER_DATA_BYTES)));
  });

  it('a reader that stops early leaves no inflation running and no rejection unobserved (bad members behind it)', async function () {
    const data = randomBytes(8 * MEMBER_DATA_BYTES);
    const ms = members(data, 0).map((m, i) => {
      if (i === 0) return m;
      const b = Buffer.from(m);
      b[b.length >> 1] = (b[b.length >> 1] as number) ^ 0xff;
      return b;
    });
    const it = parallelGunzip(counted(Buffer.concat(ms)).source)[Symbol.asyncIterator]();
    const first = await it.next();
    assert.ok(!first.done && first.value.equals(data.subarray(0, MEMBER_DATA_BYTES)));
    await it.return(undefined); // waits for the members still in flight, which all fail
  });
});
