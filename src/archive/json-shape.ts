/** Limits on the structure of a JSON text, checked before JSON.parse builds anything. */
export interface JsonShapeLimits {
  /** Nesting of objects and arrays: 1 is a flat object or array. */
  maxDepth: number;
  /** Members of any one object. */
  maxMembers: number;
  /** Elements of any one array. */
  maxElements: number;
  /** Objects and arrays in the whole text. */
  maxContainers: number;
  /** Values in the whole text (members and elements: one per "," plus one per container). */
  maxValues: number;
  /** Bytes of any one string between its quotes, escapes included. */
  maxString: number;
}

/**
 * Why `text` exceeds `limits`, or undefined. One pass over the bytes, counting brackets and
 * commas outside strings, allocating nothing: what JSON.parse would build (memory grows with the
 * number of values, ~100 bytes per empty object and ~200 per member of one huge object, measured
 * on node 20) is bounded before it is built. The text need not be valid JSON: the counts hold for
 * whatever prefix JSON.parse gets through before it reports the error.
 */
export function jsonShapeProblem(text: Uint8Array, limits: JsonShapeLimits): string | undefined {
  const isObject = new Uint8Array(limits.maxDepth + 1);
  const commas = new Uint32Array(limits.maxDepth + 1);
  let depth = 0;
  let containers = 0;
  let values = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i] as number;
    if (c === 0x22) {
      // A string: skip to its closing quote; a backslash escapes the byte after it.
      const start = i;
      for (i++; i < n; i++) {
        const s = text[i] as number;
        if (s === 0x5c) i++;
        else if (s === 0x22) break;
      }
      if (i - start - 1 > limits.maxString) return `has a string of more than ${limits.maxString} bytes`;
    } else if (c === 0x7b || c === 0x5b) {
      if (depth === limits.maxDepth) return `nests objects and arrays deeper than ${limits.maxDepth} levels`;
      if (++containers > limits.maxContainers) return `holds more than ${limits.maxContainers} objects and arrays`;
      if (++values > limits.maxValues) return `holds more than ${limits.maxValues} values`;
      depth++;
      isObject[depth] = c === 0x7b ? 1 : 0;
      commas[depth] = 0;
    } else if (c === 0x7d || c === 0x5d) {
      if (depth > 0) depth--;
    } else if (c === 0x2c && depth > 0) {
      const members = (commas[depth] as number) + 2; // of this container, counting the one after the comma
      commas[depth] = members - 1;
      if (isObject[depth] === 1 ? members > limits.maxMembers : members > limits.maxElements) {
        return isObject[depth] === 1 ? `has an object with more than ${limits.maxMembers} members` : `has an array with more than ${limits.maxElements} elements`;
      }
      if (++values > limits.maxValues) return `holds more than ${limits.maxValues} values`;
    }
  }
  return undefined;
}
