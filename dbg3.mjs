import { pack } from '/work/main/dist/src/pack/pack.js';
setInterval(() => {}, 1000).unref();
const r = await pack({ source: '/tmp/fw/small/fw-small', output: '/tmp/fw/out2/', signingKeyFiles: ['/tmp/fw/sk.asc'], tmpDir: '/tmp', onEvent: (e) => console.log(e) });
console.log(r);
