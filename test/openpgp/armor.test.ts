import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import { dearmor } from '../../src/openpgp/armor.js';

async function* chunks(b: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function decoded(text: string | Buffer, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of dearmor(chunks(Buffer.from(text), size), 'pkg.asc')) parts.push(c);
  return Buffer.concat(parts);
}

describe('dearmor: armored packages decoded as they stream', function () {
  for (const length of [0, 1, 2, 3, 100_000, 100_001, 100_002]) {
    it(`${length} bytes, armored by OpenPGP.js (with and without the CRC line), come back byte for byte at any chunk size`, async function () {
      const data = randomBytes(length);
      for (const emitChecksum of [false, true]) {
        const text = openpgp.armor(openpgp.enums.armor.message, data, undefined, undefined, 'a comment', emitChecksum);
        for (const size of [1, 3, 64, 65, 4096, 1 << 20]) {
          if (size < 64 && length > 1000) continue; // slow and says nothing new
          assert.ok((await decoded(text, size)).equals(data), `chunk size ${size}, checksum ${emitChecksum}`);
        }
      }
    });
  }

  it('refuses what is not armor as OpenPGP means it: bad base64, padding in the middle, a missing END line', async function () {
    const text = openpgp.armor(openpgp.enums.armor.message, randomBytes(1000));
    await assert.rejects(decoded(text.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1*'), 4096), /not valid base64/);
    const lines = text.split('\n');
    const padded = [...lines.slice(0, 3), 'QQ==', ...lines.slice(3)].join('\n');
    await assert.rejects(decoded(padded, 4096), /not valid base64/);
    await assert.rejects(decoded(text.replace('-----END PGP MESSAGE-----', ''), 4096), /ends before its END line/);
    await assert.rejects(decoded(text.replace('-----BEGIN PGP MESSAGE-----\n', '-----BEGIN PGP MESSAGE-----\nVersion 1\n'), 4096), /malformed armor header/);
  });
});
