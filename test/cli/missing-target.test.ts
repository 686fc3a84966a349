import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { history, status } from '../../src/index.js';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';

/** Issue 11: `fussy history -t /typo` said "0 records" and exited 0. */
describe('a target that does not exist is an error for the reading commands too', function () {
  for (const command of ['history', 'status']) {
    it(`history-missing-target: fussy ${command} -t on a mistyped path exits 40 naming it, as install and clean do`, async function () {
      const typo = join(await makeTmp(), 'typo');
      const r = await cli('fussy', [command, '-t', typo]);
      assert.equal(r.exitCode, 40, r.stderr);
      assert.match(r.stderr, new RegExp(`^fussy ${command}: target ${typo} does not exist or is not a directory\n {2}hint: `));
    });
  }

  it('history-missing-target: the API refuses a file where the target directory should be, as status does', async function () {
    const file = join(await makeTmp(), 'file');
    await writeFile(file, 'not a directory\n');
    await assert.rejects(history({ target: file }), { code: 'TARGET_MISSING', message: `target ${file} does not exist or is not a directory` });
    await assert.rejects(status({ target: file }), { code: 'TARGET_MISSING', message: `target ${file} does not exist or is not a directory` });
  });
});
