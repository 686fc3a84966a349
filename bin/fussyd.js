#!/usr/bin/env node
import { runFussyd } from '../dist/bundle/fussyd.js';

await runFussyd();
