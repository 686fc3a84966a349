import { resolve } from 'node:path';
import { Command } from 'commander';
import { FussyError, verify, type ReleaseReport } from '../index.js';
import type { Io, OutputFlags } from './io.js';
import { addTarget } from './target-flag.js';
import type { CommandResult } from './render.js';

interface VerifyFlags extends OutputFlags {
  target: string;
  all?: boolean;
  repair?: boolean;
}

/**
 * `fussy verify [NAME...] [--all] [--repair]`: installed releases against their manifests. The
 * report is the command's result, so it goes to stdout (one JSON object with --json); errors go
 * to stderr. Any finding left exits 2 (VERIFY_FAILED, SPEC §5); -q prints only findings.
 */
export function verifyCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addTarget(new Command('verify'))
    .description("check installed releases against their manifests (default: current's); names every changed, missing and extra file")
    .argument('[names...]', 'releases to check')
    .option('--all', 'every release (those without a manifest are listed as such)')
    .option('--repair', 'put back changed or missing files from a healthy copy on the device, and modes, owners and links (takes the lock)')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print nothing but problems')
    .action(async (names: string[], f: VerifyFlags) => {
      const { reports, repairs } = await verify({ target: resolve(io.cwd, f.target), names, all: f.all, owner: io.owner, repair: f.repair, env: io.env, cwd: io.cwd, now: io.now() });
      const changes = (repairs ?? []).flatMap((x) => [...x.repaired.map((p) => `${x.release}: repaired ${p}`), ...x.removed.map((p) => `${x.release}: removed ${p} (a temp file of an interrupted repair)`)]);
      const bad = reports.filter((r) => r.findings.length > 0);
      const lines = [...(f.quiet === true ? [] : changes), ...reports.flatMap((r) => reportLines(r, f.quiet === true))];
      if (f.json !== true && lines.length > 0) io.stdout.write(lines.join('\n') + '\n');
      if (bad.length > 0) {
        throw new FussyError('VERIFY_FAILED', `${bad.map((r) => r.release).join(', ')} differ${bad.length === 1 ? 's' : ''} from ${bad.length === 1 ? 'its manifest' : 'their manifests'}`, {
          hint: hintFor(bad, f.repair === true),
          details: { releases: reports, ...(repairs === undefined ? {} : { repairs }) },
        });
      }
      done({ json: { releases: reports, ...(repairs === undefined ? {} : { repairs }) }, summary: [] });
    });
}

function reportLines(r: ReleaseReport, quiet: boolean): string[] {
  if (r.findings.length === 0) {
    if (quiet) return [];
    return [!r.manifest ? `${r.release}: no manifest (installed without one), not checked` : `${r.release}: ok (${r.checked} entries match the manifest)`];
  }
  return [`${r.release}: ${r.findings.length} problem${r.findings.length === 1 ? '' : 's'}`, ...r.findings.map((x) => `  ${x.problem} ${x.path}: ${x.detail}`)];
}

/** `--repair` when it would fix everything found, reinstalling for what it cannot fix. */
function hintFor(bad: ReleaseReport[], repaired: boolean): string {
  const findings = bad.flatMap((r) => r.findings);
  const fixable = findings.filter((x) => x.repairable === true).length;
  // Unknown: a healthy copy this user may not read (verify as a user other than root).
  if (!repaired && findings.some((x) => x.repairable === undefined)) return 'run fussy verify --repair as root: it puts back what has a healthy copy on the device and reports the rest (then reinstall the release)';
  const extra = findings.some((x) => x.problem === 'extra') ? '; extra files are never deleted: remove them by hand if they are not data' : '';
  const rest = `reinstall the release (or restore the files by hand) before the next update shares them further${extra}`;
  if (fixable === 0) return repaired ? `verify --repair could not fix these: ${rest}` : rest;
  if (fixable === findings.length) return 'run fussy verify --repair to put back the files, modes, owners and links from the manifests (healthy copies are on the device)';
  return `fussy verify --repair fixes ${fixable} of the ${findings.length} problems; for the rest, ${rest}`;
}
