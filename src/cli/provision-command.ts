import { Command } from 'commander';
import { resolve } from 'node:path';
import { provision, type ProvisionStep } from '../provision/provision.js';
import type { Io, OutputFlags } from './io.js';
import type { CommandResult } from './render.js';

interface ProvisionFlags extends OutputFlags {
  root: string;
  dryRun?: boolean;
  deviceName?: string;
}

/** `fussy provision CONFIG --root DIR`: make a root file system a fussy device (docs/provision.md). */
export function provisionCommand(io: Io, done: (r: CommandResult) => void): Command {
  return new Command('provision')
    .description('make a root file system (or / ) a fussy device as CONFIG declares: keyring and device key, factory firmware as current and failsafe, link-tree, fussyd with its certificate, enabled (idempotent)')
    .argument('<config>', 'the provisioning config (docs/provision.md)')
    .requiredOption('--root <dir>', 'the root file system to provision, e.g. a debootstrap tree; / for this system')
    .option('--device-name <name>', "the device's name instead of the config's [device] name (one config, many units)")
    .option('-n, --dry-run', 'print the plan: what is done and what would be done; change nothing')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print nothing but errors, and the public key file')
    .action(async (config: string, f: ProvisionFlags) => {
      const show = f.json !== true && f.quiet !== true;
      const r = await provision({
        config: resolve(io.cwd, config),
        root: resolve(io.cwd, f.root),
        dryRun: f.dryRun,
        deviceName: f.deviceName,
        now: io.now(),
        onEvent: (e) => {
          if (show && e.type === 'hook') io.stderr.write(`  ${e.phase}${e.recovery ? ' (recovery)' : ''}: ${e.line}\n`);
        },
        onStep: (s) => {
          if (show) io.stderr.write(stepLines(s, f.dryRun === true).join('\n') + '\n');
        },
      });
      const last = r.dryRun
        ? `dry run: ${r.changes} ${r.changes === 1 ? 'change' : 'changes'} to make in ${r.root}; nothing was changed`
        : r.changes === 0
          ? `nothing to do: ${r.root} is provisioned as ${r.config} says`
          : `provisioned ${r.root} as ${r.device}: ${r.changes} ${r.changes === 1 ? 'change' : 'changes'}${r.devicePublicKey === undefined ? '' : `; the device's public key for the build server (fussy pack -e): ${r.devicePublicKey}`}`;
      done({ json: { ...r }, summary: [last], stdoutLine: r.devicePublicKey });
    });
}

function stepLines(s: ProvisionStep, dryRun: boolean): string[] {
  if (s.done.length === 0 && s.changed.length === 0) return [`${s.step}: not asked for`];
  return [`${s.step}:`, ...s.done.map((d) => `  = ${d}`), ...s.changed.map((c) => `  ${dryRun ? 'would' : '+'} ${c}`)];
}
