import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cli } from '../helpers/cli.js';

const bundle = fileURLToPath(new URL('../../bundle/', import.meta.url)); // dist/bundle, beside dist/test
const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('the bundled CLI that bin/* load (scripts/bundle.mjs)', function () {
  it('every file a bundle chunk opens by URL (the precreate worker) is beside it', function () {
    const refs = readdirSync(bundle)
      .filter((f) => f.endsWith('.js'))
      .flatMap((f) => [...readFileSync(bundle + f, 'utf8').matchAll(/new URL\("(\.\/[^"]+\.js)",\s*import\.meta\.url\)/g)].map((m) => m[1] as string));
    assert.ok(refs.includes('./precreate-worker.js'), `the install chunk should start ./precreate-worker.js; found ${refs.join(', ') || 'nothing'}`);
    for (const r of refs) assert.ok(existsSync(bundle + r), `${r} is referenced but not in ${bundle}`);
  });

  it("prints the package's version, found from dist/bundle", async function () {
    const r = await cli('fussy', ['--version'], {});
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });
});
