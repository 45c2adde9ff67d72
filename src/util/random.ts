/**
 * A small seeded pseudo-random number generator (SplitMix32 mixing over a Weyl sequence).
 *
 * Why not Math.random: everything that must replay from a seed (the Raft election timeout, the
 * deterministic simulator) draws from one of these, so the same seed gives the same run.
 * It is not cryptographic and must never be used for secrets.
 */
export class SeededRandom {
  #state: number;

  /** Creates a generator from any finite number; equal seeds give equal sequences. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new TypeError(`seed must be a finite number, got ${seed}`);
    // Fold the seed (which may exceed 32 bits) into a 32-bit state.
    this.#state = (Math.trunc(seed) ^ Math.trunc(seed / 0x1_0000_0000)) >>> 0;
  }

  /** Returns the next uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Returns an integer in [0, n). `n` must be a positive integer no larger than 2^32. */
  intBelow(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x1_0000_0000) throw new TypeError(`bad bound ${n}`);
    // Multiply-shift maps 32 random bits onto [0, n) with negligible bias for the small n we use.
    return Math.floor((this.nextUint32() / 0x1_0000_0000) * n);
  }

  /** Returns a float in [0, 1). */
  float(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** Returns true with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Returns a new generator whose sequence is derived from (but independent of) this one. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32() * 0x1_0000 + (this.nextUint32() & 0xffff));
  }
}
