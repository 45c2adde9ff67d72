/**
 * ByteBudget: a counting semaphore over bytes. Callers acquire the bytes they are about to hold
 * in memory and release them when done; once the budget is spent, further acquirers wait in
 * FIFO order. It bounds the memory of all requests together, which per-request limits cannot
 * (eight parallel uploads each within their own limit can still add up to too much).
 */
import { assert } from './assert.ts';

/** A FIFO byte semaphore. */
export class ByteBudget {
  readonly limitBytes: number;
  #usedBytes = 0;
  readonly #waiters: { bytes: number; grant: () => void }[] = [];

  constructor(limitBytes: number) {
    assert(Number.isSafeInteger(limitBytes) && limitBytes > 0, 'budget must be a positive integer');
    this.limitBytes = limitBytes;
  }

  /** Bytes currently held. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Resolves once `bytes` are reserved. A request larger than the whole budget is granted alone
   * (when nothing else is held), so it can never wait forever.
   */
  acquire(bytes: number): Promise<void> {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, 'bytes must be a non-negative integer');
    if (this.#waiters.length === 0 && this.#fits(bytes)) {
      this.#usedBytes += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push({ bytes, grant: resolve }));
  }

  /** Returns bytes acquired earlier and wakes waiters that now fit, in order. */
  release(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.#usedBytes, 'released more bytes than held');
    this.#usedBytes -= bytes;
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.bytes)) {
      const next = this.#waiters.shift()!;
      this.#usedBytes += next.bytes;
      next.grant();
    }
  }

  #fits(bytes: number): boolean {
    return this.#usedBytes + bytes <= this.limitBytes || this.#usedBytes === 0;
  }
}
