/**
 * An engine in a process of its own, for what a test cannot measure or do in its own process:
 * the peak RSS of the engine while a run writes 256 MiB (VmHWM, see test/security/rss-child.ts),
 * and a fussyd SIGKILLed in the middle of a run.
 * Usage: node engine-child.js STATE_DIR big-output   -> one JSON line: the record and RSS in KiB
 *        node engine-child.js STATE_DIR hang          -> one JSON line {runId, pid} once the run runs; then waits
 */
import { readFileSync } from 'node:fs';
import { RunEngine } from '../../../src/daemon/runs/engine.js';
import { ScriptStore } from '../../../src/daemon/scripts.js';

const [stateDir, mode] = process.argv.slice(2) as [string, string];
const trigger = { kind: 'user', cn: 'alice', fingerprint: 'AB:CD' } as const;
const by = { cn: 'alice', fingerprint: 'AB:CD' };
const scripts = await ScriptStore.open(stateDir);
const { engine } = await RunEngine.open({ stateDir, scripts, drainMs: 500 });
const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

if (mode === 'big-output') {
  await scripts.put('warm.sh', Buffer.from('#!/bin/sh\nhead -c 2000000 /dev/zero\n'), by);
  await engine.submit({ script: 'warm.sh', trigger }).done;
  const before = kb('VmHWM');
  await scripts.put('big.sh', Buffer.from('#!/bin/sh\nhead -c 268435456 /dev/zero\n'), by);
  const r = await engine.submit({ script: 'big.sh', trigger }).done;
  const after = kb('VmHWM');
  await engine.close();
  const { head, tail, totalBytes, truncated } = r.output.stdout;
  process.stdout.write(JSON.stringify({ status: r.status, exitCode: r.exitCode, head: head.length, tail: tail.length, zeros: head.every((b) => b === 0) && tail.every((b) => b === 0), totalBytes, truncated, recorded: r.stdout, beforeKb: before, afterKb: after }) + '\n');
} else {
  await scripts.put('hang.sh', Buffer.from('#!/bin/sh\nsleep 1000 &\nsleep 1000\n'), by);
  const run = engine.submit({ script: 'hang.sh', trigger });
  const s = await run.started;
  process.stdout.write(JSON.stringify({ runId: s.runId, pid: s.pid }) + '\n');
  await new Promise(() => setTimeout(() => undefined, 1e9));
}
