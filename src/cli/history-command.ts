import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { FussyError, history, STATE_DIR } from '../index.js';
import { formatBytes, type Io, type OutputFlags } from './io.js';
import { addTarget } from './target-flag.js';
import type { CommandResult } from './render.js';

interface HistoryFlags extends OutputFlags {
  target: string;
}

/** `fussy history`: the transaction log, checked (no lock needed: it only reads). */
export function historyCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addTarget(new Command('history'))
    .description('list installs, rollbacks and recoveries, oldest first, and check that the log was not altered')
    .option('--json', 'print one JSON object {records, problems}')
    .option('-q, --quiet', 'print nothing but problems')
    .action(async (f: HistoryFlags) => done(await runHistory(io, f)));
}

async function runHistory(io: Io, f: HistoryFlags): Promise<CommandResult> {
  const target = resolve(io.cwd, f.target);
  const dir = join(target, STATE_DIR);
  const h = await history({ target });
  if (h.problems.length > 0) {
    // A file that cannot be read or used is named by the first problem; otherwise the log does not check out.
    const message = h.damagedFile === undefined ? `${join(dir, 'history.log')}: ${h.problems.join('; ')}` : h.problems.join('; ');
    throw new FussyError('HISTORY_DAMAGED', message, {
      hint: h.damagedFile === undefined
        ? 'the records shown may not be what happened; compare with your fleet logs'
        : `the next install, rollback or clean goes on and rebuilds what it can (see the message); until then compare the records with your fleet logs, or move ${h.damagedFile} aside if it is not a file fussy wrote`,
      details: { records: h.records, problems: h.problems, file: h.damagedFile ?? join(dir, 'history.log') },
    });
  }
  const lines = h.records.map((r) => {
    const what = r.release === undefined ? '' : ` ${r.release}`;
    const from = r.previous === undefined ? '' : ` (was ${r.previous})`;
    const pkg = r.package?.sha256 === undefined ? '' : ` package sha256 ${r.package.sha256.slice(0, 16)}`;
    const delta = r.delta === undefined ? '' : ` delta against ${r.delta.bases.map((b) => b.release).join(', ')}`;
    const who = r.signers === undefined || r.signers.length === 0 ? '' : ` signed by ${r.signers.map((s) => s.slice(-16)).join(', ')}`;
    const why = r.error === undefined ? '' : `: ${r.error.code} ${r.error.message}`;
    const gone = r.removed === undefined ? '' : ` removed ${r.removed.length === 0 ? 'nothing' : r.removed.join(', ')}${r.freedBytes === undefined ? '' : ` (${formatBytes(r.freedBytes)} freed)`}`;
    const note = r.headRebuilt === undefined ? '' : ` (before it, the history was damaged: ${r.headRebuilt}; rebuilt from the log)`;
    return `${r.time} ${r.action} ${r.result}${what}${from}${gone}${pkg}${delta}${who} ${(r.durationMs / 1000).toFixed(1)} s${why}${note}`;
  });
  if (!f.json && !f.quiet) for (const l of lines) io.stdout.write(l + '\n');
  return { json: { records: h.records, problems: h.problems }, summary: [`${h.records.length} records, chain intact`] };
}
