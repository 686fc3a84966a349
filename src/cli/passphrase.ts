import { readFile } from 'node:fs/promises';
import { FussyError, isErrno } from '../errors.js';
import { permissionDenied } from '../util/system-error.js';
import type { PassphraseSource } from '../keyring/signing-keys.js';
import type { Io } from './io.js';

/**
 * Where a passphrase comes from, in order: --passphrase-file (first line), $FUSSY_PASSPHRASE,
 * else a prompt on the terminal (no echo). Undefined when none is available: the caller then
 * reports which key needed one.
 */
export async function passphraseSource(io: Io, file: string | undefined): Promise<PassphraseSource | undefined> {
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'EACCES')) throw permissionDenied(err, `cannot read passphrase file ${file}: ${err.code}`, { path: file, need: 'read' });
      if (isErrno(err, 'ENOENT', 'EISDIR')) {
        throw new FussyError('BAD_PASSPHRASE', `cannot read passphrase file ${file}: ${err.code}`, { cause: err, hint: 'check the path given to --passphrase-file' });
      }
      throw err;
    }
    const pass = text.split(/\r?\n/)[0] ?? '';
    return async () => pass;
  }
  const env = io.env.FUSSY_PASSPHRASE;
  if (env !== undefined) return async () => env;
  if (io.stdin.isTTY && io.stdin.setRawMode !== undefined) return (what) => promptHidden(io, `Passphrase for ${what}: `);
  return undefined;
}

export function promptHidden(io: Io, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = io.stdin;
    io.stderr.write(prompt);
    stdin.setRawMode?.(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error): void => {
      stdin.setRawMode?.(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new FussyError('PROMPT_INTERRUPTED', 'interrupted at the passphrase prompt'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
