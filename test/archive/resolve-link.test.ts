import assert from 'node:assert/strict';
import { resolveLink, type NodeKind } from '../../src/archive/resolve-link.js';

function tree(entries: Record<string, string | 'dir' | 'file'>): (p: string) => NodeKind | undefined {
  return (p) => {
    const v = entries[p];
    if (v === undefined) return undefined;
    if (v === 'dir' || v === 'file') return { type: v === 'dir' ? 'directory' : 'file' };
    return { type: 'symlink', target: v };
  };
}

describe('resolveLink: symlinks resolved the way the kernel will, inside the release', function () {
  it('follows a shared-library chain to the real file', function () {
    const t = tree({ lib: 'dir', 'lib/libfoo.so.1.2': 'file', 'lib/libfoo.so.1': 'libfoo.so.1.2', 'lib/libfoo.so': 'libfoo.so.1' });
    assert.deepEqual(resolveLink('lib/libfoo.so', 'libfoo.so.1', t), { inside: true, path: 'lib/libfoo.so.1.2', loop: false });
  });

  it('allows dangling links that stay inside', function () {
    assert.equal(resolveLink('opt/app/dangling', 'file-missing', tree({ opt: 'dir', 'opt/app': 'dir' })).inside, true);
  });

  it('refuses absolute targets and .. above the root', function () {
    assert.equal(resolveLink('etc/x', '/etc/passwd', tree({})).inside, false);
    assert.equal(resolveLink('etc/x', '../../x', tree({ etc: 'dir' })).inside, false);
    assert.equal(resolveLink('x', '..', tree({})).inside, false);
  });

  it('refuses a chain whose intermediate link climbs out (a/b/escape -> c/up/../..)', function () {
    const t = tree({ a: 'dir', 'a/b': 'dir', 'a/b/c': 'dir', 'a/b/c/up': '../..', 'a/b/escape': 'c/up/../..' });
    assert.equal(resolveLink('a/b/c/up', '../..', t).inside, true);
    assert.equal(resolveLink('a/b/escape', 'c/up/../..', t).inside, false);
  });

  it('refuses a chain through a link to an absolute path', function () {
    const t = tree({ etc: 'dir', 'etc/root': '/', 'etc/x': 'root/etc' });
    assert.equal(resolveLink('etc/x', 'root/etc', t).inside, false);
  });

  it('reports loops instead of following them forever', function () {
    const t = tree({ a: 'b', b: 'a' });
    assert.deepEqual(resolveLink('a', 'b', t).loop, true);
  });
});
