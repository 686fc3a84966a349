import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { CONFIG_KEYS } from '../../src/daemon/config.js';
import { EXIT_STATUSES } from '../../src/cli/exit-statuses.js';
import { fussydProgram } from '../../src/cli/fussyd.js';
import { processIo } from '../../src/cli/io.js';
import { manPages } from '../../src/cli/man-pages.js';
import { allCommands, commandDoc } from '../../src/cli/manual.js';
import { buildProgram } from '../../src/cli/program.js';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** A page as man shows it (groff, 200 columns, no hyphenation or adjusting worth a mismatch), and groff's warnings. */
async function render(text: string): Promise<{ out: string; warnings: string }> {
  const r = await execa('groff', ['-man', '-Tutf8', '-ww', '-rLL=200n', '-P-cbou'], { input: text, reject: false, env: { LC_ALL: 'C.UTF-8' } });
  assert.equal(r.exitCode, 0, r.stderr);
  return { out: r.stdout.replaceAll('\u2010', '-').replaceAll('\u2212', '-'), warnings: r.stderr };
}

describe('man pages: generated from the commands, so none can drift from --help', function () {
  const pages = new Map(manPages('2026-12-03').map((p) => [p.file, p.text]));

  it('fussy(1), fussyd(8), fussyd.conf(5) and the four Fussy-compatible launchers, each rendered by groff without a warning', async function () {
    assert.deepEqual([...pages.keys()].sort(), ['fussy-clean.1', 'fussy-install.1', 'fussy-link-tree.1', 'fussy-pack.1', 'fussy.1', 'fussyd.8', 'fussyd.conf.5']);
    for (const [file, text] of pages) assert.equal((await render(text)).warnings, '', file);
  });

  it('fussy(1) has every command of fussy --help with its usage and every option, and the exit statuses', async function () {
    const { out } = await render(pages.get('fussy.1') ?? '');
    const tree = commandDoc(buildProgram(processIo(), () => undefined));
    for (const c of allCommands(tree).slice(1)) {
      assert.ok(out.includes(c.usage), `the usage of ${c.path.join(' ')}`);
      for (const o of c.options) assert.ok(out.includes(o.flags), `${o.flags} of ${c.path.join(' ')}`);
    }
    assert.ok(allCommands(tree).some((c) => c.path.join(' ') === 'fussy remote cron add'), 'the nested commands too');
    for (const [code] of EXIT_STATUSES) assert.match(out, new RegExp(`^ {7}${code} +\\S`, 'm'));
  });

  it('fussyd(8) has every option, fussyd.conf(5) every key, from the one table of both', async function () {
    const daemon = (await render(pages.get('fussyd.8') ?? '')).out;
    for (const o of commandDoc(fussydProgram(processIo())).options) assert.ok(daemon.includes(o.flags), o.flags);
    const conf = (await render(pages.get('fussyd.conf.5') ?? '')).out;
    for (const [name, key] of Object.entries(CONFIG_KEYS)) assert.match(conf, new RegExp(`^ {7}${name}\\b[\\s\\S]{0,20}${key.help.slice(0, 12).replace(/[()[\].*+?^$|\\]/g, '\\$&')}`, 'm'), name);
  });

  it("the README's exit code table says what the man pages say", function () {
    const table = readFileSync(README, 'utf8').split('## Exit codes')[1]?.split('\n## ')[0] ?? '';
    const rows = [...table.matchAll(/^\| (\d+) \| (.*) \|$/gm)].map((m) => [Number(m[1]), m[2]]);
    assert.deepEqual(rows, EXIT_STATUSES.map(([c, t]) => [c, t]));
  });
});
