#!/usr/bin/env node
import { runLauncher } from '../dist/bundle/main.js';

await runLauncher('fussy-install');
