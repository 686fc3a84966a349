import type { Failure } from './runner.js';

/**
 * Failures the fuzzer finds that are known and not fixed yet, recognised by layer, mutation and
 * symptom: the test reports them but passes. FUSSY_FUZZ_STRICT=1 fails on them too. Each entry
 * is an open defect: fix it and remove the entry.
 */
const KNOWN: Array<{ issue: string; layer?: Array<Failure['layer']>; mutation?: RegExp; symptom: RegExp }> = [];

export function knownIssue(f: Failure): string | undefined {
  return KNOWN.find((k) => (k.layer === undefined || k.layer.includes(f.layer)) && (k.mutation === undefined || k.mutation.test(f.mutation.join('; '))) && k.symptom.test(f.symptom))?.issue;
}
