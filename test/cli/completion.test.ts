import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cli } from '../helpers/cli.js';
import { useChild } from '../helpers/fussyd.js';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { makeTmp } from '../helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

/** What bash completes for `words` (the last one being completed), with the script of `fussy completion bash` sourced. */
async function complete(script: string, words: string[], env: Record<string, string> = {}): Promise<string[]> {
  const fn = `_${(words[0] as string).replaceAll('-', '_')}_complete`;
  const dir = await makeTmp('fussy-completion-');
  const file = join(dir, 'fussy.bash');
  writeFileSync(file, script);
  const quoted = words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(' ');
  const r = await execa('bash', ['-c', `source '${file}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`], { cwd: dir, env: { PATH: `${BIN}:${process.env.PATH ?? ''}`, ...env }, reject: false }); // an empty cwd: local files would be completed too
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

describe('fussy completion: bash and zsh, generated from the commands themselves', function () {
  let script: string;
  before(async function () {
    const r = await cli('fussy', ['completion', 'bash']);
    assert.equal(r.exitCode, 0, r.stderr);
    script = r.stdout;
  });

  it('is valid bash, and the zsh flavour loads it through bashcompinit; an unknown shell is refused', async function () {
    assert.equal((await execa('bash', ['-n'], { input: script, reject: false })).exitCode, 0);
    const zsh = await cli('fussy', ['completion', 'zsh']);
    assert.match(zsh.stdout, /^# zsh[^\n]*\nautoload -U \+X bashcompinit && bashcompinit\n# bash completion for fussy/);
    assert.equal((await cli('fussy', ['completion', 'fish'])).exitCode, 2, 'an unknown shell is a usage error');
  });

  it('completes commands, subcommands, options and their choices as --help lists them', async function () {
    assert.deepEqual(await complete(script, ['fussy', 're']), ['recover', 'remote']);
    assert.deepEqual(await complete(script, ['fussy', 'remote', 'cr']), ['cron']);
    assert.deepEqual(await complete(script, ['fussy', 'remote', 'cron', '']), ['add', 'disable', 'enable', 'ls', 'next', 'rm', 'run']);
    assert.deepEqual(await complete(script, ['fussy', 'remote', 'cron', 'add', '--ov']), ['--overlap']);
    assert.deepEqual(await complete(script, ['fussy', 'remote', 'cron', 'add', '--missed', '']), ['run-once', 'skip']);
    assert.deepEqual(await complete(script, ['fussy', 'install', '--allow-d']), ['--allow-downgrade']);
    assert.deepEqual(await complete(script, ['fussy', 'completion', '']), ['bash', 'zsh']);
    assert.deepEqual(await complete(script, ['fussy', 'remote', 'exec', 'x', '--', '']), [], 'after --: the script\'s own args');
  });

  it('completes the Fussy-compatible launchers and fussyd with their own options', async function () {
    assert.match(script, /^complete -o filenames -F _fussy_install_complete fussy-install$/m);
    assert.deepEqual(await complete(script, ['fussy-install', '--ke']), ['--keyring']);
    assert.deepEqual(await complete(script, ['fussy-pack', '--exc']), ['--exclude']);
    assert.deepEqual(await complete(script, ['fussy-link-tree', '--dry']), ['--dry-run']);
    assert.deepEqual(await complete(script, ['fussyd', '--sched']), ['--schedule-notify']);
    assert.deepEqual(await complete(script, ['fussyd', '--max-run']), ['--max-run-timeout', '--max-runs']);
  });

  it('completes the release names of the target for rollback --to and verify (not current, failsafe or .fussy)', async function () {
    const target = join(await makeTmp('fussy-completion-target-'), 'firmware');
    for (const d of ['rel-1', 'rel-2', 'failsafe', '.fussy']) mkdirSync(join(target, d), { recursive: true });
    symlinkSync('rel-2', join(target, 'current'));
    assert.deepEqual(await complete(script, ['fussy', 'rollback', '-t', target, '--to', '']), ['rel-1', 'rel-2']);
    assert.deepEqual(await complete(script, ['fussy', 'verify', '--target', target, 'rel-']), ['rel-1', 'rel-2']);
  });

  it('completion-injection: names read from the target are data, never shell words ("$(...)" in a release name runs nothing, and is not offered)', async function () {
    const base = await makeTmp('fussy-completion-evil-');
    const target = join(base, 'firmware');
    const marker = join(base, 'PWNED');
    for (const d of ['rel-1', `$(touch ${marker})`, 'rel 2', '`touch ${marker}`']) mkdirSync(join(target, d), { recursive: true });
    assert.deepEqual(await complete(script, ['fussy', 'rollback', '-t', target, '--to', '']), ['rel-1']);
    assert.deepEqual(await complete(script, ['fussy', 'verify', '-t', target, '']), ['rel-1']);
    assert.equal(existsSync(marker), false, 'nothing ran');
  });

  describe('with a device', function () {
    const c = useChild('fussy-completion-daemon-');
    it("completes the device's script names for remote exec, and its job names for cron run, with the remote options typed", async function () {
      const f = await tlsFixtures();
      writeFileSync(join(c.work, 'backup.sh'), '#!/bin/sh\n');
      writeFileSync(join(c.work, 'health.sh'), '#!/bin/sh\n');
      for (const s of ['backup.sh', 'health.sh']) assert.equal((await c.remote(f.clients['admin-cn'], ['put', s])).exitCode, 0);
      assert.equal((await c.remote(f.clients['admin-cn'], ['cron', 'add', 'nightly', '0 3 * * *', 'backup.sh'])).exitCode, 0);
      const remote = ['fussy', 'remote', '--host', '127.0.0.1', '--port', String(c.d.port), '--ca', f.ca, '--cert', f.clients['viewer-cn'].cert, '--key', f.clients['viewer-cn'].key];
      assert.deepEqual(await complete(script, [...remote, 'exec', 'h']), ['health.sh']);
      assert.deepEqual(await complete(script, [...remote, 'cron', 'run', '']), ['nightly']);
      // Typed as ~/...: bash leaves the tilde in COMP_WORDS; the completion expands it.
      const home = await makeTmp('fussy-completion-home-');
      mkdirSync(join(home, 'certs'));
      copyFileSync(f.clients['viewer-cn'].cert, join(home, 'certs', 'viewer.crt'));
      copyFileSync(f.clients['viewer-cn'].key, join(home, 'certs', 'viewer.key'));
      const tilde = ['fussy', 'remote', '--host', '127.0.0.1', '--port', String(c.d.port), '--ca', f.ca, '--cert', '~/certs/viewer.crt', '--key', '~/certs/viewer.key'];
      assert.deepEqual(await complete(script, [...tilde, 'exec', 'b'], { HOME: home }), ['backup.sh']);
    });
  });
});
