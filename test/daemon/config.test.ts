import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { loadConfig, parseConfigText } from '../../src/daemon/config.js';
import { cli } from '../helpers/cli.js';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { call, setup, startChild, writeConfigFile } from '../helpers/fussyd.js';
import { makeTmp } from '../helpers/tmp.js';

describe('fussyd.conf: key = value lines, every key a flag, flags win', function () {
  it('flags win over the file: --listen given on the command line is where a real fussyd listens, and --roles replaces the file\'s', async function () {
    const f = await tlsFixtures();
    const s = await setup(await makeTmp('fussyd-conf-'));
    const file = writeConfigFile({ ...s, config: { ...s.config, listen: { host: '127.0.0.1', port: 1 } } });
    const roles = join(s.dir, 'other-roles.json');
    writeFileSync(roles, JSON.stringify({ viewer: ['stranger-cn'] }));
    const d = await startChild(['--config', file, '--listen', '127.0.0.1:0', '--roles', roles]);
    try {
      assert.notEqual(d.port, 1);
      assert.equal((await call(d.port, f.clients['stranger-cn'], 'GET', '/v1/data')).status, 200, 'the flag\'s roles file holds');
      assert.equal((await call(d.port, f.clients['viewer-cn'], 'GET', '/v1/data')).status, 403);
    } finally {
      await d.stop();
    }
  });

  it('unknown-config-key: fussyd exits 40 (CONFIG_INVALID) naming the file and the line', async function () {
    const s = await setup(await makeTmp('fussyd-conf-'));
    const file = writeConfigFile(s, ['max-conections = 10']);
    const r = await cli('fussyd', ['--config', file]);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:10: unknown key "max-conections"`));
  });

  it('bad-config-value: a size, a count, a listen address or a relative path that does not parse names file:line', async function () {
    const file = join(await makeTmp('fussyd-conf-'), 'fussyd.conf');
    for (const [line, what] of [
      ['max-data-bytes = lots', /is not a size/],
      ['max-connections = 0', /below the least allowed/],
      ['listen = 6808', /is not HOST:PORT/],
      ['state-dir = var/lib/fussy', /not an absolute path/],
      ['target', /is not "key = value"/],
    ] as Array<[string, RegExp]>) {
      writeFileSync(file, `# c\n${line}\n`);
      assert.throws(
        () => loadConfig({ file, flags: new Map() }),
        (err: unknown) => err instanceof FussyError && err.code === 'CONFIG_INVALID' && err.message.startsWith(`${file}:2: `) && what.test(err.message),
        line,
      );
    }
  });

  it('a key set twice names both lines; sizes and durations take units', function () {
    assert.throws(() => parseConfigText('roles = /a\nroles = /b\n', 'f.conf'), /f\.conf:2: "roles" is set twice \(first at f\.conf:1\)/);
    const flags = parseConfigText('max-data-bytes = 64M\nrequest-timeout = 2h\nlisten = [::1]:7000\n', 'f.conf');
    const c = loadConfig({ file: undefined, flags, exists: () => false });
    assert.equal(c.maxDataBytes, 64 * 1024 * 1024);
    assert.equal(c.requestTimeoutMs, 7_200_000);
    assert.deepEqual(c.listen, { host: '::1', port: 7000 });
  });

  it('a relative path given as a flag is taken from the working directory (the file must give absolute ones)', function () {
    const c = loadConfig({ flags: new Map([['state-dir', { value: 'state', where: '--state-dir' }]]), exists: () => false });
    assert.equal(c.stateDir, join(process.cwd(), 'state'));
  });

  it('a bad flag value is named by its flag', async function () {
    const r = await cli('fussyd', ['--config', '/nonexistent/fussyd.conf']);
    assert.equal(r.exitCode, 40);
    assert.match(r.stderr, /\/nonexistent\/fussyd\.conf does not exist/);
    assert.throws(() => loadConfig({ flags: new Map([['max-runs', { value: 'many', where: '--max-runs' }]]), exists: () => false }), /^FussyError: --max-runs: "many" is not a whole number/);
  });
});

describe('fussyd state dir: nobody but fussyd and root may own or write it', function () {
  for (const [name, prepare, problem] of [
    ['state-dir-owned-by-user', (dir: string) => chownSync(dir, 65534, 65534), /owned by/],
    ['state-dir-writable-by-others', (dir: string) => chmodSync(dir, 0o777), /writable/],
    ['state-dir-parent-owned-by-user', (dir: string) => chownSync(join(dir, '..'), 65534, 65534), /owned by/],
  ] as const) {
    it(`${name}: fussyd refuses to start (exit 40) naming the directory, and creates nothing in it`, async function () {
      if (process.getuid?.() !== 0) this.skip();
      const s = await setup(await makeTmp('fussyd-state-'));
      const stateDir = join(s.dir, 'srv', 'state');
      mkdirSync(stateDir, { recursive: true, mode: 0o750 });
      prepare(stateDir);
      const r = await cli('fussyd', ['--config', writeConfigFile({ ...s, config: { ...s.config, stateDir } })]);
      assert.equal(r.exitCode, 40, r.stderr);
      assert.match(r.stderr, /state directory/);
      assert.match(r.stderr, problem);
      assert.deepEqual(readdirSync(stateDir), []);
    });
  }
});
