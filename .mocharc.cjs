'use strict';
// Mocha runs the test files three at a time (two cores, and many tests wait on child processes).
// The longest files are handed out first, so that they do not end up alone at the end of the
// run; then the rest in path order. A test (test/meta/mocharc.test.ts) checks every test file is
// listed exactly once.
const { readdirSync } = require('node:fs');
const { join } = require('node:path');

const DIR = 'dist/test';
const LONGEST_FIRST = ['daemon/schedule-realtime', 'fuzz/mutation-fuzz', 'security/unsigned-bounds', 'daemon/remote-install', 'txn/crash-safety', 'cli/install-interrupted', 'demo/demo'].map((f) => `${DIR}/${f}.test.js`);

function testFiles() {
  try {
    return readdirSync(DIR, { recursive: true })
      .filter((f) => f.endsWith('.test.js'))
      .map((f) => join(DIR, f))
      .sort();
  } catch (err) {
    if (err.code === 'ENOENT') return []; // not built yet: mocha says no test files were found
    throw err;
  }
}

const all = testFiles();
module.exports = {
  spec: [...LONGEST_FIRST.filter((f) => all.includes(f)), ...all.filter((f) => !LONGEST_FIRST.includes(f))],
  longestFirst: LONGEST_FIRST,
  timeout: 120000,
  reporter: './test/reporter.cjs',
  parallel: true,
  jobs: 3,
};
