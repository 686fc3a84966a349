import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const CHILD = fileURLToPath(new URL('./long-lived-child.js', import.meta.url));

interface Report {
  ops: number;
  concurrent: string[];
  rssEarlyMB: number;
  rssEndMB: number;
  threadsStart: number;
  threadsEarly: number;
  threadsEnd: number;
  resourcesStart: string[];
  resourcesEnd: string[];
  children: string[];
}

/**
 * The library in a long-lived process (a daemon): issue 11's "safe in a long-lived process".
 * The operations run in a child of their own, so that what is left over is theirs alone.
 */
describe('the public API in a long-lived process', function () {
  let r: Report;

  before(async function () {
    this.timeout(600_000);
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', CHILD], { maxBuffer: 1 << 20, timeout: 540_000 });
    r = JSON.parse(stdout.trim().split('\n').pop() as string) as Report;
  });

  it('a hundred operations (install, rollback, status, history, clean) and two concurrent installs on different targets all succeed', function () {
    assert.ok(r.ops >= 100, `${r.ops} operations`);
    assert.equal(r.concurrent.length, 2);
  });

  it('RSS after them stays within 30 MB of the RSS after the first rounds', function () {
    assert.ok(r.rssEndMB - r.rssEarlyMB <= 30, `RSS ${r.rssEarlyMB} MB after 20 operations, ${r.rssEndMB} MB after ${r.ops}`);
  });

  it('no thread is left running, and nothing keeps the event loop alive', function () {
    assert.ok(r.threadsEnd <= r.threadsEarly, `threads: ${r.threadsStart} at the start, ${r.threadsEarly} after the first rounds, ${r.threadsEnd} at the end`);
    assert.deepEqual(r.resourcesEnd, r.resourcesStart, 'handles or requests left at the end that were not there at the start');
  });

  it('the only child process left is the idle sync shell that the first install started (docs/api.md)', function () {
    assert.ok(r.children.length <= 1, `children: ${r.children.join('; ')}`);
    for (const c of r.children) assert.match(c, /^sh -c while IFS= read -r d; do if sync -f/);
  });
});
