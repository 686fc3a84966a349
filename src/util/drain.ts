/** Wait until the stream wants more input, or is gone (a reader that stopped early destroys it). */
export function drainOrClose(s: NodeJS.WritableStream & { once(ev: string, f: () => void): unknown; removeListener(ev: string, f: () => void): unknown }): Promise<void> {
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
