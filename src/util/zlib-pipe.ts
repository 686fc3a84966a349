import type { Transform } from 'node:stream';

/**
 * Feed an async iterable through a zlib stream and yield what comes out, with backpressure both
 * ways. If the reader stops early, the zlib stream is destroyed and the feeder stops too.
 */
export async function* throughZlib(source: AsyncIterable<Uint8Array>, z: Transform): AsyncGenerator<Buffer> {
  const feed = (async () => {
    try {
      for await (const c of source) {
        if (z.destroyed) return;
        if (!z.write(c)) await drainOrClose(z);
      }
      z.end();
    } catch (err) {
      z.destroy(err as Error);
    }
  })();
  try {
    yield* z as AsyncIterable<Buffer>;
  } finally {
    z.destroy();
    await feed;
  }
}

/** Wait until the stream wants more input, or is gone. */
function drainOrClose(s: Transform): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      s.removeListener('drain', done);
      s.removeListener('close', done);
      resolve();
    };
    s.once('drain', done);
    s.once('close', done);
  });
}
