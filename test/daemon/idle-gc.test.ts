import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connections, IdleCollector } from '../../src/daemon/idle-gc.js';

describe('daemon: one garbage collection when the last connection has closed', function () {
  it('collects once after the delay, not while a connection is open, and not at all without a gc', async function () {
    let runs = 0;
    const c = new IdleCollector(20, () => runs++);
    c.idle();
    await sleep(60);
    assert.equal(runs, 1);
    c.idle();
    c.busy(); // a connection came within the delay
    await sleep(60);
    assert.equal(runs, 1);
    c.idle();
    c.idle(); // closed twice: still one collection
    await sleep(60);
    assert.equal(runs, 2);
    new IdleCollector(1, undefined).idle(); // node without --expose-gc: nothing to call, nothing armed
  });
});

describe('daemon: the open connections', function () {
  it('the last connection to close arms the collection; one still open does not', async function () {
    const { EventEmitter } = await import('node:events');
    let runs = 0;
    const open = new Connections<InstanceType<typeof EventEmitter>>(new IdleCollector(10, () => runs++));
    const [a, b] = [new EventEmitter(), new EventEmitter()];
    open.add(a);
    open.add(b);
    a.emit('close');
    await sleep(40);
    assert.equal(runs, 0);
    assert.deepEqual([...open], [b]);
    b.emit('close');
    await sleep(40);
    assert.equal(runs, 1);
    assert.equal(open.size, 0);
  });
});
