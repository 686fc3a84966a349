import * as openpgp from 'openpgp';
import { Readable } from 'node:stream';
import fs from 'node:fs';
const key = await openpgp.readPrivateKey({ armoredKey: fs.readFileSync('/tmp/fw/sk.asc','utf8') });
async function* gen() { yield Buffer.from('hello'); yield Buffer.from('world'); }
const binary = Readable.toWeb(Readable.from(gen()));
const message = await openpgp.createMessage({ binary, format: 'binary' });
const s = await openpgp.sign({ message, signingKeys: key, format: 'binary' });
let n = 0;
for await (const c of Readable.fromWeb(s)) n += c.length;
console.log('done', n);
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
const m2 = await openpgp.createMessage({ binary: Readable.toWeb(Readable.from(gen())), format: 'binary' });
const s2 = await openpgp.sign({ message: m2, signingKeys: key, format: 'binary' });
const fh = await open('/tmp/fw/x.gpg', 'w');
await pipeline(Readable.fromWeb(s2), fh.createWriteStream({ autoClose: false }));
console.log('done2');
const { parallelGzip } = await import('/work/main/dist/src/pack/parallel-gzip.js');
async function* segs() { yield {data: Buffer.from('abc'), store:false}; }
for await (const b of parallelGzip(segs())) console.log('gz', b.length);
