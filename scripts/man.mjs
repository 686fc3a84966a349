/**
 * Writes the man pages (dist/man/*.1, *.5, *.8) from the commands' own definitions
 * (src/cli/man-pages.ts): `npm run build` runs it, the packages install the result. The date on
 * the pages is SOURCE_DATE_EPOCH's when set (reproducible packages), else today's.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { manPages } from '../dist/src/cli/man-pages.js';

const root = new URL('../', import.meta.url).pathname;
const out = `${root}dist/man/`;
const epoch = process.env.SOURCE_DATE_EPOCH;
const date = (epoch === undefined ? new Date() : new Date(Number(epoch) * 1000)).toISOString().slice(0, 10);
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
for (const p of manPages(date)) await writeFile(`${out}${p.file}`, p.text);
