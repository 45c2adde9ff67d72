/**
 * PieceQueue: the bytes of one frame handed from a socket's read callback to an async consumer
 * (a store's putStream) as they arrive, without copying. The producer push()es views and end()s
 * once the frame is complete or its connection closed; the consumer iterates (once) and gets the
 * pieces in order, or an error when the frame ended short.
 */
export class PieceQueue implements AsyncIterable<Buffer> {
  /** The frame's size in bytes. */
  readonly length: number;
  /** Bytes pushed so far. */
  filled = 0;
  readonly #pieces: Buffer[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(length: number) {
    this.length = length;
  }

  /** True once every byte of the frame was pushed. */
  get complete(): boolean {
    return this.filled === this.length;
  }

  push(piece: Buffer): void {
    this.#pieces.push(piece);
    this.filled += piece.length;
    this.#wake?.();
  }

  /** No more pieces: the frame is complete, or its connection closed. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const piece = this.#pieces.shift();
      if (piece !== undefined) {
        yield piece;
        continue;
      }
      if (this.#ended) {
        if (!this.complete) throw new Error('connection ended inside a chunk');
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
