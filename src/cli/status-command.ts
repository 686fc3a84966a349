import { resolve } from 'node:path';
import { Command } from 'commander';
import { status, type TargetStatus } from '../index.js';
import { formatBytes, type Io, type OutputFlags } from './io.js';
import { addTarget } from './target-flag.js';
import type { CommandResult } from './render.js';

interface StatusFlags extends OutputFlags {
  target: string;
}

/** `fussy status`: current, failsafe, releases, sharing, last transaction, pending recovery. */
export function statusCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addTarget(new Command('status'))
    .description('show current, failsafe and the releases (sizes net of sharing), the last transaction and any pending recovery')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print only the current release path')
    .action(async (f: StatusFlags) => {
      const s = await status({ target: resolve(io.cwd, f.target) });
      const lines = statusLines(s);
      if (!f.json && !f.quiet) io.stdout.write(lines.join('\n') + '\n');
      done({ json: { ...s }, summary: [], stdoutLine: f.quiet === true && s.current !== undefined ? resolve(s.target, s.current) : undefined });
    });
}

/** The human lines of a target's status (fussy status, fussy remote status). */
export function statusLines(s: TargetStatus): string[] {
  return [
    `current: ${s.current ?? '(none)'}${s.highestSequence === undefined ? '' : `   highest sequence installed: ${s.highestSequence}`}`,
    ...s.releases.map((r) => `${r.current ? '*' : ' '} ${r.name.padEnd(32)} ${r.since}  ${formatBytes(r.uniqueBytes).padStart(10)} own ${formatBytes(r.sharedBytes).padStart(10)} shared${r.sequence === undefined ? '' : `  seq ${r.sequence}`}${r.failsafe ? '  (failsafe)' : ''}`),
    s.lastTransaction === undefined ? 'last transaction: none recorded' : `last transaction: ${s.lastTransaction.time} ${s.lastTransaction.action} ${s.lastTransaction.result}${s.lastTransaction.release === undefined ? '' : ` ${s.lastTransaction.release}`}`,
    ...(s.pendingRecovery === undefined ? [] : [`pending recovery: the ${s.pendingRecovery.action} of ${s.pendingRecovery.release} started ${s.pendingRecovery.started} was interrupted at "${s.pendingRecovery.step}"; the next install, clean, rollback or fussy recover finishes it`]),
    ...(s.lockedBy === undefined ? [] : [`locked by ${s.lockedBy}`]),
    ...(s.staleLock === undefined ? [] : [`stale lock of ${s.staleLock}, cleared by the next command that takes it`]),
    ...s.historyProblems.map((p) => `history${s.historyDamaged === undefined ? '' : ' damaged'}: ${p}`),
  ];
}
