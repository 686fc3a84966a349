#!/usr/bin/env node
// CommonJS (bin/package.json): node starts without its ES module loader (docs/performance.md, "Start-up").
require('../dist/bundle/launch.cjs').launch('fussy-install');
