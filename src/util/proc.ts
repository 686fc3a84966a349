import { readFileSync } from 'node:fs';
import { isErrno } from '../errors.js';

/** Start time of a process, or undefined when it does not exist (proc(5): stat field 22). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
}

/** This boot's id (proc(5): /proc/sys/kernel/random/boot_id): a pid and start time mean something only within one boot. */
export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}
