import assert from 'node:assert/strict';
import { closeSync, openSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chunkFd } from '../../src/archive/chunks.js';
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
});
