import { walkTree } from '/work/main/dist/src/pack/walk.js';
import { digestFiles } from '/work/main/dist/src/pack/digest-files.js';
import { buildManifest } from '/work/main/dist/src/pack/build-manifest.js';
import { tarStream } from '/work/main/dist/src/pack/tar-stream.js';
import { parallelGzip } from '/work/main/dist/src/pack/parallel-gzip.js';
const walk = await walkTree('/tmp/fw/small/fw-small');
console.log(walk.map(w => w.path));
const digests = await digestFiles(walk);
const manifest = buildManifest({ release: 'fw-small', walk, digests, date: new Date() });
let n = 0;
for await (const s of tarStream({ release: 'fw-small', manifest, walk, incompressible: new Set() })) { n += s.data.length; console.log('seg', s.data.length); }
console.log('tar', n);
import { signWithOpenpgp, packConfig } from '/work/main/dist/src/pack/sign-stream.js';
import * as openpgp from 'openpgp';
import fs from 'node:fs';
const key = await openpgp.readPrivateKey({ armoredKey: fs.readFileSync('/tmp/fw/sk.asc','utf8') });
const out = fs.createWriteStream('/tmp/fw/y.gpg');
for (const repro of [true, false]) {
  const t = setTimeout(() => console.log('STUCK', repro), 3000);
  await signWithOpenpgp(parallelGzip(tarStream({ release: 'fw-small', manifest, walk, incompressible: new Set() })), fs.createWriteStream('/tmp/fw/y.gpg'), { signingKeys: [key], encryptionKeys: [], filename: 'x.tar.gz', date: new Date(), reproducible: repro });
  clearTimeout(t); console.log('ok', repro);
}
