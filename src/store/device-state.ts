import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { writeAtomic } from '../util/fs-atomic.js';

/** In the state dir: what the device remembers across installs (downgrade protection). */
export const STATE = 'state.json';

export interface DeviceState {
  /** The highest manifest `sequence` ever installed and enabled here. */
  highestSequence?: number;
}

export async function readDeviceState(stateDir: string): Promise<DeviceState> {
  const file = join(stateDir, STATE);
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as DeviceState;
    if (s.highestSequence !== undefined && !Number.isSafeInteger(s.highestSequence)) throw new SyntaxError('highestSequence is not a whole number');
    return s;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {};
    if (err instanceof SyntaxError) {
      // Written atomically by fussy only: damage. Guessing could let a downgrade through.
      throw new FussyError('STATE_UNREADABLE', `${file} is unreadable (${err.message})`, { hint: `restore it, or remove it to forget the recorded sequence (downgrade protection starts over)` });
    }
    throw err;
  }
}

/** Record that a release with `sequence` was enabled: the highest one is kept (atomic, durable). */
export async function recordSequence(stateDir: string, sequence: number): Promise<void> {
  const s = await readDeviceState(stateDir);
  if (s.highestSequence !== undefined && s.highestSequence >= sequence) return;
  await writeAtomic(join(stateDir, STATE), JSON.stringify({ ...s, highestSequence: sequence }) + '\n');
}
