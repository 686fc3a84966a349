import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { FussyError } from '../errors.js';
import type { FussyEvent } from '../events.js';
import { permissionProblem } from '../util/system-error.js';
import { loadProvisionConfig } from './config.js';
import { enableStep } from './enable-step.js';
import { failsafeStep, firmwareStep, sha256File } from './firmware-step.js';
import { fussydStep } from './fussyd-step.js';
import { devicePublicKeyFile, keyringStep } from './keyring-step.js';
import { linksStep } from './links-step.js';
import { stepContext, type Conflict, type StepContext, type StepName, type StepPlan } from './step.js';

export type { Conflict, StepName };

export interface ProvisionOptions {
  /** The provisioning config (docs/provision.md). */
  config: string;
  /** The root file system to make a device of; `/` is the running system. */
  root: string;
  /** Only plan: report what is done and what would be done, change nothing. */
  dryRun?: boolean;
  /** Overrides the config's `[device] name`: one config for a batch of units. */
  deviceName?: string;
  /** The clock of the keys, certificates and history; default now. */
  now?: Date;
  /** The factory install's events (hook output, progress). */
  onEvent?: (e: FussyEvent) => void;
  /** Each step as it finishes (or, with dryRun, as it is planned). */
  onStep?: (s: ProvisionStep) => void;
}

export interface ProvisionStep {
  step: StepName;
  /** What was already as the config says. */
  done: string[];
  /** What this run did (with dryRun: would do). */
  changed: string[];
}

export interface ProvisionResult {
  root: string;
  config: string;
  device: string;
  dryRun: boolean;
  steps: ProvisionStep[];
  /** How many things this run changed (with dryRun: would change); 0: the root was provisioned already. */
  changes: number;
  /** The device's public key for the build server (fussy pack -e), when the config makes a device key. */
  devicePublicKey?: string;
}

const STEPS: readonly [StepName, (c: StepContext) => Promise<StepPlan>][] = [
  ['keyring', keyringStep],
  ['firmware', firmwareStep],
  ['failsafe', failsafeStep],
  ['link-tree', linksStep],
  ['fussyd', fussydStep],
  ['enable', enableStep],
];

/**
 * `fussy provision` (docs/provision.md): turn a root file system into a fussy device as its
 * config declares. Every step is planned first, reading only; anything in the root that differs
 * from the config stops it there with every such thing named (PROVISION_CONFLICT) and nothing
 * changed. Then the steps run in order, each planned again just before it runs (a step sees what
 * the ones before it made), each doing only what is not done yet: a second run changes nothing,
 * and a run stopped half way (a hook failed, the disk filled) is finished by running it again.
 */
export async function provision(o: ProvisionOptions): Promise<ProvisionResult> {
  const config = loadProvisionConfig(o.config, o.deviceName);
  const root = resolve(o.root);
  if (lstatSync(root, { throwIfNoEntry: false })?.isDirectory() !== true) {
    throw new FussyError('TARGET_MISSING', `the root ${root} is not a directory`, { hint: 'give the root file system to provision (debootstrap makes one), or / for this system' });
  }
  let sha: Promise<string> | undefined;
  const pending = new Set<StepName>();
  const c = stepContext(config, root, { now: o.now, onEvent: o.onEvent, pending: (s) => pending.has(s), packageSha256: () => (sha ??= sha256File(config.firmware.package)) });
  const plans: StepPlan[] = [];
  for (const [name, step] of STEPS) {
    const p = await step(c);
    plans.push(p);
    if (p.todo.length > 0) pending.add(name);
  }
  const conflicts = plans.flatMap((p) => p.conflicts.map((x) => ({ step: p.step, ...x })));
  if (conflicts.length > 0) throw conflictError(conflicts, root);
  const result = (steps: ProvisionStep[], dryRun: boolean): ProvisionResult => ({
    root,
    config: config.file,
    device: config.device.name,
    dryRun,
    steps,
    changes: steps.reduce((n, s) => n + s.changed.length, 0),
    devicePublicKey: config.keyring.deviceKey ? devicePublicKeyFile(c) : undefined,
  });
  if (o.dryRun === true || pending.size === 0) {
    const steps = plans.map((p) => ({ step: p.step, done: p.done, changed: p.todo }));
    for (const s of steps) o.onStep?.(s);
    return result(steps, o.dryRun === true);
  }
  const steps: ProvisionStep[] = [];
  for (const [i, [name, step]] of STEPS.entries()) {
    try {
      const p = i === 0 ? (plans[0] as StepPlan) : await step(c);
      if (p.conflicts.length > 0) throw new FussyError('PROVISION_CONFLICT', p.conflicts.map((x) => `${x.path} ${x.why}; ${x.fix}`).join('; '), { details: { conflicts: p.conflicts } });
      await p.apply?.();
      steps.push({ step: name, done: p.done, changed: p.todo });
    } catch (err) {
      throw stoppedAt(name, err, steps, STEPS.slice(i).map(([n]) => n), root);
    }
    pending.delete(name);
    o.onStep?.(steps[steps.length - 1] as ProvisionStep);
  }
  return result(steps, false);
}

function conflictError(conflicts: (Conflict & { step: StepName })[], root: string): FussyError {
  const list = conflicts.map((x) => `${x.step}: ${x.path} ${x.why}; ${x.fix}`);
  return new FussyError('PROVISION_CONFLICT', `${conflicts.length === 1 ? '1 thing' : `${conflicts.length} things`} in ${root} ${conflicts.length === 1 ? 'differs' : 'differ'} from the config, and provision never overwrites:\n  ${list.join('\n  ')}`, {
    hint: 'nothing was changed; fix each one and run again (--dry-run shows the plan)',
    details: { conflicts },
  });
}

/** A step failed: the cause's code, with what is done and what is left in the message. */
function stoppedAt(step: StepName, err: unknown, done: ProvisionStep[], left: StepName[], root: string): unknown {
  const e = permissionProblem(err);
  if (!(e instanceof FussyError)) return e;
  const did = done.filter((s) => s.changed.length > 0).map((s) => s.step);
  const what = did.length === 0 ? 'nothing was changed before it' : `done before it: ${did.join(', ')}`;
  return new FussyError(e.code, `provision of ${root} stopped at ${step}: ${e.message}${e.hint === undefined ? '' : ` (${e.hint})`}`, {
    cause: err,
    hint: `${what}; not done: ${left.join(', ')}. Fix the cause and run the same fussy provision again: what is done is checked and kept`,
    details: { ...(e.details ?? {}), step, done: did, left },
  });
}
