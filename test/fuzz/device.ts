import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, fstatSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../../src/errors.js';
import { install, type InstallOptions, type InstallResult } from '../../src/ops/install.js';
import { verifyRelease } from '../../src/ops/verify.js';
import type { HistoryRecord } from '../../src/store/history.js';
import { snapshotTree, type TreeNode } from '../helpers/tree.js';
import type { Corpus } from './corpus.js';

const STATE = '.fussy';
/** State files an install rewrites by design; everything else in .fussy must stay as it was. */
const CHANGING = new Set(['history.log', 'history.head', 'hash-cache.json']);
/** Restored after an install that succeeded, so every case starts from the same device. */
const RESTORED = ['state.json', 'hash-cache.json'];
const asRoot = process.getuid?.() === 0;
const owner = { asRoot, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/**
 * A shell kept for the run that extracts payloads with GNU tar: it forks cheaply, where forking
 * this process (a spawnSync of tar) cost ~40 ms of CPU a check. Reads a package file and a
 * directory a request, answers with tar's exit status (its stderr goes to FILE.err).
 */
class TarShell {
  static #shell: TarShell | undefined;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<(status: number) => void> = [];
  #buffered = '';

  #exited = false;

  /** The run's shell; a new one if the last one ended (each check then says so: status -1). */
  static get(): TarShell {
    if (TarShell.#shell === undefined || TarShell.#shell.#exited) TarShell.#shell = new TarShell();
    return TarShell.#shell;
  }

  private constructor() {
    this.#child = spawn('sh', ['-c', 'while IFS= read -r f && IFS= read -r d; do tar -xzf "$f" -C "$d" 2>"$f.err"; echo $?; done'], { stdio: 'pipe' });
    this.#child.stdout.on('data', (d: Buffer) => {
      const lines = (this.#buffered + d.toString()).split('\n');
      this.#buffered = lines.pop() ?? '';
      for (const line of lines) this.#waiting.shift()?.(Number(line));
      if (this.#waiting.length === 0) this.#hold(false);
    });
    this.#child.stdin.on('error', () => undefined); // a shell that ended: its 'exit' answers the waiting checks
    this.#child.on('exit', () => {
      this.#exited = true;
      for (const w of this.#waiting.splice(0)) w(-1);
    });
    this.#hold(false);
  }

  /** Keep the process alive while a request waits for its answer; not otherwise. */
  #hold(on: boolean): void {
    if (on) this.#child.ref();
    else this.#child.unref();
    for (const s of [this.#child.stdin, this.#child.stdout, this.#child.stderr]) (s as unknown as { ref(): void; unref(): void })[on ? 'ref' : 'unref']();
  }

  extract(file: string, dir: string): Promise<number> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#hold(true);
      this.#child.stdin.write(`${file}\n${dir}\n`);
    });
  }
}

export interface Snapshot {
  /** Everything outside .fussy, with inodes and content hashes: releases, failsafe, current. */
  tree: string;
  /** The names in .fussy, but the files every install rewrites (no staging, journal or lock left). */
  state: string[];
  stateJson?: string;
  history: number;
}

/**
 * One target the fuzzer installs into, case after case: a factory `current` dir made failsafe by
 * a first install of the fussy-signed seed (the baseline release). A refused case must leave it
 * exactly as it was; after a case that installed, the new release is removed and `current`, the
 * device state and the hash cache are put back, so the next case starts from the same device.
 */
export class FuzzDevice {
  baseline = '';
  before!: Snapshot;
  #saved = new Map<string, Buffer | undefined>();
  /** Content hashes by inode, ctime and size: a file whose inode did not change is not read again. */
  #hashes = new Map<string, string>();

  private constructor(
    readonly dir: string,
    readonly target: string,
    readonly corpus: Corpus,
  ) {}

  static async create(corpus: Corpus, root: string): Promise<FuzzDevice> {
    const dir = await mkdtemp(join(root, 'device-'));
    const target = join(dir, 'firmware');
    await mkdir(join(target, 'current', 'etc'), { recursive: true });
    await writeFile(join(target, 'current', 'etc', 'version'), 'factory\n');
    const d = new FuzzDevice(dir, target, corpus);
    const seed = corpus.seeds.find((s) => s.name === 'fussy-signed');
    if (seed === undefined) throw new Error('no fussy-signed seed');
    const pkg = join(dir, 'baseline.gpg');
    await writeFile(pkg, seed.bytes);
    d.baseline = (await install(d.options(pkg, Promise.resolve(undefined)))).release;
    for (const f of RESTORED) d.#saved.set(f, await readFile(join(target, STATE, f)).catch(() => undefined));
    d.before = await d.snapshot();
    return d;
  }

  /**
   * Downgrades are allowed: packages without a manifest (the pipeline's seeds) carry no sequence
   * and would otherwise be refused before their archive is read (policy-attacks tests that rule).
   */
  options(pkg: string, digest: Promise<string | undefined>): InstallOptions {
    return { package: pkg, keyring: this.corpus.keyring, target: this.target, env: { PATH: process.env.PATH }, cwd: this.dir, owner, packageDigest: digest, hookTimeoutMs: 10_000, allowDowngrade: true };
  }

  /**
   * Read with synchronous calls: the runner does one thing at a time, and a few dozen lstats
   * through the thread pool cost more than the install they check (docs/security.md, the rate).
   */
  async snapshot(): Promise<Snapshot> {
    return Promise.resolve(this.#snapshotSync());
  }

  #snapshotSync(): Snapshot {
    const tree = this.#tree();
    const names = readdirSync(join(this.target, STATE));
    let stateJson: string | undefined;
    try {
      stateJson = readFileSync(join(this.target, STATE, 'state.json'), 'utf8');
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
    return { tree, state: names.filter((n) => !CHANGING.has(n)).sort(), stateJson, history: this.#historySync().count };
  }

  /**
   * Everything outside .fussy, one line per entry: type, mode, owner, size, mtime, inode, and the
   * content's sha256 (re-hashed only when the inode's ctime moved) or the link target.
   */
  #tree(): string {
    const lines: string[] = [];
    const walk = (rel: string): void => {
      for (const name of readdirSync(join(this.target, rel)).sort()) {
        const p = rel === '' ? name : `${rel}/${name}`;
        if (p === STATE) continue;
        const st = lstatSync(join(this.target, p), { bigint: true });
        // A symlink is its target: `current` is replaced (new inode and time) whenever it is switched back.
        if (st.isSymbolicLink()) {
          lines.push(`${p} -> ${readlinkSync(join(this.target, p))}`);
          continue;
        }
        const head = `${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.ino}`;
        if (st.isDirectory()) {
          lines.push(head);
          walk(p);
        } else {
          if (this.#hashes.size > 10_000) this.#hashes.clear();
          const key = `${st.ino} ${st.ctimeNs} ${st.size}`;
          let sum = this.#hashes.get(key);
          if (sum === undefined) {
            sum = createHash('sha256').update(readFileSync(join(this.target, p))).digest('hex');
            this.#hashes.set(key, sum);
          }
          lines.push(`${head} ${sum}`);
        }
      }
    };
    walk('');
    return lines.join('\n');
  }

  /** The history's record count (from history.head) and its last record (the log's tail only: it grows). */
  async history(): Promise<{ count: number; last?: HistoryRecord }> {
    return Promise.resolve(this.#historySync());
  }

  #historySync(): { count: number; last?: HistoryRecord } {
    const head = JSON.parse(readFileSync(join(this.target, STATE, 'history.head'), 'utf8')) as { count: number };
    const fd = openSync(join(this.target, STATE, 'history.log'), 'r');
    try {
      const size = fstatSync(fd).size;
      const tail = Buffer.alloc(Math.min(size, 64 * 1024));
      readSync(fd, tail, 0, tail.length, size - tail.length);
      const lines = tail.toString('utf8').trimEnd().split('\n');
      return { count: head.count, last: JSON.parse(lines[lines.length - 1] as string) as HistoryRecord };
    } finally {
      closeSync(fd);
    }
  }

  /** What is wrong with an install that succeeded: it must equal its manifest, or GNU tar's reading of the payload. */
  async checkInstalled(r: InstallResult, payload: Buffer | undefined): Promise<string[]> {
    const problems: string[] = [];
    const cur = await readlink(join(this.target, 'current')).catch(() => '(unreadable)');
    if (cur !== r.release) problems.push(`current -> ${cur}, not the new release ${r.release}`);
    if (r.manifest) {
      const report = await verifyRelease(join(this.target, r.release), r.release, { asRoot });
      if (!report.manifest) problems.push('installed with a manifest, but verify finds none');
      for (const f of report.findings.slice(0, 5)) problems.push(`verify: ${f.problem} ${f.path}: ${f.detail}`);
    } else if (payload !== undefined) {
      problems.push(...(await this.#compareWithGnuTar(r.release, payload)));
    }
    const h = await this.history();
    if (h.count !== this.before.history + 1 || h.last?.result !== 'ok') problems.push(`history: ${h.count - this.before.history} new records, the last ${h.last?.result}`);
    return problems;
  }

  async #compareWithGnuTar(release: string, payload: Buffer): Promise<string[]> {
    const scratch = await mkdtemp(join(this.dir, 'gnutar-'));
    const file = `${scratch}.tgz`;
    try {
      await writeFile(file, payload);
      const status = await TarShell.get().extract(file, scratch);
      const stderr = await readFile(`${file}.err`, 'utf8').catch(() => '');
      const refused = status === 0 ? [] : [`GNU tar exits ${status} on the payload (${stderr.trim().split('\n').slice(0, 2).join(' / ').slice(0, 200)}), fussy installed it`];
      const tops = await readdir(scratch);
      if (tops.length !== 1) return [...refused, `GNU tar extracts ${tops.length} top-level entries (${tops.join(', ')}), fussy installed one`];
      // mtimes are left out: a file linked to an equal one of an older release keeps that one's mtime
      // (docs/commands.md, dedup).
      const strip = (nodes: TreeNode[]): string[] => nodes.filter((n) => n.path !== '.').map((n) => JSON.stringify({ ...n, mtime: 0 }));
      const ours = strip(await snapshotTree(join(this.target, release)));
      const theirs = strip(await snapshotTree(join(scratch, tops[0] as string)));
      const a = new Set(ours);
      const b = new Set(theirs);
      const onlyOurs = ours.filter((x) => !b.has(x));
      const onlyTheirs = theirs.filter((x) => !a.has(x));
      return [...refused, ...onlyOurs.slice(0, 3).map((x) => `installed, not as GNU tar extracts it: ${x}`), ...onlyTheirs.slice(0, 3).map((x) => `GNU tar extracts, not installed so: ${x}`)];
    } finally {
      await Promise.all([scratch, file, `${file}.err`].map((p) => rm(p, { recursive: true, force: true })));
    }
  }

  /** What is wrong with a refusal: the history must have it, and nothing may have changed or stayed behind. */
  async checkRefused(code: string): Promise<string[]> {
    const problems: string[] = [];
    const now = await this.snapshot();
    if (now.tree !== this.before.tree) problems.push('the target changed (releases, failsafe or current)');
    const extra = now.state.filter((n) => !this.before.state.includes(n));
    const gone = this.before.state.filter((n) => !now.state.includes(n));
    if (extra.length > 0) problems.push(`left behind in .fussy: ${extra.join(', ')}`);
    if (gone.length > 0) problems.push(`removed from .fussy: ${gone.join(', ')}`);
    if (now.stateJson !== this.before.stateJson) problems.push(`state.json changed: ${now.stateJson}`);
    const h = await this.history();
    if (h.count !== this.before.history + 1) problems.push(`history: ${h.count - this.before.history} new records instead of 1`);
    else if (h.last?.result !== 'refused' || h.last.error?.code !== code) problems.push(`history: the last record is ${h.last?.result} ${h.last?.error?.code}, not refused ${code}`);
    this.before.history = h.count;
    return problems;
  }

  /** Undo an install that succeeded: remove the release, point `current` back, restore state files. */
  async reset(release: string): Promise<void> {
    const tmp = join(this.target, 'current~fuzz');
    await symlink(this.baseline, tmp);
    await rename(tmp, join(this.target, 'current'));
    await rm(join(this.target, release), { recursive: true, force: true });
    for (const [f, bytes] of this.#saved) {
      if (bytes === undefined) await rm(join(this.target, STATE, f), { force: true });
      else await writeFile(join(this.target, STATE, f), bytes);
    }
    const now = await this.snapshot();
    if (now.tree !== this.before.tree || now.stateJson !== this.before.stateJson || now.state.join() !== this.before.state.join()) throw new Error('the device could not be reset to its baseline');
    this.before.history = now.history;
  }
}
