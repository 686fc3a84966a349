import { Argument, Command } from 'commander';
import { bashCompletion, commandDoc } from './manual.js';
import type { Io } from './io.js';
import { installCommand } from './install-command.js';
import { keygenCommand } from './keygen-command.js';
import { cleanCommand } from './clean-command.js';
import { historyCommand } from './history-command.js';
import { recoverCommand } from './recover-command.js';
import { rollbackCommand } from './rollback-command.js';
import { lockCommand } from './lock-command.js';
import { linkTreeCommand } from './link-tree-command.js';
import { verifyCommand } from './verify-command.js';
import { statusCommand } from './status-command.js';
import { pkiCommand } from './pki-command.js';
import { provisionCommand } from './provision-command.js';
import { remoteCommand } from './remote-command.js';
import { configure, VERSION } from './configure.js';
import { fussyCleanProgram, fussyInstallProgram, fussyLinkTreeProgram, fussyPackProgram } from './compat.js';
import { addPackOptions, runPack, type PackFlags } from './pack-command.js';
import type { CommandResult } from './render.js';

export { configure, VERSION } from './configure.js';

export function buildProgram(io: Io, done: (r: CommandResult) => void): Command {
  const program = configure(new Command('fussy'), io)
    .description('signed, deduplicated, crash-safe firmware upgrades')
    .version(VERSION, '-V, --version')
    .enablePositionalOptions();

  program.addCommand(
    configure(
      addPackOptions(new Command('pack'))
        .description('pack DIR into a signed (optionally encrypted) <release>.tar.gz.gpg; prints its path last')
        .argument('<dir>', 'firmware directory; its name is the release name')
        .option('--json', 'print one JSON object; progress as NDJSON on stderr')
        .option('-q, --quiet', 'print only the package path')
        .action(async (dir: string, f: PackFlags) => done(await runPack(io, dir, f))),
      io,
    ),
  );
  program.addCommand(configure(installCommand(io, done), io));
  program.addCommand(configure(keygenCommand(io, done), io));
  program.addCommand(configure(recoverCommand(io, done), io));
  program.addCommand(configure(historyCommand(io, done), io));
  program.addCommand(configure(cleanCommand(io, done), io));
  program.addCommand(configure(rollbackCommand(io, done), io));
  program.addCommand(configure(lockCommand(io, done), io));
  program.addCommand(configure(linkTreeCommand(io, done), io));
  program.addCommand(configure(verifyCommand(io, done), io));
  program.addCommand(configure(statusCommand(io, done), io));
  const pki = configure(pkiCommand(io, done), io);
  for (const sub of pki.commands) configure(sub, io);
  program.addCommand(pki);
  program.addCommand(configure(provisionCommand(io, done), io));
  program.addCommand(configure(remoteCommand(io, done), io));
  program.addCommand(
    configure(
      new Command('completion')
        .description('print the shell completion script for fussy, the fussy-* launchers and fussyd: bash (source it, or install it as /usr/share/bash-completion/completions/fussy), or zsh (source <(fussy completion zsh) in .zshrc)')
        .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
        .action(async (shell: 'bash' | 'zsh') => {
          // fussyd's options are its config keys; its module (the daemon) loads only here.
          const { fussydProgram } = await import('./fussyd.js');
          const others = [fussyPackProgram(io, done), fussyInstallProgram(io, done), fussyCleanProgram(io, done), fussyLinkTreeProgram(io, done), fussydProgram(io)];
          const script = [program, ...others].map((p) => bashCompletion(commandDoc(p))).join('\n');
          io.stdout.write(shell === 'bash' ? script : `# zsh: bash's completion through bashcompinit\nautoload -U +X bashcompinit && bashcompinit\n${script}`);
          done({ json: {}, summary: [] });
        }),
      io,
    ),
  );
  return program;
}
