import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clean } from '../../src/ops/clean.js';
import { HashCache } from '../../src/store/hash-cache.js';
import { releaseUsage } from '../../src/store/release-usage.js';
import { installInto, makeDevice, rawTar, signPayload, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import type { SampleFile } from '../helpers/tree.js';
import { asNobody, asNobodySync, canRaceAsNobody, NOBODY, packOwned, raceDir, untilExists, victimState } from './race-helpers.js';

/**
 * A local user who owns a directory inside a release (firmware may ship directories owned by
 * service users, and as root install keeps archive owners) races fussy running as root. Each
 * test runs the attacker as user nobody in a second process; the race is made to happen
 * deterministically (a failpoint pauses root in the window, or the attacker swaps from before
 * root starts until after it ends), and the assertion must hold every time.
 */
describe('security: local users racing fussy as root (directories a user owns inside a release)', function () {
  let tmp: string;
  let ctl: string;
  let dev: Device;

  before(function () {
    if (!canRaceAsNobody()) this.skip(); // CI runs as root, with util-linux
  });

  beforeEach(async function () {
    ({ dir: tmp, ctl } = await raceDir(await makeTmp()));
    dev = await makeDevice(join(tmp, 'dev'), { factory: false });
  });

  /** svc/ (nobody's) holds `subdirs` root-owned subdirectories with two files each. */
  const withSvc = (name: string, subdirs: number): SampleFile[] => [
    { path: 'etc/version', content: `${name}\n` },
    ...Array.from({ length: subdirs }, (_, i) => [0, 1].map((j) => ({ path: `svc/d${String(i).padStart(2, '0')}/f${j}`, content: `${name} ${i} ${j}\n` }))).flat(),
  ];

  /** A directory root owns, outside the target: what the attacker wants root to delete or change. */
  const makeVictim = async (): Promise<string> => {
    const victim = join(tmp, 'victim');
    await mkdir(victim);
    for (let i = 0; i < 8; i++) await writeFile(join(victim, `keep-${i}`), `victim ${i}\n`, { mode: 0o600 });
    return victim;
  };

  // Swaps every dNN of its working directory for a symlink to the victim, then back, until told to stop.
  const SWAPPER = `
    const fs = require('fs');
    const [dir, victim, ready, stop] = process.argv.slice(1);
    process.chdir(dir); // follows the directory when root renames the release into the trash
    const names = fs.readdirSync('.').filter((n) => /^d\\d+$/.test(n));
    const attempt = (f) => { try { f(); return true; } catch (err) { return false; } }; // EACCES once root locked it
    let swaps = 0;
    for (let round = 0; ; round++) {
      for (const n of names) if (attempt(() => fs.renameSync(n, '.' + n)) && attempt(() => fs.symlinkSync(victim, n))) swaps++;
      for (const n of names) attempt(() => fs.unlinkSync(n)) && attempt(() => fs.renameSync('.' + n, n));
      if (round === 0) fs.writeFileSync(ready, '');
      if (fs.existsSync(stop)) break;
    }
    process.stdout.write(String(swaps));
  `;

  it('clean-subdir-symlink-swap: subdirectories of old releases swapped for symlinks to a root directory during fussy clean: root never deletes outside the target', async function () {
    const victim = await makeVictim();
    for (const n of ['fw-1', 'fw-2', 'fw-3']) await installInto(dev, await packOwned(tmp, dev, n, withSvc(n, 40), { dirs: ['svc'] }));
    const before = victimState(victim);
    const stop = join(ctl, 'stop');
    const attackers = ['fw-1', 'fw-2'].map((r, i) => {
      const a = asNobody(SWAPPER, [join(dev.target, r, 'svc'), victim, join(ctl, `ready-${i}`), stop]);
      return { ...a, ready: join(ctl, `ready-${i}`) };
    });
    for (const a of attackers) await untilExists(a.ready, 'the attacker to start swapping');
    let result;
    try {
      result = await clean({ target: dev.target, keep: 0, env: {}, cwd: tmp, hookTimeoutMs: 10_000 });
    } finally {
      await writeFile(stop, '');
    }
    const swaps = await Promise.all(attackers.map((a) => a.done));
    assert.ok(swaps.every((n) => Number(n) > 0), 'the attackers swapped directories');
    assert.deepEqual(result.removed.sort(), ['fw-1', 'fw-2']);
    assert.deepEqual(victimState(victim), before, 'root deleted or changed files outside the target');
    assert.deepEqual((await readdir(dev.target)).sort(), ['.fussy', 'current', 'fw-3']);
    assert.deepEqual((await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('trash-')), []);
  });

  it('usage-walk-race: the disk-usage walk of status and clean neither crashes nor follows a symlink while a user swaps and removes entries', async function () {
    const victim = await makeVictim();
    const victimInodes = new Set((await readdir(victim)).map((n) => { const st = lstatSync(join(victim, n)); return `${st.dev}:${st.ino}`; }));
    await installInto(dev, await packOwned(tmp, dev, 'fw-1', withSvc('fw-1', 40), { dirs: ['svc'] }));
    const ready = join(ctl, 'ready');
    const stop = join(ctl, 'stop');
    const attacker = asNobody(SWAPPER, [join(dev.target, 'fw-1', 'svc'), victim, ready, stop]);
    await untilExists(ready, 'the attacker to start swapping');
    try {
      for (let i = 0; i < 40; i++) {
        const u = await releaseUsage(dev.target, ['fw-1']);
        for (const key of u.inodes.keys()) assert.ok(!victimInodes.has(key), `walk ${i} followed a symlink out of the release`);
      }
    } finally {
      await writeFile(stop, '');
    }
    assert.ok(Number(await attacker.done) > 0);
  });

  it('dedup-swap-after-verify: a candidate file swapped for another root-owned file between its verification and the link (with and without a manifest): the new release still holds exactly the signed content', async function () {
    const a = 'A'.repeat(64) + '\n';
    const b = 'B'.repeat(64) + '\n';
    const files = (n: string): SampleFile[] => [{ path: 'etc/version', content: `${n}\n` }, { path: 'svc/a.conf', content: a }, { path: 'svc/b.conf', content: b }];
    await installInto(dev, await packOwned(tmp, dev, 'fw-1', files('fw-1'), { dirs: ['svc'] }));
    await sleep(250); // past the hash cache's racy window: an unchanged ctime would vouch for the file
    // Root pauses right before it links the verified candidate fw-1/svc/a.conf; the user swaps
    // a.conf and b.conf (both root's, same size and mode, different content) and lets it go on.
    const SWAP = `
      const fs = require('fs');
      const [svc, paused] = process.argv.slice(1);
      for (let i = 0; !fs.existsSync(paused); i++) { if (i > 60000) process.exit(2); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); }
      fs.renameSync(svc + '/a.conf', svc + '/t');
      fs.renameSync(svc + '/b.conf', svc + '/a.conf');
      fs.renameSync(svc + '/t', svc + '/b.conf');
      fs.unlinkSync(paused);
    `;
    // fw-4 comes without a manifest (the original pipeline's format): written first, linked after.
    const legacy = (n: string) =>
      signPayload(join(tmp, `${n}.legacy.gpg`), rawTar([{ path: `${n}/`, type: 'Directory' }, { path: `${n}/etc/version`, data: `${n}\n` }, { path: `${n}/svc/`, type: 'Directory', uid: NOBODY, gid: NOBODY }, { path: `${n}/svc/a.conf`, data: a }, { path: `${n}/svc/b.conf`, data: b }]), { signingKeys: [dev.signingKey] });
    for (const [round, from] of [[2, 'fw-1'], [3, 'fw-2'], [4, 'fw-3']] as const) {
      const paused = join(ctl, `paused-${round}`);
      const attacker = asNobody(SWAP, [join(dev.target, from, 'svc'), paused]);
      const pkg = round === 4 ? await legacy('fw-4') : await packOwned(tmp, dev, `fw-${round}`, files(`fw-${round}`), { dirs: ['svc'] });
      // A package without a manifest carries no sequence: after fussy's own it is a possible downgrade, allowed here.
      await installInto(dev, pkg, { failpoint: `pause:dedup-before-link:${paused}`, allowDowngrade: round === 4 });
      await attacker.done;
      assert.equal(readFileSync(join(dev.target, from, 'svc', 'a.conf'), 'utf8'), b, 'the attacker swapped the files');
      const fresh = join(dev.target, `fw-${round}`, 'svc');
      assert.equal(readFileSync(join(fresh, 'a.conf'), 'utf8'), a, `fw-${round}/svc/a.conf is not the signed content`);
      assert.equal(readFileSync(join(fresh, 'b.conf'), 'utf8'), b, `fw-${round}/svc/b.conf is not the signed content`);
      for (const f of ['a.conf', 'b.conf']) assert.equal(lstatSync(join(fresh, f)).uid, 0);
    }
  });

  it('hash-cache-poison-dir-swap: a user who swaps subdirectories of a new release (which keeps the files\' ctimes) never makes the cache vouch for one file with another\'s hash', async function () {
    const rel = join(tmp, 'rel');
    await mkdir(join(rel, 'svc', 'p'), { recursive: true });
    await mkdir(join(rel, 'svc', 'q'));
    await mkdir(join(rel, 'etc'));
    for (const [f, c] of [['svc/p/f', 'PPPP'], ['svc/q/f', 'QQQQ'], ['etc/g', 'GGGG']]) await writeFile(join(rel, f as string), c as string);
    await chown(join(rel, 'svc'), NOBODY, NOBODY);
    await sleep(250); // older than the racy window
    asNobodySync(`const fs = require('fs'); const s = process.argv[1]; fs.renameSync(s + '/p', s + '/t'); fs.renameSync(s + '/q', s + '/p'); fs.renameSync(s + '/t', s + '/q');`, [join(rel, 'svc')]);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const cacheFile = join(tmp, 'cache.json');
    await HashCache.load(undefined).save(cacheFile, rel, [['svc/p/f', sha('PPPP')], ['svc/q/f', sha('QQQQ')], ['etc/g', sha('GGGG')]]);
    const cache = HashCache.load(cacheFile);
    assert.equal(cache.get(lstatSync(join(rel, 'svc', 'p', 'f'))), undefined, 'the cache vouches for QQQQ as PPPP');
    assert.equal(cache.get(lstatSync(join(rel, 'svc', 'q', 'f'))), undefined);
    assert.equal(cache.get(lstatSync(join(rel, 'etc', 'g'))), sha('GGGG'), 'files in root-only directories are still cached');
  });
});
