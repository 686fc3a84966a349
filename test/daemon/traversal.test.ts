import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { call, setup, startInProcess, useInProcess } from '../helpers/fussyd.js';
import { makeTmp } from '../helpers/tmp.js';

/** Every file below `dir` with its bytes (symlinks as "-> target"). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    out[p] = e.isSymbolicLink() ? `-> ${readlinkSync(p)}` : e.isFile() ? readFileSync(p, 'latin1') : 'dir';
  }
  return out;
}

/** Raw request targets (sent as they are) and the attack each is. */
const ATTACKS: Array<[string, string]> = [
  ['path-traversal-dotdot', '/v1/data/..'],
  ['path-traversal-dot', '/v1/data/.'],
  ['path-traversal-encoded-dotdot', '/v1/data/%2e%2e'],
  ['path-traversal-mixed-case-dotdot', '/v1/data/.%2E'],
  ['path-traversal-encoded-slashes', '/v1/data/..%2f..%2fetc%2fpasswd'],
  ['path-traversal-dotdot-then-route', '/v1/data/%2e%2e/%2e%2e/etc/passwd'],
  ['encoded-slash-in-name', '/v1/data/a%2fb'],
  ['encoded-backslash-in-name', '/v1/data/a%5cb'],
  ['nul-in-name', '/v1/data/a%00b'],
  ['leading-dot-name', '/v1/data/.secret'],
  ['non-ascii-lookalike-name', '/v1/data/d%D0%B0ta'],
  ['name-of-300-characters', `/v1/data/${'a'.repeat(300)}`],
  ['double-slash-empty-segment', '/v1/data//x'],
  ['absolute-form-target', 'https://127.0.0.1/v1/data/x'],
  ['bad-percent-encoding', '/v1/data/%zz'],
];

describe('fussyd: names that are not one plain path component are refused with 400 before any file is touched', function () {
  const c = useInProcess('fussyd-path-');
  const outside = { file: '' };

  before(function () {
    writeFileSync(join(c.s.dataDir, 'x'), 'inside\n');
    outside.file = join(c.s.dir, 'passwd');
    writeFileSync(outside.file, 'outside\n');
  });

  for (const [attack, target] of ATTACKS) {
    it(`${attack}: GET, PUT, DELETE and move of ${target.length > 40 ? `${target.slice(0, 40)}...` : target} are 400 and nothing changes`, async function () {
      const f = await tlsFixtures();
      const admin = f.clients['admin-cn'];
      const before = snapshot(c.s.dir);
      for (const [method, path, body, type] of [
        ['GET', target],
        ['PUT', target, 'planted\n', 'application/octet-stream'],
        ['PUT', `${target}?overwrite=1`, 'planted\n', 'application/octet-stream'],
        ['DELETE', target],
        ['POST', `${target}/move`, '{"to":"y","overwrite":true}', 'application/json'],
        ['POST', '/v1/data/x/move', `{"to":${JSON.stringify(decodeURIComponentSafe(target.startsWith('/v1/data/') ? target.slice('/v1/data/'.length) : target))},"overwrite":true}`, 'application/json'],
      ] as Array<[string, string, string?, string?]>) {
        const a = await call(c.port, admin, method, path, { body, type });
        assert.equal(a.status, 400, `${method} ${path} ${body ?? ''}: ${a.status} ${a.body.toString()}`);
        assert.match(a.json.error?.code ?? '', /^(BAD_REQUEST|BAD_NAME)$/);
      }
      assert.deepEqual(snapshot(c.s.dir), { ...before, ...pick(snapshot(c.s.dir), join(c.s.stateDir, 'audit.jsonl')) });
      assert.equal(readFileSync(outside.file, 'utf8'), 'outside\n');
    });
  }
});

describe('fussyd: a symlink planted in the data directory is never followed', function () {
  it('symlink-escape: GET, PUT (with and without overwrite), mv from and onto a planted symlink neither read nor change its target', async function () {
    const f = await tlsFixtures();
    const dir = await makeTmp('fussyd-link-');
    const s = await setup(dir);
    const { daemon, port } = await startInProcess(s);
    try {
      const secret = join(dir, 'shadow');
      writeFileSync(secret, 'secret\n');
      symlinkSync(secret, join(s.dataDir, 'link'));
      writeFileSync(join(s.dataDir, 'plain'), 'plain\n');
      const op = f.clients['operator-cn'];
      const get = await call(port, op, 'GET', '/v1/data/link');
      assert.equal(get.status, 409);
      assert.equal(get.json.error?.code, 'NOT_REGULAR_FILE');
      assert.ok(!get.body.toString().includes('secret'));
      const put = await call(port, op, 'PUT', '/v1/data/link', { body: 'evil\n' });
      assert.equal(put.json.error?.code, 'ALREADY_EXISTS');
      const over = await call(port, op, 'PUT', '/v1/data/link?overwrite=1', { body: 'evil\n' });
      assert.equal(over.json.error?.code, 'NOT_REGULAR_FILE');
      const mvFrom = await call(port, op, 'POST', '/v1/data/link/move', { body: '{"to":"stolen"}', type: 'application/json' });
      assert.equal(mvFrom.json.error?.code, 'NOT_REGULAR_FILE');
      const mvOnto = await call(port, op, 'POST', '/v1/data/plain/move', { body: '{"to":"link","overwrite":true}', type: 'application/json' });
      assert.equal(mvOnto.json.error?.code, 'NOT_REGULAR_FILE');
      const rm = await call(port, op, 'DELETE', '/v1/data/link');
      assert.equal(rm.json.error?.code, 'NOT_REGULAR_FILE');
      const ls = await call(port, op, 'GET', '/v1/data');
      assert.deepEqual((ls.json.files as Array<{ name: string }>).map((e) => e.name), ['plain']);
      assert.equal(readFileSync(secret, 'utf8'), 'secret\n');
      assert.ok(lstatSync(join(s.dataDir, 'link')).isSymbolicLink());
      assert.equal(readFileSync(join(s.dataDir, 'plain'), 'utf8'), 'plain\n');
      assert.deepEqual(readdirSync(s.dataDir).sort(), ['link', 'plain']);
    } finally {
      await daemon.close();
    }
  });
});

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch (err) {
    assert.ok(err instanceof URIError);
    return s;
  }
}

function pick(o: Record<string, string>, key: string): Record<string, string> {
  return key in o ? { [key]: o[key] as string } : {};
}
