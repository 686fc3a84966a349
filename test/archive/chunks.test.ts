import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chunkFd } from '../../src/archive/chunks.js';
import { FussyError } from '../../src/errors.js';
import { writePatch } from '../../src/pack/delta-patch.js';
import { makeTmp } from '../helpers/tmp.js';
import { noise } from '../helpers/tree.js';

describe('content-defined chunks (archive/chunks.ts)', function () {
  it('chunk-file-grows: a file grown to a sparse 8 GiB after its size was taken is chunked no further than that size', async function () {
    const file = join(await makeTmp(), 'base.img');
    const bytes = noise(5, 2 << 20);
    writeFileSync(file, bytes);
    const fd = openSync(file, 'r');
    try {
      truncateSync(file, 8 * 2 ** 30); // its owner grows it once pack has listed it
      let end = 0;
      const parts: Buffer[] = [];
      chunkFd(fd, (c) => {
        assert.equal(c.offset, end);
        end += c.data.length;
        parts.push(Buffer.from(c.data));
      }, bytes.length);
      assert.equal(end, bytes.length);
      assert.ok(Buffer.concat(parts).equals(bytes));
    } finally {
      closeSync(fd);
    }
  });

  it('file-shrinks-while-packed: a delta file shorter than its listed size when its patch is made is refused (BAD_SOURCE), and no patch is left', async function () {
    const dir = await makeTmp();
    const [base, file, out] = [join(dir, 'base.img'), join(dir, 'next.img'), join(dir, 'patch')];
    const bytes = noise(6, 2 << 20);
    writeFileSync(base, bytes);
    writeFileSync(file, bytes.subarray(0, 1 << 20)); // listed at 2 MiB, cut to 1 MiB since
    const listed = bytes.length;
    assert.throws(
      () => writePatch(file, base, out, { baseSha256: createHash('sha256').update(bytes).digest('hex'), maxSize: listed, size: listed }),
      (e: unknown) => e instanceof FussyError && e.code === 'BAD_SOURCE' && e.message.includes(`${file} changed size while it was being packed (${listed} bytes when listed, ${1 << 20} now)`),
    );
    assert.equal(existsSync(out), false);
  });
});
