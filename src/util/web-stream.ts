/**
 * A pull-based web ReadableStream over an async iterator (OpenPGP.js v6 takes web streams only).
 * highWaterMark 1: it asks for the next chunk only when the consumer wants one, so the producer's
 * own bound on in-flight data is the only buffering (Readable.from + Readable.toWeb would add two
 * queues of their own). Errors from the iterator error the stream; cancelling ends the iterator.
 */
export function webStreamOf(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await it.next();
        if (r.done === true) controller.close();
        else controller.enqueue(r.value);
      },
      async cancel(reason) {
        await it.return?.(reason);
      },
    },
    { highWaterMark: 1 },
  );
}
