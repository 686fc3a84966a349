import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { EXIT_CODES, type ErrorCode } from '../../src/errors.js';
import { cli } from '../helpers/cli.js';
import { useTmp } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The exit statuses the README's "Exit codes" table documents (Fussy's codes: they never change). */
async function documentedStatuses(): Promise<Set<number>> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Exit codes'), readme.indexOf('\n## ', readme.indexOf('## Exit codes') + 1));
  return new Set([...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])));
}

/** code -> exit status, as docs/security.md's "Refusals" table lists them. */
async function refusalsTable(): Promise<Map<string, number>> {
  const doc = await readFile(join(ROOT, 'docs/security.md'), 'utf8');
  const start = doc.indexOf('## Refusals');
  const section = doc.slice(start, doc.indexOf('\n#', start + 1));
  const table = new Map<string, number>();
  for (const m of section.matchAll(/^\| (\d+) \| ([^|]+) \|/gm)) {
    for (const c of (m[2] as string).matchAll(/`([A-Z_]+)`/g)) table.set(c[1] as string, Number(m[1]));
  }
  return table;
}

interface JsonError {
  ok: boolean;
  error: { code: string; exitCode: number; message: string };
}

describe('error codes: fine enough for programs that read --json, on the spec\'s exit statuses (issue 11)', function () {
  const tmp = useTmp();

  it('every code exits with a status the README documents: the spec\'s 0..4, 20, 21, 40, 75, 124, 130 and 1, and fussy remote\'s 69 and 77 (docs/daemon.md)', async function () {
    const spec = new Set([0, 1, 2, 3, 4, 20, 21, 40, 69, 75, 77, 124, 130]);
    const documented = await documentedStatuses();
    assert.deepEqual([...documented].sort((a, b) => a - b), [...spec].sort((a, b) => a - b));
    for (const [code, exit] of Object.entries(EXIT_CODES)) assert.ok(spec.has(exit), `${code} exits ${exit}`);
  });

  it('docs/security.md\'s Refusals table lists every code with its exit status', async function () {
    const table = await refusalsTable();
    for (const [code, exit] of Object.entries(EXIT_CODES)) assert.equal(table.get(code), exit, `${code} in docs/security.md "Refusals"`);
    for (const code of table.keys()) assert.ok(code in EXIT_CODES, `docs/security.md lists ${code}, which src/errors.ts does not have`);
  });

  it('fussy --json prints the code and its exit status, and exits with that status', async function () {
    const t = join(tmp.dir, 'target');
    const keys = join(tmp.dir, 'keys');
    const pkg = join(tmp.dir, 'fw.tar.gz.gpg');
    await mkdir(t);
    await mkdir(keys, { mode: 0o755 });
    await writeFile(pkg, 'not a package');
    const cases: Array<[string[], ErrorCode]> = [
      [['rollback', '-t', join(tmp.dir, 'nope')], 'TARGET_MISSING'],
      [['rollback', '-t', t], 'NOTHING_TO_ROLL_BACK'],
      [['verify', '-t', t], 'RELEASE_NOT_FOUND'],
      [['install', join(tmp.dir, 'missing.gpg'), '-k', keys, '-t', t], 'PACKAGE_UNREADABLE'],
      [['install', pkg, '-k', join(tmp.dir, 'no-keys'), '-t', t], 'KEYRING_MISSING'],
      [['install', pkg, '-k', keys, '-t', t], 'KEYRING_EMPTY'],
    ];
    for (const [args, code] of cases) {
      const r = await cli('fussy', [...args, '--json']);
      const out = JSON.parse(r.stdout) as JsonError;
      assert.equal(out.ok, false, r.stdout);
      assert.equal(out.error.code, code, r.stdout);
      assert.equal(out.error.exitCode, EXIT_CODES[code], r.stdout);
      assert.equal(r.exitCode, EXIT_CODES[code], `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
