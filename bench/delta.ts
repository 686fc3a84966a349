/**
 * bench/delta: delta packages (docs/format.md, "Delta packages") on make-firmware trees, in one
 * run. Two cases:
 * - a 300 MB release and its next (`--from --change 5`: 5 % of files rewritten, some removed,
 *   some added): the delta against the base package;
 * - one 100 MB file (incompressible) with 1 % changed in place (ten 100 KiB regions): the delta
 *   against the base's release directory (the file carried as a patch of its changed chunks).
 * For each: the full package's size, the delta's, and the reference the issue names, the
 * changed bytes compressed (`tar czf` of the files whose content no base has, or of the changed
 * regions) plus the delta's manifest; and the install of the update on a device that has the
 * base: the delta, the full package with fussy, and the original pipeline
 * (`gpg -d | tar xz && rsync -a --link-dest`). Median of --repeat runs.
 * For the single file, the same rounds also measure what any installer of it pays here, whatever
 * its package: node's start (`node -e 0`), the new file's 100 MB written and synced (`cp` of the
 * base's file and `sync -f`), and one core's SHA-256 of it in node, printed below the table.
 *
 *   npm run bench:delta -- [--mb 300] [--files 3000] [--repeat 3] [--work DIR]
 */
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { benchOptions, buildKeyHome, firmwareTree, fussyBin, measure, median, runBench } from './measure.js';

const { mb, files, repeat, work } = benchOptions({ repeat: 3 });
const sh = async (cmd: string, env?: Record<string, string>) => execa('sh', ['-c', cmd], { env, cwd: work, maxBuffer: 1 << 30 });

/** Deterministic incompressible bytes (AES-CTR of zeros). */
const noise = (seed: number, n: number): Buffer => createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

const REGION = 100 * 1024;

/** The single-file case: release a (100 MB), release b (ten regions of 100 KiB rewritten in place). */
function bigFileTrees(): { a: string; b: string; changed: Buffer } {
  const a = join(work, 'trees', 'bigfile-a', 'image-1');
  const b = join(work, 'trees', 'bigfile-b', 'image-2');
  const size = 100 * 1024 * 1024;
  const parts: Buffer[] = [];
  for (const [dir, edit] of [[a, false], [b, true]] as const) {
    mkdirSync(join(dir, 'data'), { recursive: true });
    const fd = openSync(join(dir, 'data', 'image.bin'), 'w');
    const step = 4 * 1024 * 1024;
    for (let off = 0; off < size; off += step) {
      const block = noise(1 + off / step, step);
      if (edit) {
        for (let r = 0; r < 10; r++) {
          const at = Math.floor((size / 10) * r + 123_457);
          if (at >= off && at + REGION <= off + step) {
            const fresh = noise(200 + r, REGION);
            fresh.copy(block, at - off);
            parts.push(fresh);
          }
        }
      }
      writeSync(fd, block);
    }
    closeSync(fd);
    writeFileSync(join(dir, 'version'), edit ? '2\n' : '1\n');
  }
  return { a, b, changed: Buffer.concat(parts) };
}

async function keys(): Promise<{ home: string; keyring: string; signing: string }> {
  const home = join(work, 'gnupg-delta');
  const keyring = join(work, 'keyring-delta');
  const gpg = await buildKeyHome(home, keyring);
  const signing = join(work, 'bench-delta-build.key');
  await writeFile(signing, (await gpg(['--export-secret-keys', 'build@bench.example'])).stdout);
  return { home, keyring, signing };
}

interface Case {
  name: string;
  base: string;
  next: string;
  /** What --delta-from gets: the base package, or the base directory. */
  deltaFrom: 'package' | 'directory';
  /** The changed bytes, compressed: the reference size. */
  changedGz: number;
  /** The one large file (path under the release): its floors are measured with the rounds. */
  floorFile?: string;
}

/** One core's SHA-256 of `file` in node, seconds (the node's own start not counted). */
async function sha256Seconds(file: string, env: Record<string, string>): Promise<number> {
  const script = "const{createHash}=require('node:crypto'),{readFileSync}=require('node:fs');const b=readFileSync(process.argv[1]);const t=process.hrtime.bigint();createHash('sha256').update(b).digest();console.log(Number(process.hrtime.bigint()-t)/1e9)";
  return Number((await execa(process.execPath, ['-e', script, file], { env })).stdout);
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const k = await keys();
  const env = { ...process.env, GNUPGHOME: k.home } as Record<string, string>;
  const pk = join(work, 'delta-pkgs');
  await rm(pk, { recursive: true, force: true });
  await mkdir(pk, { recursive: true });
  const base = await firmwareTree(work, `firmware-${mb}mb`, { mb: Number(mb), files: Number(files), seed: 1 });
  const next = await firmwareTree(work, `firmware-${mb}mb-next`, { from: base, change: 5, seed: 2 });
  // The changed files: those of next whose content base does not have, as one tar.gz.
  const shas = async (t: string) => new Map(String((await sh(`cd ${t} && find . -type f -print0 | xargs -0 sha256sum`)).stdout).split('\n').filter(Boolean).map((l) => [l.slice(66), l.slice(0, 64)] as const));
  const have = new Set((await shas(base)).values());
  const changedList = [...(await shas(next))].filter(([, s]) => !have.has(s)).map(([p]) => p);
  writeFileSync(join(pk, 'changed.list'), changedList.join('\n') + '\n');
  await sh(`tar czf ${pk}/changed.tar.gz -C ${next} -T ${pk}/changed.list`);
  const big = bigFileTrees();
  writeFileSync(join(pk, 'big-changed.bin'), big.changed);
  await sh(`gzip -c ${pk}/big-changed.bin > ${pk}/big-changed.bin.gz`);
  const cases: Case[] = [
    { name: `${mb} MB, 5 % of files changed`, base, next, deltaFrom: 'package', changedGz: statSync(join(pk, 'changed.tar.gz')).size },
    { name: '100 MB file, 1 % changed in place', base: big.a, next: big.b, deltaFrom: 'directory', changedGz: statSync(join(pk, 'big-changed.bin.gz')).size, floorFile: 'data/image.bin' },
  ];

  const T = join(work, 'delta-target');
  const tmp = join(work, 'delta-tmp');
  const floors: string[] = [];
  const lines = ['| case | full package MB | delta MB | changed bytes gz + manifest MB | delta / reference | install: delta s | install: full s | pipeline update s | delta / pipeline | delta / full |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const c of cases) {
    const tag = basename(c.next);
    const full = join(pk, `${tag}.full.gpg`);
    const delta = join(pk, `${tag}.delta.gpg`);
    const basePkg = join(pk, `${basename(c.base)}.gpg`);
    const refBase = join(pk, `${basename(c.base)}.ref.gpg`);
    const refNext = join(pk, `${tag}.ref.gpg`);
    await sh(`${fussyBin} pack ${c.base} --signing-key ${k.signing} -o ${basePkg} -q`, env);
    await sh(`${fussyBin} pack ${c.next} --signing-key ${k.signing} -o ${full} -q`, env);
    await sh(`${fussyBin} pack ${c.next} --signing-key ${k.signing} -o ${delta} -q --delta-from ${c.deltaFrom === 'package' ? basePkg : c.base}`, env);
    for (const [t, out] of [[c.base, refBase], [c.next, refNext]] as const) await sh(`tar czf - -C ${dirname(t)} ${basename(t)} | gpg --batch --sign -u build@bench.example > ${out}`, env);
    const manifest = String((await sh(`gpg --batch --quiet -d ${delta} 2>/dev/null | tar xzOf - ${tag}/.fussy-manifest.json | wc -c`, env)).stdout).trim();
    const reference = c.changedGz + Number(manifest);
    const withBase = async (how: 'fussy' | 'ref') => {
      await rm(T, { recursive: true, force: true });
      await rm(tmp, { recursive: true, force: true });
      await mkdir(T, { recursive: true });
      await mkdir(tmp, { recursive: true });
      if (how === 'fussy') await sh(`${fussyBin} install ${basePkg} -k ${k.keyring} -t ${T} -q`, env);
      else await sh(`gpg --batch -d ${refBase} 2>/dev/null | tar xzf - -C ${tmp} && rsync -a ${tmp}/${basename(c.base)}/ ${T}/${basename(c.base)}/ && rm -rf ${tmp}/${basename(c.base)}`, env);
      await sh('sync');
    };
    const runs: Record<'delta' | 'full' | 'ref' | 'node' | 'write' | 'sha', number[]> = { delta: [], full: [], ref: [], node: [], write: [], sha: [] };
    for (let round = 0; round < repeat; round++) {
      await withBase('fussy');
      runs.delta.push((await measure(`${fussyBin} install ${delta} -k ${k.keyring} -t ${T} -q`, { cwd: work, env })).seconds);
      await withBase('fussy');
      runs.full.push((await measure(`${fussyBin} install ${full} -k ${k.keyring} -t ${T} -q`, { cwd: work, env })).seconds);
      await withBase('ref');
      runs.ref.push((await measure(`gpg --batch -d ${refNext} 2>/dev/null | tar xzf - -C ${tmp} && rsync -a --link-dest=${T}/${basename(c.base)} ${tmp}/${tag}/ ${T}/${tag}/ && rm -rf ${tmp}/${tag}`, { cwd: work, env })).seconds);
      if (c.floorFile !== undefined) {
        const file = join(T, basename(c.base), c.floorFile);
        runs.node.push((await measure(`${process.execPath} -e 0`, { cwd: work, env })).seconds);
        await sh('sync');
        runs.write.push((await measure(`cp ${file} ${tmp}/floor.bin && sync -f ${tmp}/floor.bin`, { cwd: work, env })).seconds);
        runs.sha.push(await sha256Seconds(`${tmp}/floor.bin`, env));
        await rm(join(tmp, 'floor.bin'));
      }
      process.stderr.write(`round ${round + 1}, ${c.name}: delta ${runs.delta.at(-1)?.toFixed(2)} s, full ${runs.full.at(-1)?.toFixed(2)} s, pipeline ${runs.ref.at(-1)?.toFixed(2)} s\n`);
    }
    const MB = (n: number): string => (n / 1e6).toFixed(n < 1e6 ? 3 : 1);
    const [d, f, r] = [median(runs.delta), median(runs.full), median(runs.ref)];
    const dSize = statSync(delta).size;
    if (c.floorFile !== undefined) {
      const [n, w, h] = [median(runs.node), median(runs.write), median(runs.sha)];
      floors.push(`${c.name}, what any installer of it pays here (medians): node's start ${n.toFixed(2)} s; the file written and synced (cp, sync -f) ${w.toFixed(2)} s; its SHA-256 on one core ${h.toFixed(2)} s. The first two alone are ${((n + w) / r).toFixed(2)}x of the pipeline, the delta install ${(d / r).toFixed(2)}x.`);
    }
    lines.push(`| ${c.name} | ${MB(statSync(full).size)} | ${MB(dSize)} | ${MB(reference)} | ${(dSize / reference).toFixed(2)}x | ${d.toFixed(2)} | ${f.toFixed(2)} | ${r.toFixed(2)} | ${(d / r).toFixed(2)}x | ${(d / f).toFixed(2)}x |`);
  }
  await rm(T, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });
  const table = [lines.join('\n'), ...floors.map((x) => `\n${x}`)].join('\n') + '\n';
  await writeFile(join(work, 'delta-results.md'), table);
  process.stdout.write(`\nmedian of ${repeat} runs, ${new Date().toISOString()}\n\n${table}`);
}

await runBench(main);
