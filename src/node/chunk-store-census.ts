/**
 * ChunkStoreCensus: how many chunks this node's store holds and their bytes, for the metrics
 * (ts3gw_chunk_store_chunks, ts3gw_chunk_store_bytes). The store keeps no running totals, so a
 * background walk lists it and stats each chunk at a bounded rate, then publishes the totals of
 * the completed walk; the next walk starts an interval later. Between walks the numbers are as
 * old as ts3gw_chunk_store_census_age_seconds says.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Chunks stat'ed per second by a walk: a million-chunk store is counted in under ten minutes. */
export const CENSUS_CHUNKS_PER_SECOND = 2_000;
/** Pause between two walks. */
export const CENSUS_INTERVAL_MS = 5 * 60_000;

/** What the census reads. */
export interface CensusStore {
  list(): AsyncIterable<string>;
  stat(id: string): Promise<{ sizeBytes: number } | undefined>;
}

/** Totals of the last completed walk, named as metrics. */
export interface CensusStats {
  ts3gw_chunk_store_chunks: number;
  ts3gw_chunk_store_bytes: number;
  /** Seconds since the last walk completed (-1 before the first). */
  ts3gw_chunk_store_census_age_seconds: number;
}

export class ChunkStoreCensus {
  readonly #store: CensusStore;
  readonly #logger: { warn(obj: object, msg: string): void };
  readonly #abort = new AbortController();
  #chunks = 0;
  #bytes = 0;
  #doneAtMs: number | undefined;

  constructor(store: CensusStore, logger: { warn(obj: object, msg: string): void }) {
    this.#store = store;
    this.#logger = logger;
  }

  stats(): CensusStats {
    return {
      ts3gw_chunk_store_chunks: this.#chunks,
      ts3gw_chunk_store_bytes: this.#bytes,
      ts3gw_chunk_store_census_age_seconds: this.#doneAtMs === undefined ? -1 : Math.round((performance.now() - this.#doneAtMs) / 1000),
    };
  }

  /** Starts walking in the background, the first walk at once. */
  start(): void {
    void this.#loop();
  }

  stop(): void {
    this.#abort.abort();
  }

  /** One walk; resolves with the totals it published (tests call it directly). */
  async walk(): Promise<{ chunks: number; bytes: number }> {
    let chunks = 0;
    let bytes = 0;
    const batch = Math.max(1, Math.floor(CENSUS_CHUNKS_PER_SECOND / 10));
    let started = performance.now();
    for await (const id of this.#store.list()) {
      if (this.#abort.signal.aborted) break;
      const stat = await this.#store.stat(id);
      if (stat === undefined) continue; // deleted since it was listed
      chunks++;
      bytes += stat.sizeBytes;
      // Rate: `batch` chunks per 100 ms at most.
      if (chunks % batch === 0) {
        const wait = 100 - (performance.now() - started);
        if (wait > 0) await sleep(wait, undefined, { signal: this.#abort.signal }).catch(() => undefined);
        started = performance.now();
      }
    }
    if (!this.#abort.signal.aborted) {
      this.#chunks = chunks;
      this.#bytes = bytes;
      this.#doneAtMs = performance.now();
    }
    return { chunks, bytes };
  }

  async #loop(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        await this.walk();
      } catch (err) {
        // A walk cut short by stop() (the store closing under it) is no failure.
        if (!this.#abort.signal.aborted) this.#logger.warn({ err }, 'chunk store census failed; the next one comes at the interval');
      }
      await sleep(CENSUS_INTERVAL_MS, undefined, { signal: this.#abort.signal, ref: false }).catch(() => undefined);
    }
  }
}
