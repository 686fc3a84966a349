import assert from 'node:assert/strict';
import { appendFile, chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { deviceBeside, makeDevice } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

function release(name: string): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: 'etc/app.conf', content: 'shared=1\n' },
    { path: 'bin/tool', mode: 0o755, content: '#!/bin/sh\necho tool\n' },
    { path: 'lib/libx.so', symlink: 'libx.so.1' },
    { path: 'lib/libx.so.1', content: 'lib\n' },
  ];
}

describe('fussy verify: installed releases against their manifests', function () {
  it('finds a shared file a hook edited in place, in every release sharing it, plus missing, extra and mode changes', async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const pkgs = [];
    for (const n of ['fw-a', 'fw-b']) pkgs.push((await pack({ source: await writeTree(join(tmp, 'build', n), release(n)), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path);
    const d = await deviceBeside(dev, 'dev', pkgs);
    const ok = await cli('fussy', ['verify', '-t', d.target]);
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.match(ok.stderr, /fw-b: ok \(\d+ entries match the manifest\)/);

    await appendFile(join(d.target, 'fw-b', 'etc', 'app.conf'), 'appended by a hook\n'); // shared with fw-a
    await rm(join(d.target, 'fw-b', 'lib', 'libx.so.1'));
    await writeFile(join(d.target, 'fw-b', 'etc', 'local.conf'), 'added\n');
    await chmod(join(d.target, 'fw-b', 'bin', 'tool'), 0o777);
    const r = await cli('fussy', ['verify', '-t', d.target, '--all']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /failsafe: no manifest \(installed without one\), not checked/);
    // bin/tool and etc/app.conf are hard links shared by both releases: fw-a shows the damage too.
    assert.match(r.stderr, /fw-a: 2 problems\n {2}mode bin\/tool: mode 777, the manifest says 755\n {2}changed etc\/app.conf: content differs \(size 28, manifest 9\); it has 1 other hard link/);
    assert.match(r.stderr, /fw-b: 4 problems/);
    assert.match(r.stderr, /missing lib\/libx.so.1/);
    assert.match(r.stderr, /extra etc\/local.conf/);
    assert.match(r.stderr, /mode bin\/tool: mode 777, the manifest says 755/);
    assert.match(r.stderr, /fw-a, fw-b differ from their manifests/);
    const json = await cli('fussy', ['verify', '-t', d.target, 'fw-a', '--json']);
    const out = JSON.parse(json.stdout) as { ok: boolean; error: { code: string; releases: Array<{ release: string; findings: Array<{ path: string; problem: string }> }> } };
    assert.equal(out.error.code, 'VERIFY_FAILED');
    assert.deepEqual(out.error.releases[0]?.findings.map((f) => [f.problem, f.path]), [['mode', 'bin/tool'], ['changed', 'etc/app.conf']]);
  });

  it('--repair puts back content from a healthy copy (not the shared damaged inode), modes and files, then verifies clean', async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const pkgs = [];
    // fw-c holds the same app.conf content with another mode: a separate inode, so a healthy copy.
    const trees: Array<[string, SampleFile[]]> = [
      ['fw-c', release('fw-c').map((f) => (f.path === 'etc/app.conf' ? { ...f, mode: 0o600 } : f))],
      ['fw-a', release('fw-a')],
      ['fw-b', release('fw-b')],
    ];
    for (const [n, files] of trees) pkgs.push((await pack({ source: await writeTree(join(tmp, 'build', n), files), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path);
    const d = await deviceBeside(dev, 'dev', pkgs);
    await appendFile(join(d.target, 'fw-b', 'etc', 'app.conf'), 'appended by a hook\n'); // shared by fw-a and fw-b
    await rm(join(d.target, 'fw-b', 'lib', 'libx.so.1'));
    await chmod(join(d.target, 'fw-b', 'bin', 'tool'), 0o777);
    const r = await cli('fussy', ['verify', '-t', d.target, '--all', '--repair']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /fw-b: repaired etc\/app.conf/);
    assert.match(r.stderr, /fw-a: repaired etc\/app.conf/);
    assert.match(r.stderr, /fw-b: repaired lib\/libx.so.1/);
    assert.match(r.stderr, /fw-b: ok/);
    assert.equal(await readFile(join(d.target, 'fw-a', 'etc', 'app.conf'), 'utf8'), 'shared=1\n');
    assert.equal((await cli('fussy', ['verify', '-t', d.target, '--all'])).exitCode, 0);
  });
});
