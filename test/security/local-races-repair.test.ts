import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repair } from '../../src/ops/repair.js';
import { verify } from '../../src/ops/verify.js';
import { tempName } from '../../src/util/fs-atomic.js';
import { installInto, makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import type { SampleFile } from '../helpers/tree.js';
import { asNobody, asNobodySync, canRaceAsNobody, NOBODY, packOwned, raceDir, untilExists, victimState } from './race-helpers.js';

const TOOL = '#!/bin/sh\necho tool\n';
const FILES: SampleFile[] = [
  { path: 'etc/app.conf.default', content: 'shared=1\n' }, // healthy copies, outside svc/
  { path: 'etc/x.conf.default', content: 'x=1\n' },
  { path: 'svc/app.conf', content: 'shared=1\n' },
  { path: 'svc/tool', content: TOOL, mode: 0o755 },
  { path: 'svc/sub/x.conf', content: 'x=1\n' },
];

/**
 * `fussy verify --repair` as root in a release where user nobody owns svc/ (or the whole
 * release directory): what root creates, copies, chmods or chowns must be exactly what the
 * manifest says, at exactly the path inside the release, whatever the user plants or swaps
 * between the check and the repair. The user acts after verify and before repair, in a second
 * process, so each race happens every time.
 */
describe('security: local users racing fussy verify --repair as root', function () {
  let tmp: string;
  let ctl: string;
  let dev: Device;
  let victim: string;
  const owner = { asRoot: true };

  before(function () {
    if (!canRaceAsNobody()) this.skip();
  });

  beforeEach(async function () {
    ({ dir: tmp, ctl } = await raceDir(await makeTmp()));
    dev = await makeDevice(join(tmp, 'dev'), { factory: false });
    victim = join(tmp, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'secret'), 'secret\n', { mode: 0o600 });
    await writeFile(join(victim, 'x.conf'), 'victim x\n', { mode: 0o600 });
  });

  const installSvc = async (): Promise<string> => {
    await installInto(dev, await packOwned(tmp, dev, 'fw-1', FILES, { dirs: ['svc'] }));
    return join(dev.target, 'fw-1', 'svc');
  };
  const check = () => verify({ target: dev.target, names: ['fw-1'], owner });
  const fix = async () => (await repair({ target: dev.target, names: ['fw-1'], owner, reports: await check() }))[0];

  it('repair-temp-symlink: symlinks planted at every temp name fussy could use: the damaged file is repaired and no root file outside the release is written or chowned', async function () {
    const svc = await installSvc();
    await writeFile(join(svc, 'app.conf'), 'tampered\n');
    const reports = await check();
    assert.deepEqual(reports[0]?.findings.map((f) => [f.problem, f.path]), [['changed', 'svc/app.conf']]);
    const names = ['app.conf.tmp', '.app.conf.swp', '.fussy-repair-0', 'app.conf.fussy-repair'];
    for (let pid = process.pid - 20; pid <= process.pid + 20; pid++) names.push(`app.conf.fussy-repair-${pid}`, `app.conf.tmp-${pid}`);
    asNobodySync(`const fs = require('fs'); const [svc, to, ...names] = process.argv.slice(1); for (const n of names) fs.symlinkSync(to, svc + '/' + n);`, [svc, join(victim, 'secret'), ...names]);
    const before = victimState(victim);
    const [r] = await repair({ target: dev.target, names: ['fw-1'], owner, reports });
    assert.deepEqual(r?.repaired, ['svc/app.conf']);
    assert.deepEqual(victimState(victim), before, 'root wrote or chowned a file outside the release');
    const st = lstatSync(join(svc, 'app.conf'));
    assert.ok(st.isFile());
    assert.deepEqual([readFileSync(join(svc, 'app.conf'), 'utf8'), st.uid, st.gid, st.mode & 0o7777], ['shared=1\n', 0, 0, 0o644]);
    for (const n of names) assert.equal(readlinkSync(join(svc, n)), join(victim, 'secret'), `${n} was touched`);
  });

  it('repair-temp-planted: a user plants a symlink, a directory and a FIFO at names of fussy\'s temp pattern in a directory it owns: the symlink is unlinked, never followed; the directory and FIFO are kept', async function () {
    const svc = await installSvc();
    const [link, dir, fifo] = [tempName('repair'), tempName('repair'), tempName('repair')];
    asNobodySync(`const fs = require('fs'); const cp = require('child_process'); const [svc, to, link, dir, fifo] = process.argv.slice(1); fs.symlinkSync(to, svc + '/' + link); fs.mkdirSync(svc + '/' + dir); fs.writeFileSync(svc + '/' + dir + '/data', 'mine'); cp.execFileSync('mkfifo', [svc + '/' + fifo]);`, [svc, join(victim, 'secret'), link, dir, fifo]);
    const before = victimState(victim);
    const reports = await check();
    assert.deepEqual(reports[0]?.findings.filter((f) => f.problem === 'leftover').map((f) => f.path), [`svc/${link}`]);
    const [r] = await repair({ target: dev.target, names: ['fw-1'], owner, reports });
    assert.deepEqual(r?.removed, [`svc/${link}`]);
    assert.deepEqual(victimState(victim), before, 'root wrote, chowned or removed something outside the release');
    assert.equal(readFileSync(join(svc, dir, 'data'), 'utf8'), 'mine');
    assert.ok(lstatSync(join(svc, fifo)).isFIFO());
    assert.equal(lstatSync(join(svc, link), { throwIfNoEntry: false }), undefined);
  });

  it('repair-dir-symlink-swap: the damaged file\'s directory swapped for a symlink to a root directory: nothing there is created, replaced or chowned', async function () {
    const svc = await installSvc();
    await writeFile(join(svc, 'sub', 'x.conf'), 'tampered\n');
    const reports = await check();
    asNobodySync(`const fs = require('fs'); const [svc, to] = process.argv.slice(1); fs.renameSync(svc + '/sub', svc + '/sub.real'); fs.symlinkSync(to, svc + '/sub');`, [svc, victim]);
    const before = victimState(victim);
    const [r] = await repair({ target: dev.target, names: ['fw-1'], owner, reports });
    assert.deepEqual(victimState(victim), before, 'root acted in the directory the symlink points at');
    assert.deepEqual(r?.repaired, []);
    assert.match(r?.left[0]?.detail ?? '', /its path changed since it was checked \((ELOOP|ENOTDIR)\): not repaired/);
  });

  it('repair-chmod-symlink: a file with a wrong mode swapped for a symlink to a root file: the root file\'s mode and owner stay', async function () {
    const svc = await installSvc();
    await chmod(join(svc, 'tool'), 0o777);
    const reports = await check();
    assert.deepEqual(reports[0]?.findings.map((f) => [f.problem, f.path]), [['mode', 'svc/tool']]);
    asNobodySync(`const fs = require('fs'); const [svc, to] = process.argv.slice(1); fs.renameSync(svc + '/tool', svc + '/tool.real'); fs.symlinkSync(to, svc + '/tool');`, [svc, join(victim, 'secret')]);
    const before = victimState(victim);
    const [r] = await repair({ target: dev.target, names: ['fw-1'], owner, reports });
    assert.deepEqual(victimState(victim), before, 'root changed the mode or owner of a file outside the release');
    assert.deepEqual(r?.repaired, []);
    assert.equal(readlinkSync(join(svc, 'tool')), join(victim, 'secret'));
  });

  it('repair-chown-held-fd: a file the user owns and holds open for writing is given back to root: root gets a fresh copy, and writes through the old descriptor do not reach it', async function () {
    const svc = await installSvc();
    await chown(join(svc, 'tool'), NOBODY, NOBODY);
    const ready = join(ctl, 'ready');
    const go = join(ctl, 'go');
    const attacker = asNobody(`
      const fs = require('fs');
      const [file, ready, go] = process.argv.slice(1);
      const fd = fs.openSync(file, 'r+');
      fs.writeFileSync(ready, '');
      for (let i = 0; !fs.existsSync(go); i++) { if (i > 60000) process.exit(2); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); }
      fs.writeSync(fd, '#!/bin/sh\\nid >/tmp/owned\\n', 0);
    `, [join(svc, 'tool'), ready, go]);
    await untilExists(ready, 'the attacker to open the file');
    const r = await fix();
    await writeFile(go, '');
    await attacker.done;
    assert.deepEqual(r?.repaired, ['svc/tool']);
    const st = lstatSync(join(svc, 'tool'));
    assert.deepEqual([readFileSync(join(svc, 'tool'), 'utf8'), st.uid, st.gid, st.mode & 0o7777], [TOOL, 0, 0, 0o755]);
  });

  it('repair-forged-manifest: a user who owns the release directory rewrites its manifest to ask for a setuid-root copy of their own file: repair refuses the release', async function () {
    await installInto(dev, await packOwned(tmp, dev, 'fw-1', FILES, { dirs: ['.'] }));
    const rel = join(dev.target, 'fw-1');
    asNobodySync(`
      const fs = require('fs'); const crypto = require('crypto');
      const rel = process.argv[1];
      const mine = '#!/bin/sh\\nid\\n';
      fs.writeFileSync(rel + '/mine', mine);
      const m = JSON.parse(fs.readFileSync(rel + '/.fussy-manifest.json', 'utf8'));
      const f = { type: 'file', mtime: 1700000000, size: mine.length, sha256: crypto.createHash('sha256').update(mine).digest('hex') };
      m.entries.push({ ...f, path: 'mine', mode: 0o644, uid: 65534, gid: 65534 }, { ...f, path: 'evil', mode: 0o4755, uid: 0, gid: 0 });
      m.fileCount += 2; m.totalBytes += 2 * mine.length; // a forgery that passes the schema, as fussy reads installed manifests
      fs.writeFileSync(rel + '/m.tmp', JSON.stringify(m));
      fs.renameSync(rel + '/m.tmp', rel + '/.fussy-manifest.json');
    `, [rel]);
    const reports = await check();
    assert.deepEqual(reports[0]?.findings.map((f) => [f.problem, f.path]), [['missing', 'evil']]);
    const [r] = await repair({ target: dev.target, names: ['fw-1'], owner, reports });
    assert.deepEqual(r?.repaired, []);
    assert.match(r?.left[0]?.detail ?? '', /not repaired: the release directory is owned by uid 65534, so its manifest may not be the one fussy installed/);
    assert.ok(!(await readdir(rel)).includes('evil'), 'repair created the file the forged manifest asked for');
    assert.deepEqual(readdirSyncDeep(rel).filter((p) => (lstatSync(p).mode & 0o6000) !== 0), [], 'a setuid or setgid file appeared');
  });
});

function readdirSyncDeep(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...readdirSyncDeep(p));
  }
  return out;
}
