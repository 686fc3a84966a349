import type { Command } from 'commander';

/** Where fussy installs on a device (the original Fussy's layout). */
export const DEFAULT_TARGET = '/opt/firmware';
/** The device keyring. */
export const DEFAULT_KEYRING = '/etc/fussy/keys';

/** `-t, --target DIR`: declared here once for every command that works on a target. */
export function addTarget(cmd: Command): Command {
  return cmd.option('-t, --target <dir>', 'firmware directory holding current, failsafe and the releases', DEFAULT_TARGET);
}
