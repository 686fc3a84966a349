import assert from 'node:assert/strict';
import { parseJsonObject } from '../../src/util/json-object.js';

describe('util/json-object: a JSON object from text, the caller\'s error otherwise', function () {
  const problem = (what: string): Error => new Error(`roles.json ${what}`);

  it('returns the object', function () {
    assert.deepEqual(parseJsonObject('{"admin": ["a"]}', problem), { admin: ['a'] });
  });

  it('text that is not JSON, or JSON that is not an object (array, null, number, string), is the caller\'s error', function () {
    assert.throws(() => parseJsonObject('{"admin": ', problem), /^Error: roles\.json is not JSON \(.+\)$/);
    for (const text of ['[]', 'null', '3', '"x"']) assert.throws(() => parseJsonObject(text, problem), { message: 'roles.json is not a JSON object' }, text);
  });
});
