#!/usr/bin/env node
// CommonJS like the other launchers (bin/package.json); fussyd's bundle is ES modules.
import('../dist/bundle/fussyd.js').then((m) => m.runFussyd());
