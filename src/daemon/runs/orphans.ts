import { readdirSync, readFileSync } from 'node:fs';
import { isErrno } from '../../errors.js';
import { processStart } from '../../util/proc.js';

/** Where a run's process group was: its leader's pid (= the group id), start time and boot. */
export interface GroupIdentity {
  pid: number;
  pidStart: string;
  bootId: string;
}

/**
 * The processes still in a run's group, when that group is provably the run's: same boot, and
 * either its leader still runs with the recorded start time, or the leader is gone and members
 * of group `pid` remain (Linux does not hand out a pid while a group of that id exists, so a
 * new group of that id would have a new leader, with another start time). Never the pid alone
 * (a reused pid is someone else's process: Salt #28322).
 */
export function survivingGroup(g: GroupIdentity, currentBoot: string): number[] {
  if (g.bootId !== currentBoot) return [];
  const leaderStart = processStart(g.pid);
  if (leaderStart !== undefined && leaderStart !== g.pidStart) return [];
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(name);
    if (stat === undefined) continue;
    // proc(5) stat: after "(comm)": state, ppid, pgrp; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === g.pid && BigInt(fields[19] ?? '0') >= BigInt(g.pidStart) && fields[0] !== 'Z') members.push(Number(name));
  }
  return members;
}

/** SIGKILL a run's group if it still runs (survivingGroup); how many processes it had. */
export function killSurvivingGroup(g: GroupIdentity, currentBoot: string): number {
  const members = survivingGroup(g, currentBoot);
  if (members.length === 0) return 0;
  try {
    process.kill(-g.pid, 'SIGKILL');
  } catch (err) {
    if (!isErrno(err, 'ESRCH')) throw err;
  }
  return members.length;
}

function readStat(pid: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
}
