import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const DEMO = fileURLToPath(new URL('../../demo/demo.js', import.meta.url));

describe('npm run demo (the README\'s first command)', function () {
  it('runs to the end: keys, pack, install twice with dedup, hooks, status and history', async function () {
    const r = await execa(process.execPath, [DEMO], { reject: false, all: true });
    assert.equal(r.exitCode, 0, String(r.all));
    const out = String(r.all);
    assert.match(out, /current -> firmware-2026-11-24T09.00.00/);
    assert.match(out, /lib\/libdemo.so.1.2 +\d+ +\d+ +shared/);
    assert.match(out, /install ok firmware-2026-11-24T09.00.00 \(was firmware-2026-11-23T10.00.00\)/);
    const dir = /Done\. Everything is in (\S+)/.exec(out)?.[1];
    assert.ok(dir !== undefined, 'the demo says where it worked');
    // No gpg-agent of the demo's throwaway GnuPG home is left running.
    const agents = (await execa('pgrep', ['-af', 'gpg-agent'], { reject: false })).stdout.split('\n').filter((l) => l.includes(dir));
    assert.deepEqual(agents, [], 'a gpg-agent of the demo outlived it');
    await rm(dir, { recursive: true, force: true });
  });
});
