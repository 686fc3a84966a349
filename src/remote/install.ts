import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT_CODES, FussyError, isErrno, type ErrorCode } from '../errors.js';
import type { FussyEvent, InstallResult } from '../index.js';
import { networkError, readJsonAnswer, readNdjson, type RemoteClient } from './client.js';

/**
 * `fussy remote install PACKAGE` over one client (docs/daemon.md, "Firmware upload"): the
 * package's sha256 and size first (the file read once, streamed), then what the device already
 * holds of it, the rest sent from there (streamed from disk), a cut connection resumed a few
 * times with backoff from what the device says it holds, and the install asked for: its events
 * as they come, then the outcome of `fussy install` on the device.
 */

export interface RemoteInstallOptions {
  /** Bytes the device holds of the package while they are sent. */
  onUpload?: (have: number, size: number) => void;
  /** The install's events on the device (phases, progress, hook lines), as they come. */
  onEvent?: (e: FussyEvent) => void;
  /** Times a cut upload is resumed (4), the first after backoffMs (500), doubling. */
  retries?: number;
  backoffMs?: number;
}

export interface RemoteInstallResult {
  sha256: string;
  size: number;
  /** Bytes the device held already when this upload began, and bytes it received now. */
  resumedFrom: number;
  sent: number;
  result: InstallResult;
}

interface UploadState {
  size: number;
  have: number;
  verified: boolean;
}

/** The longest NDJSON line read from the device (its hook lines are cut at 64 KiB). */
const MAX_LINE = 4 * 1024 * 1024;

export async function remoteInstall(c: RemoteClient, file: string, o: RemoteInstallOptions = {}): Promise<RemoteInstallResult> {
  const { sha256, size } = await hashFile(file);
  const retries = o.retries ?? 4;
  let resumedFrom: number | undefined;
  let reached = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const st = await uploadState(c, sha256);
      reached = true;
      const have = st !== undefined && st.size === size ? st.have : 0;
      resumedFrom ??= have;
      if (have >= size) break;
      if ((await sendFrom(c, file, sha256, size, have, o.onUpload)).have >= size) break;
    } catch (err) {
      if (!retryable(err, reached) || attempt >= retries) throw err;
      await sleep((o.backoffMs ?? 500) * 2 ** attempt);
    }
  }
  const from = resumedFrom ?? 0;
  return { sha256, size, resumedFrom: from, sent: size - from, result: await installUpload(c, sha256, o.onEvent) };
}

/**
 * Worth resuming: the connection was cut (UNREACHABLE; or CERT_REFUSED, which a reset right after
 * a new handshake looks like, once the device has answered this certificate), the device holds
 * other bytes than we thought (UPLOAD_OFFSET), or still writes the cut request's (UPLOAD_BUSY).
 */
function retryable(err: unknown, reached: boolean): boolean {
  if (!(err instanceof FussyError)) return false;
  return err.code === 'UNREACHABLE' || err.code === 'UPLOAD_OFFSET' || err.code === 'UPLOAD_BUSY' || (reached && err.code === 'CERT_REFUSED');
}

/** The sha256 and size of a local package, read as a stream. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new FussyError('PACKAGE_UNREADABLE', `${file} is not a regular file`, { hint: 'name a package file (.tar.gz.gpg)' });
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    if (size === 0) throw new FussyError('PACKAGE_UNREADABLE', `${file} is empty`, { hint: 'name a package file (.tar.gz.gpg)' });
    return { sha256: hash.digest('hex'), size };
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EIO')) throw new FussyError('PACKAGE_UNREADABLE', `cannot read the package ${file}: ${err.code}`, { cause: err, hint: 'check the path; nothing was sent' });
    throw err;
  }
}

/** What the device holds of the upload, or undefined when it holds none. */
async function uploadState(c: RemoteClient, sha256: string): Promise<UploadState | undefined> {
  try {
    return (await c.json('GET', `/v1/uploads/${sha256}`)) as unknown as UploadState;
  } catch (err) {
    if (err instanceof FussyError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

/** PUT the package from byte `from` on, streamed from disk; the device's state after it. */
async function sendFrom(c: RemoteClient, file: string, sha256: string, size: number, from: number, onUpload: RemoteInstallOptions['onUpload']): Promise<UploadState> {
  const source = createReadStream(file, { start: from, highWaterMark: 1 << 20 });
  let have = from;
  source.on('data', (chunk) => {
    have += chunk.length;
    onUpload?.(have, size);
  });
  const headers = { 'content-type': 'application/octet-stream', 'content-length': size - from, 'fussy-upload-size': size, 'fussy-upload-offset': from };
  const res = await c.request('PUT', `/v1/uploads/${sha256}`, headers, (req) => {
    pipeline(source, req).catch((err: unknown) => req.destroy(err instanceof Error ? err : new Error(String(err))));
  });
  return (await readJsonAnswer(res, `${c.host}:${c.port}`)) as unknown as UploadState;
}

/** Ask for the install of a whole upload: events to `onEvent`, then the result, or the device's error with its exit status. */
async function installUpload(c: RemoteClient, sha256: string, onEvent: RemoteInstallOptions['onEvent']): Promise<InstallResult> {
  const where = `${c.host}:${c.port}`;
  const res = await c.request('POST', `/v1/uploads/${sha256}/install`, { accept: 'application/x-ndjson' }, (req) => req.end());
  let result: InstallResult | undefined;
  let failure: Record<string, unknown> | undefined;
  try {
    await readNdjson(res, where, MAX_LINE, (m) => {
      if (typeof m.event === 'object' && m.event !== null && typeof (m.event as { type?: unknown }).type === 'string') onEvent?.(m.event as FussyEvent);
      else if (typeof m.result === 'object' && m.result !== null) result = m.result as InstallResult;
      else if (typeof m.error === 'object' && m.error !== null) failure = m.error as Record<string, unknown>;
    });
  } catch (err) {
    if (result !== undefined || failure !== undefined) throw err;
    throw lostOutcome(err, where);
  }
  if (failure !== undefined) throw new DeviceInstallError(failure, where);
  if (result === undefined) throw lostOutcome(undefined, where);
  return result;
}

function lostOutcome(err: unknown, where: string): FussyError {
  const cause = err === undefined ? undefined : networkError(err, where);
  return new FussyError('UNREACHABLE', `${where} closed the connection before the install's outcome${cause instanceof Error ? ` (${cause.message})` : ''}`, {
    cause,
    hint: 'the install goes on on the device regardless: fussy remote status shows the current release and the last transaction',
  });
}

/**
 * The device's install refused or failed: its code when this client knows it (REMOTE_FAILED
 * otherwise, e.g. INTERNAL), and always the exit status the device's `fussy install` gave.
 */
export class DeviceInstallError extends FussyError {
  readonly #exit: number;

  constructor(e: Record<string, unknown>, where: string) {
    const code = typeof e.code === 'string' && e.code in EXIT_CODES ? (e.code as ErrorCode) : 'REMOTE_FAILED';
    super(code, `${where}: ${typeof e.message === 'string' ? e.message : 'the install failed'}`, { hint: typeof e.hint === 'string' ? e.hint : undefined, details: { host: where, deviceCode: e.code } });
    this.#exit = typeof e.exitCode === 'number' && Number.isInteger(e.exitCode) && e.exitCode > 0 && e.exitCode < 256 ? e.exitCode : EXIT_CODES[code];
  }

  override get exitCode(): number {
    return this.#exit;
  }
}
