import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('.mocharc.cjs: the order npm test runs the files in', function () {
  it('lists every built test file exactly once, and each file it hands out first exists', async function () {
    const config = createRequire(import.meta.url)(join(ROOT, '.mocharc.cjs')) as { spec: string[]; longestFirst: string[] };
    const built = (await readdir(join(ROOT, 'dist/test'), { recursive: true })).filter((f) => f.endsWith('.test.js')).map((f) => join('dist/test', f)).sort();
    // The config resolves its paths against the working directory npm test runs in: the checkout.
    assert.deepEqual([...config.spec].sort(), built);
    assert.equal(new Set(config.spec).size, config.spec.length);
    for (const f of config.longestFirst) assert.ok(built.includes(f), `${f} is listed to run first but is not a test file (renamed?)`);
    assert.deepEqual(config.spec.slice(0, config.longestFirst.length), config.longestFirst);
  });
});
