/**
 * bench/make-firmware: a deterministic synthetic firmware tree for the benchmarks (and tests).
 *
 *   node dist/bench/make-firmware.js OUT [--mb 100] [--files 1000] [--seed 1]
 *   node dist/bench/make-firmware.js OUT --from OLD [--change 5] [--seed 2]
 *
 * A fresh tree holds about --mb megabytes in --files files whose sizes follow a long tail (most
 * small, a few large): compressible text, incompressible binary, small configs, executables,
 * nested directories, one symlink into the tree and dangling ones, and `.pre-install` /
 * `.post-install` hooks that append their arguments to $FUSSY_HOOK_LOG when it is set. With
 * --from, the next release: a copy of OLD with about --change percent of its files rewritten, one
 * in 200 removed and one in 100 added. Same arguments, same bytes (modes and mtimes included).
 */
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { seededRandom, type Random } from './random.js';

export interface FirmwareOptions {
  mb?: number;
  files?: number;
  seed?: number;
  /** Make the next release of this tree instead of a fresh one. */
  from?: string;
  /** Percent of OLD's files rewritten (with `from`). */
  change?: number;
}

const RELEASED = 1_700_000_000;
const NEXT = 1_700_100_000;
const DIRS = ['bin', 'lib', 'lib/modules', 'share/doc', 'share/web/static', 'etc/app', 'etc/fussy', 'opt/app/lib', 'opt/app/assets/img', 'var/empty'];
const WORDS = 'firmware device upgrade signal kernel module service config daemon network storage sensor update package release verify install current failsafe schedule script history data value timeout retry buffer'.split(' ');
const HOOK = `#!/bin/sh
# $1: the release directory, $2: True when an earlier release is enabled again
[ -n "$FUSSY_HOOK_LOG" ] && echo "$(basename "$0") $(basename "$1") $2" >> "$FUSSY_HOOK_LOG"
exit 0
`;

/** Write the tree at `out`, which must not exist. */
export function makeFirmware(out: string, o: FirmwareOptions = {}): void {
  if (existsSync(out)) throw new Error(`make-firmware: ${out} exists`);
  const rng = seededRandom(o.seed ?? 1);
  if (o.from !== undefined) nextRelease(o.from, out, o.change ?? 5, rng);
  else fresh(out, o.mb ?? 100, o.files ?? 1000, rng);
}

function text(rng: Random, n: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  while (size < n) {
    const words = Array.from({ length: rng.int(4, 14) }, () => rng.pick(WORDS));
    const line = `${words.join(' ')}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, n);
}

function write(path: string, data: Buffer | string, mode: number, mtime: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  chmodSync(path, mode);
  utimesSync(path, mtime, mtime);
}

function fresh(out: string, mb: number, files: number, rng: Random): void {
  for (const d of DIRS) mkdirSync(join(out, d), { recursive: true });
  // Pareto(1.2) weights: a long tail of sizes, scaled to the total.
  const weights = Array.from({ length: files }, () => (1 - rng.next()) ** (-1 / 1.2));
  const scale = (mb * 1024 * 1024) / weights.reduce((a, b) => a + b, 0);
  weights.forEach((w, i) => {
    const n = Math.max(16, Math.floor(w * scale));
    const kind = rng.next();
    const d = rng.pick(DIRS.slice(0, -1));
    const id = String(i).padStart(5, '0');
    if (kind < 0.45) write(join(out, d, `file${id}.txt`), text(rng, n), 0o644, RELEASED);
    else if (kind < 0.85) write(join(out, d, `blob${id}.bin`), rng.bytes(n), 0o644, RELEASED);
    else if (kind < 0.95) write(join(out, 'etc/app', `conf${id}.ini`), text(rng, Math.min(n, 4096)), 0o640, RELEASED);
    else write(join(out, 'bin', `tool${id}`), Buffer.concat([Buffer.from('#!/bin/sh\necho tool\n'), rng.bytes(n)]), 0o755, RELEASED);
  });
  symlinkSync('../etc/app', join(out, 'opt/app/link0'));
  for (let i = 1; i < 20; i++) symlinkSync(`file-missing-${i}`, join(out, 'opt/app', `dangling${i}`));
  write(join(out, '.pre-install'), HOOK, 0o755, RELEASED);
  write(join(out, '.post-install'), HOOK, 0o755, RELEASED);
  stampDirs(out, RELEASED);
}

function nextRelease(old: string, out: string, change: number, rng: Random): void {
  cpSync(old, out, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  // Regular files but the hooks, in a fixed order: the sample must not depend on readdir order.
  const paths = walk(out).filter((p) => !p.split('/').pop()?.startsWith('.') && lstatSync(p).isFile()).sort();
  for (const p of rng.sample(paths, Math.max(1, Math.floor((paths.length * change) / 100)))) {
    const st = lstatSync(p);
    write(p, /\.(txt|ini)$/.test(p) ? text(rng, st.size) : rng.bytes(st.size), st.mode & 0o7777, NEXT);
  }
  for (const p of rng.sample(paths, Math.max(1, Math.floor(paths.length / 200)))) rmSync(p);
  for (let i = 0; i < Math.max(1, Math.floor(paths.length / 100)); i++) {
    write(join(out, 'share/new', `added${String(i).padStart(4, '0')}.txt`), text(rng, rng.int(100, 50_000)), 0o644, NEXT);
  }
  stampDirs(out, NEXT);
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [join(dir, e.name), ...walk(join(dir, e.name))] : [join(dir, e.name)]));
}

/** Directory mtimes too, so that two runs give identical trees. */
function stampDirs(root: string, mtime: number): void {
  for (const d of [root, ...walk(root).filter((p) => lstatSync(p).isDirectory())]) utimesSync(d, mtime, mtime);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { mb: { type: 'string' }, files: { type: 'string' }, seed: { type: 'string' }, from: { type: 'string' }, change: { type: 'string' } },
  });
  const out = positionals[0];
  if (out === undefined || positionals.length > 1) throw new Error('usage: make-firmware OUT [--mb N] [--files N] [--seed N] | OUT --from OLD [--change PCT] [--seed N]');
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  makeFirmware(out, { mb: num(values.mb), files: num(values.files), seed: num(values.seed), from: values.from, change: num(values.change) });
  process.stdout.write(`${out}\n`);
}
