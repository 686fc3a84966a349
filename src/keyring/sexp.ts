/** An S-expression: an atom (its bytes) or a list. */
export type Sexp = Buffer | Sexp[];

const SPACE = /\s/;
const TOKEN = /[A-Za-z0-9\-./_:*+=]/;

/**
 * Parse one S-expression as libgcrypt writes them (Rivest's draft-rivest-sexp): the canonical
 * form (`(3:rsa(1:n3:...))`, gpg-agent key files before the extended key format) and the
 * advanced form (tokens, "strings", #hex#, |base64|, line breaks anywhere), which is how the
 * `Key:` field of gpg-agent's extended key format holds it. Undefined for anything else,
 * including display hints, which key files do not use.
 */
export function parseSexp(text: Buffer): Sexp | undefined {
  let i = 0;
  const skip = (): void => {
    while (i < text.length && SPACE.test(String.fromCharCode(text[i] ?? 0))) i++;
  };
  const until = (end: string): string | undefined => {
    const stop = text.indexOf(end, i);
    if (stop < 0) return undefined;
    const body = text.subarray(i, stop).toString('latin1');
    i = stop + 1;
    return body;
  };
  const atom = (): Buffer | undefined => {
    const c = String.fromCharCode(text[i] ?? 0);
    if (/[0-9]/.test(c)) {
      const colon = /^[0-9]+:/.exec(text.subarray(i, i + 12).toString('latin1'));
      if (colon === null) return undefined; // a length before #hex#, |b64| or "str": not written by gpg-agent
      const start = i + colon[0].length;
      const end = start + Number(colon[0].slice(0, -1));
      if (end > text.length) return undefined;
      i = end;
      return text.subarray(start, end);
    }
    i++;
    if (c === '#') {
      const hex = until('#')?.replace(/\s+/g, '');
      return hex !== undefined && /^([0-9A-Fa-f]{2})*$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
    }
    if (c === '|') {
      const b64 = until('|')?.replace(/\s+/g, '');
      return b64 !== undefined && /^[A-Za-z0-9+/]*=*$/.test(b64) ? Buffer.from(b64, 'base64') : undefined;
    }
    if (c === '"') {
      const str = until('"');
      // Escapes (\" \n \xHH ...) do not occur in the strings gpg-agent writes (curve names, dates).
      return str === undefined || str.includes('\\') ? undefined : Buffer.from(str, 'latin1');
    }
    if (!TOKEN.test(c) || /[0-9]/.test(c)) return undefined;
    const start = i - 1;
    while (i < text.length && TOKEN.test(String.fromCharCode(text[i] ?? 0))) i++;
    return text.subarray(start, i);
  };
  const stack: Sexp[][] = [];
  for (;;) {
    skip();
    if (i >= text.length) return undefined;
    const c = text[i];
    if (c === 0x28) {
      i++;
      stack.push([]);
      continue;
    }
    let value: Sexp | undefined;
    if (c === 0x29) {
      i++;
      value = stack.pop();
    } else {
      value = atom();
    }
    if (value === undefined) return undefined;
    const parent = stack[stack.length - 1];
    if (parent === undefined) return Array.isArray(value) ? value : undefined;
    parent.push(value);
  }
}

/** The list in `list` whose first atom is `name`, as `(name ...)`. */
export function sexpFind(list: Sexp, name: string): Sexp[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.find((e): e is Sexp[] => Array.isArray(e) && Buffer.isBuffer(e[0]) && e[0].toString('latin1') === name);
}
