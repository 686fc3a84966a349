import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newLength, packetHeader, type PacketHeader } from '../../src/openpgp/packet-length.js';
import { gpgGenKey, gpgHome, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

describe('packet lengths (openpgp/packet-length.ts, RFC 4880 §4.2)', function () {
  describe('newLength: new-format body lengths', function () {
    it('one-octet lengths: 0 to 191', function () {
      assert.deepEqual(newLength(b(0)), [{ kind: 'fixed', length: 0 }, 1]);
      assert.deepEqual(newLength(b(100, 0xaa)), [{ kind: 'fixed', length: 100 }, 1]);
      assert.deepEqual(newLength(b(191)), [{ kind: 'fixed', length: 191 }, 1]);
    });

    it('two-octet lengths: 192 to 8383 (RFC 4880 §4.2.2.2)', function () {
      assert.deepEqual(newLength(b(192, 0)), [{ kind: 'fixed', length: 192 }, 2]);
      assert.deepEqual(newLength(b(193, 44)), [{ kind: 'fixed', length: 492 }, 2]);
      assert.deepEqual(newLength(b(223, 255)), [{ kind: 'fixed', length: 8383 }, 2]);
    });

    it('five-octet lengths, up to 2^32 - 1 (RFC 4880 §4.2.2.3)', function () {
      assert.deepEqual(newLength(b(255, 0, 0, 0x20, 0)), [{ kind: 'fixed', length: 8192 }, 5]);
      assert.deepEqual(newLength(b(255, 0xff, 0xff, 0xff, 0xff)), [{ kind: 'fixed', length: 0xffff_ffff }, 5]);
    });

    it('partial body lengths: powers of two from 1 to 2^30 (octets 224 to 254, RFC 4880 §4.2.2.4)', function () {
      assert.deepEqual(newLength(b(224)), [{ kind: 'partial', length: 1 }, 1]);
      assert.deepEqual(newLength(b(224 + 13)), [{ kind: 'partial', length: 8192 }, 1], 'what gpg writes from a pipe');
      assert.deepEqual(newLength(b(224 + 20)), [{ kind: 'partial', length: 1 << 20 }, 1], 'what reframe-literal writes');
      assert.deepEqual(newLength(b(254)), [{ kind: 'partial', length: 1 << 30 }, 1]);
    });

    it('an incomplete length is undefined (more bytes needed), never a shorter length', function () {
      assert.equal(newLength(b()), undefined);
      assert.equal(newLength(b(200)), undefined);
      for (let n = 1; n < 5; n++) assert.equal(newLength(Buffer.alloc(n, 0xff)), undefined, `${n} of 5 octets`);
    });
  });

  describe('packetHeader: old and new format packet headers', function () {
    it('new format: the tag is the low six bits, the length follows', function () {
      assert.deepEqual(packetHeader(b(0xc0 | 11, 5)), { tag: 11, length: { kind: 'fixed', length: 5 }, headerLen: 2 });
      assert.deepEqual(packetHeader(b(0xc0 | 2, 0xc5, 0x10)), { tag: 2, length: { kind: 'fixed', length: ((0xc5 - 192) << 8) + 0x10 + 192 }, headerLen: 3 });
      assert.deepEqual(packetHeader(b(0xc0 | 18, 0xff, 0, 1, 0, 0)), { tag: 18, length: { kind: 'fixed', length: 65536 }, headerLen: 6 });
      assert.deepEqual(packetHeader(b(0xc0 | 11, 0xed)), { tag: 11, length: { kind: 'partial', length: 8192 }, headerLen: 2 });
      assert.deepEqual(packetHeader(b(0xc0 | 63, 0)), { tag: 63, length: { kind: 'fixed', length: 0 }, headerLen: 2 }, 'tags above 15 exist only in the new format');
    });

    it('old format: the tag is bits 5-2, the length type bits 1-0 (1, 2 or 4 octets, or indeterminate)', function () {
      // 0x90: one-pass signature, one-octet length; 0x89: signature, two octets; 0xa3: compressed, indeterminate.
      assert.deepEqual(packetHeader(b(0x90, 13)), { tag: 4, length: { kind: 'fixed', length: 13 }, headerLen: 2 });
      assert.deepEqual(packetHeader(b(0x89, 0x01, 0x33)), { tag: 2, length: { kind: 'fixed', length: 0x133 }, headerLen: 3 });
      assert.deepEqual(packetHeader(b(0xae, 0x12, 0x34, 0x56, 0x78)), { tag: 11, length: { kind: 'fixed', length: 0x1234_5678 }, headerLen: 5 });
      assert.deepEqual(packetHeader(b(0xa3)), { tag: 8, length: { kind: 'indeterminate' }, headerLen: 1 });
    });

    it('a byte without the packet bit (0x80) is not a packet header', function () {
      for (const first of [0x00, 0x1f, 0x2d, 0x7f]) assert.equal(packetHeader(b(first, 1, 2, 3, 4, 5)), undefined, `0x${first.toString(16)}`);
    });

    it('an incomplete header is undefined (more bytes needed)', function () {
      assert.equal(packetHeader(b()), undefined);
      assert.equal(packetHeader(b(0x89, 0x01)), undefined, 'old format, two-octet length cut short');
      assert.equal(packetHeader(b(0xae, 0, 0, 0)), undefined, 'old format, four-octet length cut short');
      assert.equal(packetHeader(b(0xc0 | 2, 0xff, 0, 0)), undefined, 'new format, five-octet length cut short');
      assert.equal(packetHeader(b(0xc0 | 2)), undefined, 'new format, no length at all');
    });
  });

  describe('on messages gpg wrote', function () {
    let g: GpgHome;

    before(async function () {
      g = await gpgHome(await makeTmp());
      await gpgGenKey(g, 'Signer <signer@example.com>');
    });

    /** Walk a packet sequence with packetHeader and newLength alone; the tags in order. */
    function walk(msg: Buffer): { tags: number[]; partialParts: number } {
      const tags: number[] = [];
      let partialParts = 0;
      let off = 0;
      while (off < msg.length) {
        const h = packetHeader(msg.subarray(off)) as PacketHeader;
        assert.ok(h !== undefined, `a packet header at byte ${off}`);
        tags.push(h.tag);
        assert.notEqual(h.length.kind, 'indeterminate', 'gpg -z 0 writes no indeterminate length');
        off += h.headerLen + (h.length.kind === 'indeterminate' ? 0 : h.length.length);
        for (let partial = h.length.kind === 'partial'; partial; ) {
          partialParts++;
          const l = newLength(msg.subarray(off));
          assert.ok(l !== undefined);
          partial = l[0].kind === 'partial';
          off += l[1] + (l[0].kind === 'indeterminate' ? 0 : l[0].length);
        }
      }
      assert.equal(off, msg.length, 'the lengths account for every byte, no more');
      return { tags, partialParts };
    }

    it('gpg --sign -z 0 from a pipe: one-pass signature, literal data in partial lengths, signature; every byte accounted for', async function () {
      const r = await g.gpg(['--sign', '-z', '0'], Buffer.alloc(100_000, 0x5a));
      assert.equal(r.exitCode, 0, r.stderr);
      const { tags, partialParts } = walk(r.stdout);
      assert.deepEqual(tags, [4, 11, 2]);
      assert.ok(partialParts > 5, `gpg framed the literal data in pieces (${partialParts})`);
    });

    it('gpg --sign of a file: the literal data has a fixed length', async function () {
      const dir = await makeTmp();
      const file = join(dir, 'payload');
      await writeFile(file, Buffer.alloc(20_000, 1));
      const r = await g.gpg(['--sign', '-z', '0', '-o', '-', file]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(walk(r.stdout), { tags: [4, 11, 2], partialParts: 0 });
    });
  });
});
