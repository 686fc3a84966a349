import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ChangeWatch } from '../../src/daemon/file-watch.js';
import { makeTmp } from '../helpers/tmp.js';

/** Polls until `cond` holds (at most 5 s): the watch polls every 20 ms here. */
async function eventually(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 250 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

/** A roles file holding `content` in a temp dir, watched and read once (marked); `changed` lists what the watch reports. */
async function watchedFile(content: string): Promise<{ dir: string; file: string; changed: string[]; w: ChangeWatch }> {
  const dir = await makeTmp();
  const file = join(dir, 'roles.json');
  writeFileSync(file, content);
  const changed: string[] = [];
  const w = new ChangeWatch([file], (f) => changed.push(f));
  w.mark(file);
  return { dir, file, changed, w };
}

describe('ChangeWatch: a settings file changed after fussyd read it is reloaded', function () {
  it('roles-change-before-first-poll: a change between the read and the first poll is seen (fs.watchFile took its baseline at the first poll and lost it)', async function () {
    const { file, changed, w } = await watchedFile('{"admin": ["a"]}'); // read at start
    writeFileSync(file, '{"admin": ["b"]}'); // changed before the watch ever polled
    w.start(20);
    try {
      assert.ok(await eventually(() => changed.length > 0), 'the change was never reported');
      assert.equal(changed[0], file);
    } finally {
      w.stop();
    }
  });

  it('same-size-rewrite: content rewritten at the same size within one clock tick is a change; an untouched file is not', async function () {
    const dir = await makeTmp();
    const file = join(dir, 'crl.pem');
    const other = join(dir, 'roles.json');
    writeFileSync(file, 'AAAA');
    writeFileSync(other, '{}');
    const changed: string[] = [];
    const w = new ChangeWatch([file, other], (f) => changed.push(f));
    w.mark(file);
    w.mark(other);
    writeFileSync(file, 'BBBB'); // same size; mtime may not move within the tick
    w.poll();
    assert.deepEqual(changed, [file]);
    w.mark(file); // reloaded
    w.poll();
    assert.deepEqual(changed, [file], 'nothing changed since the reload');
  });

  it('an editor that renames a new file over it, and a file that goes away, are changes too', async function () {
    const { dir, file, changed, w } = await watchedFile('{"admin": ["a"]}');
    writeFileSync(join(dir, 'new'), '{"admin": ["a"]}'); // the same bytes, another inode
    renameSync(join(dir, 'new'), file);
    w.poll();
    assert.equal(changed.length, 1);
    w.mark(file);
    renameSync(file, join(dir, 'gone'));
    w.poll();
    assert.equal(changed.length, 2);
  });

  it('roles-file-swapped-for-fifo: a watched file replaced by a FIFO is reported as a change, and the poll never blocks on it', async function () {
    const { dir, file, changed, w } = await watchedFile('{}');
    renameSync(file, join(dir, 'old'));
    await execa('mkfifo', [file]);
    w.poll(); // with a plain read this would wait for a writer for ever
    assert.deepEqual(changed, [file]);
  });
});
