/**
 * Imported first by fussy's programs (the CLI, fussyd, its install child, the decryption worker),
 * never by the library: Node 20.19 (Debian 13's nodejs) marks WebCrypto's Ed25519 and X25519 as
 * experimental and prints an ExperimentalWarning to stderr the first time openpgp uses them
 * (Node 20.20 no longer does). It tells an operator nothing they can act on, and it would land in
 * every install log and every run's output. Only that warning is dropped; every other one is
 * printed as Node prints it.
 */
const emit = process.emitWarning.bind(process);

process.emitWarning = ((warning: string | Error, ...rest: unknown[]): void => {
  const first = rest[0];
  const type = typeof first === 'string' ? first : (first as { type?: string } | undefined)?.type;
  const text = typeof warning === 'string' ? warning : warning.message;
  if ((type === 'ExperimentalWarning' || (warning instanceof Error && warning.name === 'ExperimentalWarning')) && text.includes('Web Crypto API algorithm')) return;
  (emit as (...a: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
