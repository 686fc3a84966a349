import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp dir per test, removed afterwards unless FUSSY_KEEP_TMP is set. */
export function useTmp(): { readonly dir: string } {
  const state = { dir: '' };
  beforeEach(async () => {
    state.dir = await mkdtemp(join(tmpdir(), 'fussy-test-'));
  });
  afterEach(async () => {
    if (process.env.FUSSY_KEEP_TMP === undefined) await rm(state.dir, { recursive: true, force: true });
  });
  return state;
}

const made: string[] = [];

/** A temp dir removed when the test process exits (with any gpg-agent started in it). */
export async function makeTmp(prefix = 'fussy-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** gpg starts an agent per GNUPGHOME; stop those we started, then remove our temp dirs. */
export function cleanupTmp(): void {
  for (const dir of made.splice(0)) {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      const home = join(dir, name);
      if (existsSync(join(home, 'pubring.kbx')) || existsSync(join(home, 'private-keys-v1.d'))) {
        try {
          execFileSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') process.stderr.write(`gpgconf --kill failed for ${home}\n`);
        }
      }
    }
    if (process.env.FUSSY_KEEP_TMP === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

process.on('exit', cleanupTmp);
