/**
 * Makes dist/bundle/cli.cjs.cache, V8's code cache for the CLI bundle (src/cli/launch.ts): runs
 * the commands a build server and a device run (keygen, pack full, encrypted and delta, install of
 * each, status, verify, history) on a small firmware in a temporary directory, in this one
 * process, then records every function they compiled. Any command failing fails the build: the
 * CLI it would ship is broken. Run by scripts/bundle.mjs; the packages carry the cache as made
 * here (docs/performance.md, "Start-up").
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import launcher from '../dist/bundle/launch.cjs';

const { CLI_BUNDLE, loadCli } = launcher;

const cli = loadCli();
const { main, processIo } = cli.exports;
const dir = mkdtempSync(join(tmpdir(), 'fussy-train-'));
const at = (p) => join(dir, p);
const tree = (name, files) => {
  for (const [path, content, mode] of files) {
    mkdirSync(dirname(at(`build/${name}/${path}`)), { recursive: true });
    writeFileSync(at(`build/${name}/${path}`), content);
    if (mode !== undefined) chmodSync(at(`build/${name}/${path}`), mode);
  }
  return at(`build/${name}`);
};
const run = async (...argv) => {
  let said = '';
  const sink = new Writable({ write: (chunk, _enc, done) => { said += String(chunk); done(); } });
  const status = await main('fussy', argv, { ...processIo(), stdout: sink, stderr: sink, cwd: dir });
  if (status !== 0) throw new Error(`training run: fussy ${argv.join(' ')} exited ${status}:\n${said}`);
};

try {
  const image = randomBytes(2 << 20);
  // A hook for the hook runner, unless the temporary directory cannot run programs (a noexec
  // /tmp: then the hook runner is compiled when first used, and the build still works).
  writeFileSync(at('probe'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const canExec = spawnSync(at('probe')).status === 0;
  const hook = canExec ? ['.post-install', '#!/bin/sh\nexit 0\n', 0o755] : ['etc/no-hook', '\n'];
  const one = tree('train-1', [['etc/version', '1\n'], ['lib/image.bin', image], hook]);
  const two = tree('train-2', [['etc/version', '2\n'], ['lib/image.bin', image], ['etc/added', 'x\n'], hook]);
  image.fill(7, 1 << 20, (1 << 20) + 10_000);
  const three = tree('train-3', [['etc/version', '3\n'], ['lib/image.bin', image], ['etc/added', 'x\n'], hook]);
  await run('keygen', 'signing', '--name', 'fussy training', '--no-passphrase', '--secret-key', at('signing.key'), '--public-key', at('signing.pub.asc'), '-k', at('keys'), '-q');
  await run('keygen', 'device', '--name', 'fussy training device', '--email', 'device@training.invalid', '--keyring', at('keys'), '--public-key', at('device.pub.asc'), '-q');
  await run('pack', one, '--signing-key', at('signing.key'), '-o', at('one.tar.gz.gpg'), '-q');
  await run('pack', two, '--signing-key', at('signing.key'), '--recipient-key', at('device.pub.asc'), '-e', 'device@training.invalid', '-o', at('two.tar.gz.gpg'), '-q');
  await run('pack', three, '--signing-key', at('signing.key'), '--delta-from', two, '-o', at('three.tar.gz.gpg'), '-q');
  mkdirSync(at('target'));
  for (const p of ['one', 'two', 'three']) await run('install', at(`${p}.tar.gz.gpg`), '-k', at('keys'), '-t', at('target'), '-q');
  await run('status', '-t', at('target'), '--json');
  await run('verify', '-t', at('target'), '-q');
  await run('history', '-t', at('target'), '--json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const out = `${CLI_BUNDLE}.cache`;
writeFileSync(`${out}.tmp`, cli.record());
renameSync(`${out}.tmp`, out);
