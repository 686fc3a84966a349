#!/usr/bin/env node
import { launch } from '../dist/bundle/launch.js';

await launch('fussy');
