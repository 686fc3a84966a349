import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { RunEngine, type EngineOptions, type RunRecord } from '../../../src/daemon/runs/engine.js';
import type { Trigger } from '../../../src/daemon/runs/records.js';
import { ScriptStore } from '../../../src/daemon/scripts.js';

export const BY = { cn: 'alice', fingerprint: 'AB:CD' };
export const ALICE: Trigger = { kind: 'user', cn: 'alice', fingerprint: 'AB:CD' };

/** A script store and an engine on `stateDir`, as fussyd opens them. */
export async function openEngine(stateDir: string, o: Partial<EngineOptions> = {}): Promise<{ scripts: ScriptStore; engine: RunEngine; abandoned: Awaited<ReturnType<typeof RunEngine.open>>['abandoned'] }> {
  const scripts = await ScriptStore.open(stateDir);
  const { engine, abandoned } = await RunEngine.open({ stateDir, scripts, drainMs: 500, ...o });
  return { scripts, engine, abandoned };
}

/** Store `body` as `name` and run it to its end. */
export async function runOnce(engine: RunEngine, scripts: ScriptStore, name: string, body: string, o: { args?: string[]; timeoutMs?: number } = {}): Promise<RunRecord> {
  await scripts.put(name, Buffer.from(body), BY);
  return engine.submit({ script: name, trigger: ALICE, ...o }).done;
}

/** The live (not zombie) processes of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') continue;
      throw err;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid && f[0] !== 'Z') found.push(Number(name));
  }
  return found;
}

/** Wait (up to 10 s) for a group to have no live process; its members otherwise. */
export async function groupGone(pgid: number): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    if (groupMembers(pgid).length === 0) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  return groupMembers(pgid);
}

export function killGroup(pgid: number | undefined): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** The python3 a run would find on its PATH, or undefined. */
export function python3(): string | undefined {
  return ['/usr/local/bin/python3', '/usr/bin/python3', '/bin/python3'].find((p) => existsSync(p));
}

export const text = (b: Buffer): string => b.toString('utf8');
