import { pack } from '/work/main/dist/src/pack/pack.js';
const t0 = Date.now();
const r = await pack({ source: process.argv[2], output: '/tmp/fw/out3/', signingKeyFiles: ['/tmp/fw/sk.asc'], tmpDir: '/tmp', level: process.argv[3] ? +process.argv[3] : undefined, unsigned: process.argv[4] === 'u', onEvent: (e) => { if (e.type === 'phase') console.log(e.phase, Date.now() - t0); } });
console.log('end', Date.now() - t0, r.bytes);
