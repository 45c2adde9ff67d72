/**
 * Waiting out a writable's backpressure without hanging on a dead connection: 'drain' alone never
 * comes once the stream closed, which is how a write loop can wait forever.
 */

/** What drained() needs of a stream (a net.Socket, an http.ServerResponse, any Writable). */
export interface DrainableStream {
  readonly destroyed: boolean;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Resolves once `stream` can take more; rejects when it closes first (or already did). */
export function drained(stream: DrainableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.destroyed) {
      reject(new Error('connection closed'));
      return;
    }
    const done = (err?: Error) => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('connection closed'));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}
