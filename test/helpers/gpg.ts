import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface GpgHome {
  home: string;
  /** Run gpg in this home; returns stdout, throws with stderr on failure. */
  gpg: (args: string[], input?: string | Buffer) => Promise<{ stdout: Buffer; stderr: string; exitCode: number }>;
}

export async function gpgHome(dir: string, home = join(dir, 'gnupg')): Promise<GpgHome> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const gpg: GpgHome['gpg'] = async (args, input) => {
    const r = await execa('gpg', ['--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      input,
      encoding: 'buffer',
      stripFinalNewline: false,
      reject: false,
      env: { GNUPGHOME: home },
    });
    return { stdout: Buffer.from(r.stdout as Uint8Array), stderr: Buffer.from(r.stderr as Uint8Array).toString(), exitCode: r.exitCode ?? -1 };
  };
  return { home, gpg };
}

/** gpg --quick-gen-key: an Ed25519 signing key with a Curve25519 encryption subkey, as gpg makes them. */
export async function gpgGenKey(g: GpgHome, uid: string): Promise<string> {
  const r = await g.gpg(['--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  if (r.exitCode !== 0) throw new Error(`gpg --quick-gen-key failed: ${r.stderr}`);
  const fpr = await fingerprintOf(g, uid);
  const s = await g.gpg(['--quick-add-key', fpr, 'cv25519', 'encr', 'never']);
  if (s.exitCode !== 0) throw new Error(`gpg --quick-add-key failed: ${s.stderr}`);
  return fpr;
}

export async function fingerprintOf(g: GpgHome, uid: string): Promise<string> {
  const r = await g.gpg(['--with-colons', '--list-keys', uid]);
  const line = r.stdout.toString().split('\n').find((l) => l.startsWith('fpr:'));
  if (line === undefined) throw new Error(`no key ${uid}: ${r.stderr}`);
  return line.split(':')[9] as string;
}

/** `--status-fd` tokens of a gpg run, e.g. GOODSIG, VALIDSIG, DECRYPTION_OKAY. */
export function statusTokens(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice(9));
}
