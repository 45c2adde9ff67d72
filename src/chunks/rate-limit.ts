/**
 * RateLimiter: a token bucket for background work (bytes/s or chunks/s). take(n) waits until the
 * bucket can pay for `n`; a request larger than the bucket goes into debt and the next takes wait
 * it off, so the long-run rate never exceeds `ratePerSecond` whatever the request sizes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../util/assert.ts';

/** The longest single wait; a stop (abort) is noticed at least this often. */
export const RATE_LIMIT_WAIT_MS_MAX = 1_000;

/** A token bucket holding at most one second of tokens. */
export class RateLimiter {
  readonly #ratePerSecond: number;
  readonly #now: () => number;
  #tokens: number;
  #lastMs: number;

  /** `ratePerSecond` Infinity means unlimited. `now` is a monotonic millisecond clock. */
  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    assert(ratePerSecond > 0, 'a rate limit must be positive');
    this.#ratePerSecond = ratePerSecond;
    this.#now = now;
    this.#tokens = Number.isFinite(ratePerSecond) ? ratePerSecond : 0;
    this.#lastMs = now();
  }

  /** Resolves once `n` units may be spent; rejects with AbortError when `signal` aborts. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    assert(n >= 0 && Number.isFinite(n), 'take() needs a finite non-negative amount');
    if (!Number.isFinite(this.#ratePerSecond)) return;
    this.#refill();
    this.#tokens -= n;
    while (this.#tokens < 0) {
      signal?.throwIfAborted();
      const waitMs = Math.min(RATE_LIMIT_WAIT_MS_MAX, Math.ceil((-this.#tokens / this.#ratePerSecond) * 1000));
      await sleep(waitMs, undefined, signal ? { signal } : {});
      this.#refill();
    }
  }

  #refill(): void {
    const now = this.#now();
    const elapsedMs = Math.max(0, now - this.#lastMs);
    this.#lastMs = now;
    this.#tokens = Math.min(this.#ratePerSecond, this.#tokens + (elapsedMs / 1000) * this.#ratePerSecond);
  }
}
