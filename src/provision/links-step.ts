import { lstatSync } from 'node:fs';
import { FussyError } from '../errors.js';
import { linkTree } from '../index.js';
import { plan, type StepContext, type StepPlan } from './step.js';

/**
 * `[link-tree]`: fussy link-tree for each entry, reading the tree inside the root and spelling
 * the links as the device will see them (`/etc/x -> /opt/firmware/current/etc/x`). Before the
 * firmware is installed its trees are not there to plan from: the entry is planned "after the
 * firmware" and checked again when its turn comes, so a conflict then stops provision with the
 * firmware installed and says so.
 */
export async function linksStep(c: StepContext): Promise<StepPlan> {
  const p = plan('link-tree');
  const runs: (() => Promise<unknown>)[] = [];
  for (const { source, dest } of c.config.links) {
    const from = c.host(source);
    const to = c.host(dest);
    if (lstatSync(from, { throwIfNoEntry: false }) === undefined) {
      if (c.pending('firmware')) p.todo.push(`link the files of ${source} into ${dest} (once the firmware is installed)`);
      else p.conflicts.push({ path: source, why: 'does not exist in the installed firmware', fix: 'fix [link-tree] in the config, or the firmware' });
      continue;
    }
    const o = { source: from, linkTo: source, dest: to, force: c.config.linkReplace };
    try {
      const r = await linkTree({ ...o, dryRun: true });
      const links = r.steps.filter((s) => s.action === 'link' || s.action === 'replace');
      const aside = r.steps.filter((s) => s.action === 'replace').length;
      if (links.length === 0) p.done.push(`${dest}: ${files(r.steps.filter((s) => s.action === 'unchanged').length)} linked to ${source}`);
      else {
        p.todo.push(`link ${files(links.length)} of ${source} into ${dest}${aside > 0 ? ` (${aside} moved aside to NAME.fussy-orig)` : ''}`);
        runs.push(() => linkTree(o));
      }
    } catch (err) {
      if (!(err instanceof FussyError) || err.code !== 'LINK_CONFLICT') throw err;
      const conflicts = ((err.details as { conflicts?: string[] } | undefined)?.conflicts ?? []).map(c.device);
      p.conflicts.push({ path: dest, why: conflicts.length > 0 ? `holds ${conflicts.length === 1 ? '1 entry that differs' : `${conflicts.length} entries that differ`} from the links to ${source}: ${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', ...' : ''}` : err.message, fix: 'set replace = yes in [link-tree] to move them aside to NAME.fussy-orig, or remove them' });
    }
  }
  // Planned again just before it runs (provision.ts), when the firmware's trees are there.
  if (runs.length > 0) {
    p.apply = async () => {
      for (const run of runs) await run();
    };
  }
  return p;
}

const files = (n: number): string => (n === 1 ? '1 file' : `${n} files`);
