/**
 * A background step run on an interval, never two at once: a pass still running when the next
 * tick comes makes that tick a no-op. A step that throws is reported and tried again on the next
 * tick, so a workflow kept in the log resumes by itself after any failure.
 */
export class PeriodicTask {
  readonly #step: () => Promise<void>;
  readonly #intervalMs: number;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(step: () => Promise<void>, intervalMs: number, onError: (err: unknown) => void) {
    this.#step = step;
    this.#intervalMs = intervalMs;
    this.#onError = onError;
  }

  start(): void {
    this.#timer = setInterval(() => void this.runOnce(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Runs the step now unless a run is under way. */
  async runOnce(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.#step();
    } catch (err) {
      this.#onError(err);
    } finally {
      this.#busy = false;
    }
  }
}
