import assert from 'node:assert/strict';

describe('package exports: the public API by the package name', function () {
  it("import('fussy') gives every operation and FussyError, and nothing else is needed to call them", async function () {
    const api = (await import('fussy')) as Record<string, unknown>;
    for (const name of ['pack', 'install', 'rollback', 'clean', 'recover', 'status', 'verify', 'history', 'linkTree', 'withLock', 'keygen', 'pkiInit', 'pkiIssue', 'pkiRevoke', 'pkiCrl', 'pkiList', 'inspectKeys']) {
      assert.equal(typeof api[name], 'function', name);
    }
    const { FussyError } = api as { FussyError: new (code: string, message: string) => Error & { code: string; exitCode: number } };
    const e = new FussyError('LOCKED', 'busy');
    assert.equal(e.code, 'LOCKED');
    assert.equal(e.exitCode, 75);
  });

  it("import('fussy/provision') gives provision, the program built on the API", async function () {
    const mod = (await import('fussy/provision')) as Record<string, unknown>;
    assert.equal(typeof mod.provision, 'function');
  });
});
