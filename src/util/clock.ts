/** Wall-clock source, injected so simulations and tests control time. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
}

/** The process clock. */
export const systemClock: Clock = { nowMs: () => Date.now() };

/**
 * Hands out strictly increasing millisecond stamps: max(wall clock, last + 1). Guards object
 * timestamps and their order against the wall clock going backwards (TigerBeetle's prepare
 * timestamps).
 */
export class MonotonicStamper {
  #last = 0;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Next stamp, never equal to or below a previous one. */
  next(): number {
    const now = this.#clock.nowMs();
    this.#last = now > this.#last ? now : this.#last + 1;
    return this.#last;
  }

  /** Raises the floor, e.g. to the newest stamp seen in the store after a restart. */
  observe(stampMs: number): void {
    if (stampMs > this.#last) this.#last = stampMs;
  }
}
