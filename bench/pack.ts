/**
 * bench/pack: fussy pack against Fussy's own pipeline (`tar czf - DIR | gpg --sign [-e]`) on the
 * same make-firmware tree, the same key, in the same run. Prints a markdown table of ratios.
 *
 *   npm run bench -- [--mb 300] [--files 3000] [--big-mb 1000] [--repeat 3] [--work DIR]
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { benchOptions, firmwareTree, freshGnupgHome, fussyBin, measure, median, runBench, type Measured } from './measure.js';

const { mb, files, bigMb, repeat, work } = benchOptions();
const fussy = fussyBin;
const tree = (name: string, treeMb: number, treeFiles: number): Promise<string> => firmwareTree(work, name, { mb: treeMb, files: treeFiles, seed: 1 });

async function setupKeys(): Promise<{ home: string; fpr: string; secretKey: string }> {
  const home = join(work, 'gnupg');
  await freshGnupgHome(home);
  const gpg = (args: string[]) => execa('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args]);
  await gpg(['--quick-gen-key', 'Bench <bench@example.com>', 'ed25519', 'sign', 'never']);
  const colons = String((await gpg(['--with-colons', '--list-keys', 'bench@example.com'])).stdout);
  const fpr = colons.split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] as string;
  await gpg(['--quick-add-key', fpr, 'cv25519', 'encr', 'never']);
  const secretKey = join(work, 'bench.key');
  await writeFile(secretKey, (await execa('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--export-secret-keys', fpr], { encoding: 'buffer', stripFinalNewline: false })).stdout);
  return { home, fpr, secretKey };
}

interface Row {
  tree: string;
  what: string;
  m: Measured;
  bytes: number;
  /** The reference row this one is compared with. */
  ref?: Row;
}

async function run(label: string, treeDir: string, cmd: string, out: string, env: Record<string, string>): Promise<Row> {
  const runs: Measured[] = [];
  for (let i = 0; i < repeat; i++) {
    await rm(out, { force: true });
    runs.push(await measure(cmd, { cwd: dirname(treeDir), env }));
  }
  const m = { seconds: median(runs.map((r) => r.seconds)), rssMb: Math.max(...runs.map((r) => r.rssMb)) };
  const row = { tree: basename(treeDir), what: label, m, bytes: (await stat(out)).size };
  process.stderr.write(`${row.tree} ${label}: ${m.seconds.toFixed(2)} s, ${m.rssMb.toFixed(0)} MB RSS, ${(row.bytes / 1e6).toFixed(1)} MB\n`);
  return row;
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const keys = await setupKeys();
  const env = { ...process.env, GNUPGHOME: keys.home } as Record<string, string>;
  const pkgs = join(work, 'pkgs');
  await mkdir(pkgs, { recursive: true });
  const rows: Row[] = [];
  const small = await tree(`firmware-${mb}mb`, Number(mb), Number(files));
  const trees = [small];
  // Same file count, more bytes: isolates memory growth with firmware size from per-file metadata.
  if (Number(bigMb) > 0) trees.push(await tree(`firmware-${bigMb}mb`, Number(bigMb), Number(files)));
  for (const t of trees) {
    const name = basename(t);
    const ref = join(pkgs, `${name}.ref.gpg`);
    const refE = join(pkgs, `${name}.ref-e.gpg`);
    const own = join(pkgs, `${name}.tar.gz.gpg`);
    const ownE = join(pkgs, `enc/${name}.tar.gz.gpg`);
    await mkdir(dirname(ownE), { recursive: true });
    if (t === small) {
      const sign = await run('tar czf - \\| gpg --sign', t, `tar czf - ${name} | gpg --batch --sign -u ${keys.fpr} > ${ref}`, ref, env);
      rows.push(sign, { ...(await run('fussy pack', t, `${fussy} pack ${name} --signing-key ${keys.secretKey} -o ${own} -q`, own, env)), ref: sign });
      const enc = await run('tar czf - \\| gpg -se', t, `tar czf - ${name} | gpg --batch -se -u ${keys.fpr} -r ${keys.fpr} > ${refE}`, refE, env);
      rows.push(enc, { ...(await run('fussy pack -e', t, `${fussy} pack ${name} --signing-key ${keys.secretKey} -e ${keys.fpr} -o ${ownE} -q`, ownE, env)), ref: enc });
    } else {
      rows.push(await run('fussy pack', t, `${fussy} pack ${name} --signing-key ${keys.secretKey} -o ${own} -q`, own, env));
      rows.push(await run('fussy pack -e', t, `${fussy} pack ${name} --signing-key ${keys.secretKey} -e ${keys.fpr} -o ${ownE} -q`, ownE, env));
    }
  }
  const lines = [
    `| tree | command | wall s | vs pipeline | package MB | vs pipeline | peak RSS MB |`,
    `|---|---|---|---|---|---|---|`,
    ...rows.map((r) => {
      const ref = r.ref;
      const t = ref !== undefined ? `${(r.m.seconds / ref.m.seconds).toFixed(2)}x` : '';
      const b = ref !== undefined ? `${((r.bytes / ref.bytes - 1) * 100).toFixed(1)}%` : '';
      return `| ${r.tree} | ${r.what} | ${r.m.seconds.toFixed(2)} | ${t} | ${(r.bytes / 1e6).toFixed(1)} | ${b} | ${r.m.rssMb.toFixed(0)} |`;
    }),
  ];
  const table = lines.join('\n') + '\n';
  await writeFile(join(work, 'pack-results.md'), table);
  process.stdout.write(`\nmedian of ${repeat} runs, ${new Date().toISOString()}\n\n${table}`);
}

await runBench(main);
