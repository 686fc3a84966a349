import { Command } from 'commander';
import { linkTree } from '../index.js';
import type { Io, OutputFlags } from './io.js';
import type { CommandResult } from './render.js';
import { resolve } from 'node:path';

export interface LinkTreeFlags extends OutputFlags {
  hard?: boolean;
  force?: boolean;
  dryRun?: boolean;
}

export function addLinkTreeOptions(cmd: Command): Command {
  return cmd
    .argument('<source>', 'directory whose files get links, e.g. /opt/firmware/current/etc')
    .argument('<dest>', 'where the links go, e.g. /etc')
    .option('--hard', 'hard links instead of symbolic links (same file system only)')
    .option('-f, --force', 'move a different existing entry aside to NAME.fussy-orig')
    .option('-n, --dry-run', 'show the plan; change nothing')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print nothing but errors');
}

export function linkTreeCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addLinkTreeOptions(new Command('link-tree'))
    .description('link every file under SOURCE from the same path under DEST (idempotent)')
    .action(async (source: string, dest: string, f: LinkTreeFlags) => done(await runLinkTree(io, source, dest, f)));
}

export async function runLinkTree(io: Io, source: string, dest: string, f: LinkTreeFlags): Promise<CommandResult> {
  const r = await linkTree({ source: resolve(io.cwd, source), dest: resolve(io.cwd, dest), hard: f.hard, force: f.force, dryRun: f.dryRun });
  const count = (a: string): number => r.steps.filter((s) => s.action === a).length;
  const lines = r.steps
    .filter((s) => s.action !== 'unchanged' && (r.dryRun || s.action === 'replace'))
    .map((s) => (s.action === 'replace' ? `${r.dryRun ? 'would move' : 'moved'} ${s.path} aside to ${s.aside}` : `${r.dryRun ? 'would ' : ''}${s.action === 'mkdir' ? 'create directory' : 'link'} ${s.path}${s.target === undefined ? '' : ` -> ${s.target}`}`));
  const summary = `${r.dryRun ? 'would link' : 'linked'} ${count('link') + count('replace')} files (${count('unchanged')} already linked, ${count('mkdir')} directories created, ${count('replace')} moved aside)`;
  return { json: { ...r }, summary: [...lines, summary] };
}
