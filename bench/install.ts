/**
 * bench/install: fussy install against Fussy's own pipeline on the same make-firmware trees, in
 * one run: `gpg -d PKG | tar xz -C tmp && rsync -a [--link-dest=previous] tmp/REL/ target/REL/`.
 * Fresh install of a 300 MB tree, then an update made with `make-firmware --from --change 5`.
 * Disk use is measured with du over the target. Prints a markdown table.
 *
 *   npm run bench:install -- [--mb 300] [--files 3000] [--big-mb 1000] [--repeat 3] [--work DIR]
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import type { FirmwareOptions } from './make-firmware.js';
import { benchOptions, buildKeyHome, firmwareTree, freshGnupgHome, fussyBin, measure, median, runBench, type Measured } from './measure.js';

// Five rounds: single runs on the bench VM drift by up to 2x, and the targets are ratios near 0.5.
const { mb, files, bigMb, repeat, work } = benchOptions({ repeat: 5 });
const fussy = fussyBin;
const sh = async (cmd: string, env?: Record<string, string>) => execa('sh', ['-c', cmd], { env, cwd: work });

const tree = (name: string, o: FirmwareOptions): Promise<string> => firmwareTree(work, name, o);

async function keys(): Promise<{ home: string; keyring: string; gnupgKeyring: string; device: string }> {
  const home = join(work, 'gnupg-install');
  const keyring = join(work, 'keyring-install');
  const gpg = await buildKeyHome(home, keyring);
  await gpg(['--quick-gen-key', 'Bench Device <device@bench.example>', 'ed25519', 'sign', 'never']);
  const fpr = String((await execa('gpg', ['--homedir', home, '--with-colons', '--list-keys', 'device@bench.example'])).stdout).split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] as string;
  await gpg(['--quick-add-key', fpr, 'cv25519', 'encr', 'never']);
  await writeFile(join(keyring, 'device.key'), (await gpg(['--export-secret-keys', 'device@bench.example'])).stdout);
  await writeFile(join(work, 'bench-build.key'), (await gpg(['--export-secret-keys', 'build@bench.example'])).stdout);
  // The device keyring as every old Fussy device has it: a GnuPG home (pubring.kbx and the
  // device key in private-keys-v1.d) with the build key's public half imported.
  const gnupgKeyring = join(work, 'keyring-gnupg-install');
  await freshGnupgHome(gnupgKeyring);
  const device = (args: string[], input: Uint8Array) => execa('gpg', ['--homedir', gnupgKeyring, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { input, env: { GNUPGHOME: gnupgKeyring } });
  await device(['--import'], (await gpg(['--export-secret-keys', 'device@bench.example'])).stdout);
  await device(['--import'], (await gpg(['--export', 'build@bench.example'])).stdout);
  return { home, keyring, gnupgKeyring, device: fpr };
}

interface Row {
  what: string;
  m: Measured;
  duMb?: number;
  ref?: Row;
}

async function du(dir: string): Promise<number> {
  return Number(String((await sh(`du -sk ${dir}`)).stdout).split('\t')[0]) / 1024;
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const base = await tree(`firmware-${mb}mb`, { mb: Number(mb), files: Number(files), seed: 1 });
  const next = await tree(`firmware-${mb}mb-next`, { from: base, change: 5, seed: 2 });
  const k = await keys();
  const env = { ...process.env, GNUPGHOME: k.home } as Record<string, string>;
  const pk = join(work, 'install-pkgs');
  await mkdir(pk, { recursive: true });
  const pkg = async (t: string, tag: string, enc: boolean) => {
    const out = join(pk, `${basename(t)}.${tag}.gpg`);
    if (tag.startsWith('ref')) await sh(`tar czf - -C ${dirname(t)} ${basename(t)} | gpg --batch --sign ${enc ? `-e -r ${k.device}` : ''} -u build@bench.example > ${out}`, env);
    else await sh(`${fussy} pack ${t} --signing-key ${join(work, 'bench-build.key')} ${enc ? `-e ${k.device}` : ''} -o ${out} -q`, env);
    return out;
  };
  const refBase = await pkg(base, 'ref', false);
  const refNext = await pkg(next, 'ref', false);
  const refEncBase = await pkg(base, 'ref-e', true);
  const refEncNext = await pkg(next, 'ref-e', true);
  const ownBase = await pkg(base, 'fussy', false);
  const ownNext = await pkg(next, 'fussy', false);
  const encBase = await pkg(base, 'fussy-e', true);
  const encNext = await pkg(next, 'fussy-e', true);

  const T = join(work, 'install-target');
  const tmp = join(work, 'install-tmp');
  interface Variant {
    what: string;
    prepare: () => Promise<void>;
    cmd: string;
    ref?: string;
    runs: Measured[];
    duMb?: number;
  }
  const fresh = async () => {
    await rm(T, { recursive: true, force: true });
    await rm(tmp, { recursive: true, force: true });
    await mkdir(T, { recursive: true });
    await mkdir(tmp, { recursive: true });
  };
  const pipeline = (p: string, rel: string, linkDest?: string) =>
    `gpg --batch -d ${p} 2>/dev/null | tar xzf - -C ${tmp} && rsync -a ${linkDest !== undefined ? `--link-dest=${linkDest}` : ''} ${tmp}/${rel}/ ${T}/${rel}/ && rm -rf ${tmp}/${rel}`;
  const fi = (p: string, keyring = k.keyring) => `${fussy} install ${p} -k ${keyring} -t ${T} -q`;
  const withBase = (how: 'ref' | 'ref-e' | 'fussy' | 'fussy-e') => async () => {
    await fresh();
    if (how === 'ref' || how === 'ref-e') await sh(pipeline(how === 'ref' ? refBase : refEncBase, basename(base)), env);
    else await sh(fi(how === 'fussy' ? ownBase : encBase), env);
  };
  const FRESH = 'pipeline: fresh install';
  const UPDATE = 'pipeline: update (--link-dest)';
  // Encrypted packages against the pipeline on its own encrypted package (`gpg --sign -e`): gpg
  // decrypts too, so that is the like-for-like reference.
  const FRESH_E = 'pipeline, -e package: fresh install';
  const UPDATE_E = 'pipeline, -e package: update (--link-dest)';
  const variants: Variant[] = [
    { what: FRESH, prepare: fresh, cmd: pipeline(refBase, basename(base)), runs: [] },
    { what: UPDATE, prepare: withBase('ref'), cmd: pipeline(refNext, basename(next), `${T}/${basename(base)}`), runs: [] },
    { what: FRESH_E, prepare: fresh, cmd: pipeline(refEncBase, basename(base)), runs: [] },
    { what: UPDATE_E, prepare: withBase('ref-e'), cmd: pipeline(refEncNext, basename(next), `${T}/${basename(base)}`), runs: [] },
    { what: 'fussy install: fresh', prepare: fresh, cmd: fi(ownBase), ref: FRESH, runs: [] },
    { what: 'fussy install: update', prepare: withBase('fussy'), cmd: fi(ownNext), ref: UPDATE, runs: [] },
    { what: 'fussy install, GnuPG-home keyring: update', prepare: withBase('fussy'), cmd: fi(ownNext, k.gnupgKeyring), ref: UPDATE, runs: [] },
    { what: 'fussy install -e package: fresh', prepare: fresh, cmd: fi(encBase), ref: FRESH_E, runs: [] },
    { what: 'fussy install -e package: update', prepare: withBase('fussy-e'), cmd: fi(encNext), ref: UPDATE_E, runs: [] },
    { what: "fussy install of the pipeline's package: fresh", prepare: fresh, cmd: fi(refBase), ref: FRESH, runs: [] },
    { what: "fussy install of the pipeline's -e package: fresh", prepare: fresh, cmd: fi(refEncBase), ref: FRESH_E, runs: [] },
  ];
  if (Number(bigMb) > 0) {
    const big = await tree(`firmware-${bigMb}mb`, { mb: Number(bigMb), files: Number(files), seed: 1 });
    const bigPkg = await pkg(big, 'fussy', false);
    const bigEncPkg = await pkg(big, 'fussy-e', true);
    variants.push({ what: `fussy install: fresh, ${bigMb} MB tree (RSS flatness)`, prepare: fresh, cmd: fi(bigPkg), runs: [] });
    variants.push({ what: `fussy install -e package: fresh, ${bigMb} MB tree (RSS flatness)`, prepare: fresh, cmd: fi(bigEncPkg), runs: [] });
  }
  // Rounds, not blocks: every variant runs once per round, so drift of the machine (page cache,
  // the file system's allocator after large deletes, neighbours) hits all of them alike.
  for (let round = 0; round < repeat; round++) {
    for (const v of variants) {
      await v.prepare();
      await sh('sync');
      const before = await du(T);
      v.runs.push(await measure(v.cmd, { cwd: work, env }));
      v.duMb = (await du(T)) - before;
      const m = v.runs[v.runs.length - 1] as Measured;
      process.stderr.write(`round ${round + 1}: ${v.what}: ${m.seconds.toFixed(2)} s, ${m.rssMb.toFixed(0)} MB RSS, +${v.duMb.toFixed(1)} MB disk\n`);
    }
  }
  const rows: Row[] = [];
  const byName = new Map<string, Row>();
  for (const v of variants) {
    const row: Row = { what: v.what, m: { seconds: median(v.runs.map((r) => r.seconds)), rssMb: Math.max(...v.runs.map((r) => r.rssMb)) }, duMb: v.duMb, ref: v.ref === undefined ? undefined : byName.get(v.ref) };
    byName.set(v.what, row);
    rows.push(row);
  }
  await rm(T, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });

  const lines = [
    '| run | wall s | vs pipeline | disk added MB | peak RSS MB |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.m.seconds.toFixed(2)} | ${r.ref !== undefined ? `${(r.m.seconds / r.ref.m.seconds).toFixed(2)}x` : ''} | ${r.duMb !== undefined ? r.duMb.toFixed(1) : ''} | ${r.m.rssMb.toFixed(0)} |`),
  ];
  const table = lines.join('\n') + '\n';
  await writeFile(join(work, 'install-results.md'), table);
  process.stdout.write(`\nmedian of ${repeat} runs, ${new Date().toISOString()}\n\n${table}`);
}

await runBench(main);
