import { CommanderError } from 'commander';
import { EXIT_CODES, FussyError, INTERNAL_ERROR_EXIT } from '../errors.js';
import { permissionProblem } from '../util/system-error.js';
import type { Io, OutputFlags } from './io.js';

/** A finished command: a JSON object for --json, lines for humans, the last stdout line. */
export interface CommandResult {
  json: Record<string, unknown>;
  /** Short summary lines on stderr (not with --quiet / --json). */
  summary: string[];
  /** Printed as the last line of stdout (a path scripts capture); absent for pure reports. */
  stdoutLine?: string;
  exitCode?: number;
  /** The command printed its own output already (fussy remote over several hosts): only exitCode counts. */
  rendered?: boolean;
}

export function renderResult(io: Io, flags: OutputFlags, r: CommandResult): number {
  if (r.rendered === true) return r.exitCode ?? 0;
  if (flags.json) {
    io.stdout.write(JSON.stringify({ ok: true, ...r.json }) + '\n');
  } else {
    if (!flags.quiet) for (const line of r.summary) io.stderr.write(line + '\n');
    if (r.stdoutLine !== undefined) io.stdout.write(r.stdoutLine + '\n');
  }
  return r.exitCode ?? 0;
}

/** The one place an error becomes text and an exit status (the README's exit codes). */
export function renderError(io: Io, flags: OutputFlags, prog: string, thrown: unknown): number {
  // The commands still call src/ops directly; the same rule as src/index.ts applies here.
  const err = permissionProblem(thrown);
  if (err instanceof CommanderError) {
    // commander already printed its message (or the help / version text).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return EXIT_CODES.USAGE;
  }
  if (err instanceof FussyError) {
    if (flags.json) {
      io.stdout.write(JSON.stringify({ ok: false, error: { code: err.code, exitCode: err.exitCode, message: err.message, hint: err.hint, ...(err.details ?? {}) } }) + '\n');
    } else {
      io.stderr.write(`${prog}: ${err.message}\n`);
      if (err.hint !== undefined) io.stderr.write(`  hint: ${err.hint}\n`);
    }
    return err.exitCode;
  }
  const e = err as Error;
  if (flags.json) {
    io.stdout.write(JSON.stringify({ ok: false, error: { code: 'INTERNAL', exitCode: INTERNAL_ERROR_EXIT, message: String(e?.message ?? e) } }) + '\n');
  }
  io.stderr.write(`${prog}: internal error, please report it with this output:\n${e?.stack ?? String(err)}\n`);
  return INTERNAL_ERROR_EXIT;
}
