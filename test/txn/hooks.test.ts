import assert from 'node:assert/strict';
import { mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack } from '../../src/pack/pack.js';
import { deviceBeside, installInto, makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

const HOOKS = fileURLToPath(new URL('../../../hooks/', import.meta.url));
const FAKE_SYSTEMCTL = fileURLToPath(new URL('../../../fixtures/fake-systemctl', import.meta.url));

describe('hooks/: helpers firmware authors ship as .pre-install / .post-install', function () {
  let tmp: string;
  let dev: Device;
  let n = 0;

  before(async function () {
    tmp = await makeTmp();
    dev = await makeDevice(join(tmp, 'keys'), { factory: false });
  });

  async function pkg(release: string, files: SampleFile[]): Promise<string> {
    const src = await writeTree(join(tmp, 'build', `${n++}`, release), files);
    return (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${release}-${n}.gpg`) })).path;
  }
  const helper = async (name: string): Promise<string> => readFile(join(HOOKS, name), 'utf8');

  describe('stop-services / restart-services', function () {
    let systemd: string;
    let env: Record<string, string | undefined>;
    const services = async (release: string, units: string): Promise<string> =>
      pkg(release, [
        { path: 'etc/version', content: `${release}\n` },
        { path: '.fussy-services', content: units },
        { path: '.pre-install', mode: 0o755, content: await helper('stop-services') },
        { path: '.post-install', mode: 0o755, content: await helper('restart-services') },
      ]);

    beforeEach(async function () {
      systemd = join(tmp, `systemd-${n++}`);
      await mkdir(systemd);
      await writeFile(join(systemd, 'app.service'), 'active\n');
      env = { PATH: process.env.PATH, FUSSY_SYSTEMCTL: FAKE_SYSTEMCTL, FAKE_SYSTEMD_DIR: systemd };
    });
    const calls = async (): Promise<string[]> => (await readFile(join(systemd, 'calls'), 'utf8')).trim().split('\n');

    it('stop the listed units before the switch and restart them after it, idempotently', async function () {
      const d = await deviceBeside(dev, `dev-svc-${n++}`);
      const p = await services('fw-svc', '# units of this firmware\napp.service\nweb.service  # the UI\n');
      await installInto(d, p, { env });
      assert.deepEqual(await calls(), ['is-active app.service', 'stop app.service', 'is-active web.service', 'restart app.service', 'restart web.service']);
      assert.equal(await readFile(join(systemd, 'web.service'), 'utf8'), 'active\n');
      await installInto(d, p, { env }); // again (as after a power cut): the same, no failure
      assert.equal(await readlink(join(d.target, 'current')), 'fw-svc-1');
    });

    it('a unit that does not come up fails the post-install: the previous release is re-enabled and restarts its own units', async function () {
      const d = await deviceBeside(dev, `dev-svc-${n++}`);
      await installInto(d, await services('fw-good', 'app.service\n'), { env });
      await writeFile(join(systemd, 'calls'), '');
      await assert.rejects(installInto(d, await services('fw-broken', 'app.service\nbroken.service\n'), { env }), { code: 'INSTALL_FAILED_RECOVERED' });
      assert.equal(await readlink(join(d.target, 'current')), 'fw-good');
      assert.deepEqual((await calls()).filter((c) => c !== ''), ['is-active app.service', 'stop app.service', 'is-active broken.service', 'restart app.service', 'restart broken.service', 'is-active app.service', 'stop app.service', 'restart app.service']);
      assert.equal(await readFile(join(systemd, 'app.service'), 'utf8'), 'active\n');
    });
  });

  describe('migrate-back (Fussy south-rollback)', function () {
    const release = async (name: string, migrations: string[], migrateTo = 'echo "$1 from $(basename "$(pwd)")" >> "$MIGRATION_LOG"'): Promise<string> =>
      pkg(name, [
        { path: '.fussy-migrations', content: migrations.map((m) => `${m}\n`).join('') },
        { path: 'bin/migrate-to', mode: 0o755, content: `#!/bin/sh\n${migrateTo}\n` },
        { path: '.pre-install', mode: 0o755, content: await helper('migrate-back') },
      ]);

    it('migrates back to the last common migration, from the old release, while it is still current', async function () {
      const log = join(tmp, `migrations-${n++}.log`);
      const env = { PATH: process.env.PATH, MIGRATION_LOG: log };
      const d = await deviceBeside(dev, `dev-mig-${n++}`, []);
      await installInto(d, await release('fw-3', ['0001', '0002', '0003']), { env });
      await installInto(d, await release('fw-2', ['0001', '0002']), { env }); // older: 0003 must be undone
      await installInto(d, await release('fw-4', ['0001', '0002', '0004']), { env }); // extends fw-2: nothing to undo
      await installInto(d, await release('fw-x', ['0009']), { env }); // nothing in common
      assert.equal(await readFile(log, 'utf8'), '0002 from fw-3\nzero from fw-4\n');
    });

    it('a failing migrate-to stops the install before the switch: the old release and its data stay', async function () {
      const env = { PATH: process.env.PATH, MIGRATION_LOG: join(tmp, 'unused.log') };
      const d = await deviceBeside(dev, `dev-mig-${n++}`, []);
      await installInto(d, await release('fw-new', ['0001', '0002'], 'echo "cannot migrate back" >&2; exit 1'), { env });
      await assert.rejects(installInto(d, await release('fw-old', ['0001']), { env }), { code: 'INSTALL_FAILED_RECOVERED' });
      assert.equal(await readlink(join(d.target, 'current')), 'fw-new');
    });
  });
});
