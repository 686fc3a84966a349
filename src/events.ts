/**
 * What an operation on a target reports while it runs, the one event type of the API's `onEvent`
 * (docs/api.md). It lives at the bottom, beside errors.ts, so every layer that has something to
 * say (the history, the dedup index, recovery, activation, install) says it in this type.
 */

export type HookPhase = 'pre-install' | 'post-install';

/** A note for the person running the command: a damaged history rebuilt, a waiting lock, ... */
export interface LogEvent {
  type: 'log';
  message: string;
}

export type FussyEvent =
  | { type: 'phase'; phase: 'spool' | 'lock' | 'unpack' | 'commit' | 'activate' }
  | { type: 'progress'; phase: 'unpack'; done: number; total?: number }
  /** A line a hook printed. */
  | { type: 'hook'; phase: HookPhase; release: string; recovery: boolean; line: string }
  /** `current` now points at `release`. */
  | { type: 'switch'; release: string; recovery: boolean }
  /** A failed activation: `release` (the previous one, else failsafe) is enabled again. */
  | { type: 'recover'; release: string; reason: string }
  | LogEvent;

export type OnEvent = (e: FussyEvent) => void;

/** For `const emit = o.onEvent ?? noEvents`. */
export const noEvents: OnEvent = () => {};
