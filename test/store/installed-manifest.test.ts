import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_NAME, type Manifest, type ManifestEntry } from '../../src/archive/manifest.js';
import type { FussyEvent } from '../../src/events.js';
import { verify } from '../../src/ops/verify.js';
import { pack } from '../../src/pack/pack.js';
import { readInstalledManifest } from '../../src/store/installed-manifest.js';
import { deviceBeside, installInto, makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

/** Two releases that share every file but etc/version: the second dedups all of those from the first. */
function release(name: string): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: 'etc/app.conf', content: 'shared=1\n'.repeat(100) },
    { path: 'bin/tool', mode: 0o755, content: '#!/bin/sh\necho tool\n' },
    { path: 'lib/libx.so.1', content: 'lib\n'.repeat(1000) },
  ];
}

const SHARED = ['etc/app.conf', 'bin/tool', 'lib/libx.so.1'];
const owner = { asRoot: process.getuid?.() === 0 };
const entry = (m: Manifest, path: string): ManifestEntry => m.entries.find((e) => e.path === path) as ManifestEntry;

/** Edits of fw-a's installed manifest that the package schema refuses, named after the attack. */
const BREAKS: Array<[string, (m: Manifest) => void, RegExp]> = [
  ['installed-manifest-negative-size', (m) => (entry(m, 'etc/app.conf').size = -1), /"size" must be a whole number >= 0, not -1/],
  ['installed-manifest-dotdot-path', (m) => (entry(m, 'etc/app.conf').path = 'etc/../../fw-b/etc/app.conf'), /contains a "\.\." component/],
  ['installed-manifest-file-without-sha256', (m) => delete entry(m, 'bin/tool').sha256, /"sha256" must be 64 lower-case hex digits, not missing/],
];

describe('installed manifests are held to the package schema (store/installed-manifest.ts)', function () {
  let tmp: string;
  let dev: Device;
  let fwA: string;
  let fwB: string;

  before(async function () {
    tmp = await makeTmp();
    dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const built = async (n: string): Promise<string> => (await pack({ source: await writeTree(join(tmp, 'build', n), release(n)), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path;
    fwA = await built('fw-a');
    fwB = await built('fw-b');
  });

  async function withBrokenA(name: string, edit?: (m: Manifest) => void): Promise<Device> {
    const d = await deviceBeside(dev, name, [fwA]);
    if (edit !== undefined) {
      const file = join(d.target, 'fw-a', MANIFEST_NAME);
      const m = JSON.parse(await readFile(file, 'utf8')) as Manifest;
      edit(m);
      await writeFile(file, JSON.stringify(m));
    }
    return d;
  }

  const sameInode = (d: Device, path: string): boolean => lstatSync(join(d.target, 'fw-a', path)).ino === lstatSync(join(d.target, 'fw-b', path)).ino;

  it('an intact installed manifest is read, also under a directory name other than its release (install adds -1 to a taken name)', async function () {
    const d = await withBrokenA('intact');
    const read = readInstalledManifest(join(d.target, 'fw-a'));
    assert.ok(read !== undefined && 'manifest' in read, JSON.stringify(read));
    await cp(join(d.target, 'fw-a'), join(d.target, 'fw-a-1'), { recursive: true, preserveTimestamps: true });
    const copy = readInstalledManifest(join(d.target, 'fw-a-1'));
    assert.ok(copy !== undefined && 'manifest' in copy, JSON.stringify(copy));
    assert.equal(copy.manifest.release, 'fw-a');
  });

  it('an install beside an intact release shares its files (the baseline the attacks below are measured against)', async function () {
    const d = await withBrokenA('baseline');
    const events: FussyEvent[] = [];
    const r = await installInto(d, fwB, {}, events);
    assert.ok(r.deduplicatedBytes > 0);
    assert.deepEqual(SHARED.filter((p) => !sameInode(d, p)), []);
    assert.ok(!events.some((e) => e.type === 'log' && /not used for dedup/.test(e.message)));
  });

  for (const [attack, edit, detail] of BREAKS) {
    describe(attack, function () {
      it('verify reports the manifest itself, naming the field', async function () {
        const d = await withBrokenA(`${attack}-verify`, edit);
        const [report] = await verify({ target: d.target, names: ['fw-a'], owner });
        assert.equal(report?.manifest, true);
        assert.deepEqual(report?.findings.map((f) => [f.problem, f.path]), [['changed', MANIFEST_NAME]]);
        assert.match(report?.findings[0]?.detail ?? '', /^the manifest is not one fussy installs: /);
        assert.match(report?.findings[0]?.detail ?? '', detail);
      });

      it('an install beside that release works, says why it is left out, and links nothing from it', async function () {
        const d = await withBrokenA(`${attack}-install`, edit);
        const events: FussyEvent[] = [];
        const r = await installInto(d, fwB, {}, events);
        assert.equal(r.release, 'fw-b');
        assert.equal(r.deduplicatedBytes, 0);
        assert.deepEqual(SHARED.filter((p) => sameInode(d, p)), []);
        const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
        assert.ok(logs.some((m) => m.startsWith(`${join(d.target, 'fw-a')} is not used for dedup: the manifest is not one fussy installs: `) && detail.test(m)), logs.join('\n'));
        const [report] = await verify({ target: d.target, names: ['fw-b'], owner });
        assert.deepEqual(report?.findings, []);
      });
    });
  }

  it('a release whose manifest was edited is not the same release as the package installed again', async function () {
    const d = await withBrokenA('same-release', BREAKS[0]?.[1]);
    const again = await installInto(d, fwA);
    assert.equal(again.release, 'fw-a-1');
    assert.equal(again.sameAs, undefined);
  });
});
