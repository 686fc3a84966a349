import { walkTree } from '/work/main/dist/src/pack/walk.js';
import { digestFiles } from '/work/main/dist/src/pack/digest-files.js';
let t = Date.now();
const walk = await walkTree('/tmp/fw/firmware-300');
console.log('walk', Date.now() - t); t = Date.now();
const d = digestFiles(walk);
console.log('digest', Date.now() - t);
let inc = 0, incB = 0, tot = 0, big = 0;
for (const w of walk) if (w.type === 'file') { tot += w.stat.size; const x = d.get(w.path); if (x.incompressible) { inc++; incB += w.stat.size; } if (w.stat.size >= 256*1024) big += w.stat.size; }
console.log({ inc, incB, tot, big });
