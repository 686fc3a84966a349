#!/usr/bin/env node
import { runLauncher } from '../dist/src/cli/main.js';

await runLauncher('fussy-clean');
