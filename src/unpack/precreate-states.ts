/** Per-file states shared by precreate.ts and precreate-worker.ts (an Int32Array). */
export const FREE = 0;
export const WORKER = 1;
export const CREATED = 2;
export const FAILED = 3;
export const MAIN = 4;
/** How many files the worker may create ahead of the main thread. */
export const LOOKAHEAD = 256;
