/**
 * LocalConsensus: the cluster of one. Commands are ordered by arrival and applied straight to the
 * metadata store with fsync. Proposals that arrive while a batch is being written wait and go
 * into the next batch together (group commit), so one fsync serves many concurrent writers.
 */
import { randomUUID } from 'node:crypto';
import type { MetaStore } from '../meta/level-meta-store.ts';
import type { ApplyResult, MetaCommand, MetaOp } from '../meta/types.ts';
import { assert } from '../util/assert.ts';
import { StoreError } from '../util/errors.ts';
import { CONSENSUS_ERR_CLOSED, type Consensus } from './types.ts';

/** Most commands applied in one batch (one fsync). */
export const APPLY_BATCH_COMMANDS_MAX = 256;

interface Waiting {
  command: MetaCommand;
  resolve(result: ApplyResult): void;
  reject(err: unknown): void;
}

/** Single-node Consensus over a MetaStore. */
export class LocalConsensus implements Consensus {
  readonly #store: MetaStore;
  #queue: Waiting[] = [];
  #running = false;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();

  constructor(store: MetaStore) {
    this.#store = store;
  }

  get reader(): MetaStore {
    return this.#store;
  }

  propose(op: MetaOp, stampMs: number): Promise<ApplyResult> {
    if (this.#closed) return Promise.reject(new StoreError(CONSENSUS_ERR_CLOSED, 'consensus is closed'));
    const command: MetaCommand = { v: 1, requestId: randomUUID(), stampMs, op };
    return new Promise((resolve, reject) => {
      this.#queue.push({ command, resolve, reject });
      if (!this.#running) this.#idle = this.#drain();
    });
  }

  /** Applied state is local and immediate here: every acknowledged command is already applied. */
  async readBarrier(): Promise<void> {
    if (this.#closed) throw new StoreError(CONSENSUS_ERR_CLOSED, 'consensus is closed');
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#idle;
  }

  async #drain(): Promise<void> {
    assert(!this.#running, 'drain re-entered');
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, APPLY_BATCH_COMMANDS_MAX);
        const first = this.#store.appliedIndex() + 1;
        try {
          const results = await this.#store.applyBatch(batch.map((w, i) => ({ index: first + i, command: w.command })));
          assert(results.length === batch.length, 'one result per command');
          for (const [i, w] of batch.entries()) w.resolve(results[i]!);
        } catch (err) {
          // A failed write leaves the store unchanged (one atomic batch): every waiter learns it failed.
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
