import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultHosts } from '../../../src/daemon/runs/run-script.js';
import { useTmp } from '../../helpers/tmp.js';
import { BY, openEngine, python3, runOnce, text } from './helpers.js';

describe('daemon runs: js run(ctx) and Viri ViriScript scripts, their results and __base__ (Viri §8)', function () {
  const tmp = useTmp();

  it('a js run(ctx) returns JSON on its own channel; stdout stays the script\'s; ctx has data dir, firmware, device, args and __base__\'s exports', async function () {
    const target = join(tmp.dir, 'target');
    await mkdir(join(target, 'rel-1'), { recursive: true });
    const { symlink } = await import('node:fs/promises');
    await symlink('rel-1', join(target, 'current'));
    const { engine, scripts } = await openEngine(join(tmp.dir, 'state'), { target, device: { hostname: 'dev-1' } });
    await scripts.put('__base__.mjs', Buffer.from('export const greet = (n) => `hello ${n}`;\n'), BY);
    const body = 'export async function run(ctx) {\n  console.log("printed");\n  return { dataDir: ctx.dataDir, firmwareDir: ctx.firmwareDir, host: ctx.device.hostname, args: ctx.args, greeting: ctx.base.greet(ctx.args[0]) };\n}\n';
    const r = await runOnce(engine, scripts, 'probe.mjs', body, { args: ['bob'] });
    assert.deepEqual([r.status, r.exitCode, text(r.output.stdout.head)], ['exited', 0, 'printed\n']);
    assert.deepEqual(r.result, { dataDir: join(tmp.dir, 'state', 'data'), firmwareDir: join(target, 'rel-1'), host: 'dev-1', args: ['bob'], greeting: 'hello bob' });
    assert.deepEqual(engine.history.get(r.runId)?.result, r.result);
    await engine.close();
  });

  it('a js run(ctx) that throws gives its message and stack back, exit 1', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const r = await runOnce(engine, scripts, 'boom.js', 'exports.run = function run() { throw new Error("disk on fire"); };\n');
    assert.deepEqual([r.status, r.exitCode, r.output.error?.message], ['exited', 1, 'disk on fire']);
    assert.match(r.output.error?.stack ?? '', /boom\.js:1/);
    assert.equal(engine.history.get(r.runId)?.error, 'disk on fire');
    await engine.close();
  });

  it('a js run(ctx) returning what JSON cannot hold is an error naming it', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const r = await runOnce(engine, scripts, 'big.mjs', 'export const run = () => 10n;\n');
    const f = await runOnce(engine, scripts, 'fn.mjs', 'export const run = () => () => 1;\n');
    assert.match(r.output.error?.message ?? '', /JSON cannot hold: .*BigInt/);
    assert.match(f.output.error?.message ?? '', /returned a function, which JSON cannot hold/);
    await engine.close();
  });

  describe('Viri scripts (python3)', function () {
    const py = python3();
    before(function () {
      if (py === undefined) {
        console.log('      (skipped: no python3 on the run PATH)');
        this.skip();
      }
    });
    const hosts = (): ReturnType<typeof defaultHosts> => ({ ...defaultHosts(), python: py as string });

    it('a ViriScript without __base__.py: run(*args) returns JSON, a non-JSON value as its repr, data_dir set', async function () {
      const { engine, scripts } = await openEngine(tmp.dir, { hosts: hosts() });
      const r = await runOnce(engine, scripts, 'hello.py', 'class ViriScript:\n    def run(self, *args):\n        print("out")\n        return {"args": list(args), "dir": self.data_dir}\n', { args: ['a', 'b'] });
      const s = await runOnce(engine, scripts, 'set.py', 'class ViriScript:\n    def run(self):\n        return {1, 2}\n');
      assert.deepEqual([r.status, r.exitCode, text(r.output.stdout.head)], ['exited', 0, 'out\n']);
      assert.deepEqual(r.result, { args: ['a', 'b'], dir: join(tmp.dir, 'data') });
      assert.equal(s.result, '{1, 2}');
      await engine.close();
    });

    it('with __base__.py: base members are inherited, the script\'s win, the context wins over both', async function () {
      const { engine, scripts } = await openEngine(tmp.dir, { hosts: hosts(), conf: { site: 'lab' } });
      await scripts.put('__base__.py', Buffer.from('class ViriScript:\n    data_dir = "base"\n    def who(self):\n        return "base"\n    def helper(self):\n        return "helped"\n'), BY);
      const r = await runOnce(engine, scripts, 'child.py', 'class ViriScript:\n    def who(self):\n        return "script"\n    def run(self):\n        return [self.who(), self.helper(), self.data_dir, self.conf["site"]]\n');
      assert.deepEqual(r.result, ['script', 'helped', join(tmp.dir, 'data'), 'lab']);
      await engine.close();
    });

    it("Viri's refusals: 'Script does not have a ViriScript class', 'ViriScript class does not have a run method'; a raise gives the traceback", async function () {
      const { engine, scripts } = await openEngine(tmp.dir, { hosts: hosts() });
      await scripts.put('__base__.py', Buffer.from('class ViriScript:\n    pass\n'), BY);
      const noClass = await runOnce(engine, scripts, 'noclass.py', '"""\nclass ViriScript: only described here\n"""\nX = 1\n');
      const noRun = await runOnce(engine, scripts, 'norun.py', 'class ViriScript:\n    pass\n');
      const raises = await runOnce(engine, scripts, 'raises.py', 'class ViriScript:\n    def run(self):\n        raise ValueError("bad input")\n');
      assert.deepEqual([noClass.exitCode, noClass.output.error?.message], [2, 'Script does not have a ViriScript class']);
      assert.deepEqual([noRun.exitCode, noRun.output.error?.message], [2, 'ViriScript class does not have a run method']);
      assert.deepEqual([raises.exitCode, raises.output.error?.message], [1, 'ValueError: bad input']);
      assert.match(raises.output.error?.stack ?? '', /Traceback[\s\S]*raises\.py", line 3/);
      // A .py without the class is no Viri script: it needs its own "#!" like any executable.
      const plain = await runOnce(engine, scripts, 'plain.py', 'print("hi")\n');
      assert.equal(plain.status, 'not-started');
      const shebang = await runOnce(engine, scripts, 'tool.py', `#!${py as string}\nprint("hi")\n`);
      assert.equal(text(shebang.output.stdout.head), 'hi\n');
      await engine.close();
    });
  });
});
