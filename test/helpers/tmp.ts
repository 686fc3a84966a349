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

export async function makeTmp(prefix = 'fussy-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
