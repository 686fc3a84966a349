import { lstatSync, mkdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDir } from '../util/fs-atomic.js';
import { plan, type StepContext, type StepPlan } from './step.js';

const UNIT = 'fussyd.service';
/** Where the packages put the unit (the .deb and the .rpm: /usr/lib; older layouts: /lib). */
const UNIT_DIRS = ['/usr/lib/systemd/system', '/lib/systemd/system'];
const WANTS = '/etc/systemd/system/multi-user.target.wants';

/**
 * fussyd enabled at boot the way `systemctl enable` does it (the unit's WantedBy=multi-user.target):
 * a symlink in multi-user.target.wants to the unit the package installed, made in the root without
 * systemd running. The unit must be in the root: the fussy package is installed there first.
 */
export async function enableStep(c: StepContext): Promise<StepPlan> {
  const p = plan('enable');
  const f = c.config.fussyd;
  if (f === undefined || !f.enable) return p;
  const unit = UNIT_DIRS.map((d) => `${d}/${UNIT}`).find((u) => lstatSync(c.host(u), { throwIfNoEntry: false })?.isFile() === true);
  const link = `${WANTS}/${UNIT}`;
  if (unit === undefined) {
    p.conflicts.push({ path: `${UNIT_DIRS[0] as string}/${UNIT}`, why: `is not in ${c.root}: the fussy package is not installed there`, fix: 'install the fussy package into the root first (apt-get install ./fussy_VERSION_all.deb inside it), or set enable = no in [fussyd]' });
    return p;
  }
  const at = c.entry(link);
  const st = lstatSync(at, { throwIfNoEntry: false });
  if (st === undefined) {
    p.todo.push(`enable fussyd at boot: ${link} -> ${unit}`);
    p.apply = async () => {
      mkdirSync(dirname(at), { recursive: true, mode: 0o755 });
      symlinkSync(unit, at);
      await fsyncDir(dirname(at));
    };
  } else if (st.isSymbolicLink() && UNIT_DIRS.map((d) => `${d}/${UNIT}`).includes(readlinkSync(at))) {
    p.done.push(`fussyd enabled (${link})`);
  } else {
    p.conflicts.push({ path: link, why: 'is not the link systemctl enable makes', fix: `remove it; provision makes ${link} -> ${unit}` });
  }
  return p;
}
