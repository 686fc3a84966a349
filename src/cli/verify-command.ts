import { resolve } from 'node:path';
import { Command } from 'commander';
import { FussyError } from '../errors.js';
import type { Io, OutputFlags } from './io.js';
import { DEFAULT_TARGET } from './install-command.js';
import type { CommandResult } from './render.js';

interface VerifyFlags extends OutputFlags {
  target: string;
  all?: boolean;
  repair?: boolean;
}

/** `fussy verify [NAME...] [--all]`: installed releases against their manifests. */
export function verifyCommand(io: Io, done: (r: CommandResult) => void): Command {
  return new Command('verify')
    .description("check installed releases against their manifests (default: current's); names every changed, missing and extra file")
    .argument('[names...]', 'releases to check')
    .option('-t, --target <dir>', 'firmware directory holding current, failsafe and the releases', DEFAULT_TARGET)
    .option('--all', 'every release (those without a manifest are listed as such)')
    .option('--repair', 'put back changed or missing files from a healthy copy on the device, and modes, owners and links (takes the lock)')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print nothing but problems')
    .action(async (names: string[], f: VerifyFlags) => {
      const { verify, verifyAndRepair } = await import('../ops/verify.js');
      const o = { target: resolve(io.cwd, f.target), names, all: f.all, owner: io.owner };
      let repairedLines: string[] = [];
      let reports;
      if (f.repair === true) {
        const r = await verifyAndRepair({ ...o, env: io.env, cwd: io.cwd, hookTimeoutMs: 600_000, now: io.now() });
        repairedLines = r.results.flatMap((x) => x.repaired.map((p) => `${x.release}: repaired ${p}`));
        reports = r.after;
      } else {
        reports = await verify(o);
      }
      const bad = reports.filter((r) => r.findings.length > 0);
      const lines = [...repairedLines, ...reports.flatMap((r) => [
        !r.manifest ? `${r.release}: no manifest (installed without one), not checked` : r.findings.length === 0 ? `${r.release}: ok (${r.checked} entries match the manifest)` : `${r.release}: ${r.findings.length} problem${r.findings.length === 1 ? '' : 's'}`,
        ...r.findings.map((x) => `  ${x.problem} ${x.path}: ${x.detail}`),
      ])];
      if (bad.length > 0) {
        if (!f.json) io.stderr.write(lines.join('\n') + '\n');
        throw new FussyError('VERIFY_FAILED', `${bad.map((r) => r.release).join(', ')} differ${bad.length === 1 ? 's' : ''} from ${bad.length === 1 ? 'its manifest' : 'their manifests'}`, {
          hint: 'reinstall the release (or restore the files) before the next update shares them further',
          details: { releases: reports },
        });
      }
      done({ json: { releases: reports }, summary: lines });
    });
}
