/**
 * A JSON object from text (a settings file, a request body): `problem` makes the error to throw
 * from what is wrong, "is not JSON (the parser's message)" or "is not a JSON object", so each
 * caller keeps its own code, subject and hint.
 */
export function parseJsonObject(text: string, problem: (what: string) => Error): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw problem(`is not JSON (${err.message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw problem('is not a JSON object');
  return json as Record<string, unknown>;
}
