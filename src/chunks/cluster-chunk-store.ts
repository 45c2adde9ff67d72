/**
 * ClusterChunkStore: the ChunkStore the object layer uses in a cluster. A chunk is placed on the
 * R owners the placement ring names for its id; a put resolves once W of them hold it durably
 * (each owner fsyncs before acknowledging) and lets the remaining copies finish in the
 * background. A get reads the local copy when there is a good one, else asks the owners, then
 * every other node; every copy is hash-verified, so a corrupt or missing replica is skipped and,
 * when the local one was bad, replaced.
 *
 *   put(id) ──► owners(id, R) ──► [local.put | remote.put] × R ──► resolve at W acks
 *   get(id) ──► local (verified) ─✗─► owners … ─✗─► other nodes … ─✗─► CHUNK_ERR_NOT_FOUND
 */
import { createHash } from 'node:crypto';
import type { OwnerRange } from '../placement/index.ts';
import { assert } from '../util/assert.ts';
import { errorCode, StoreError } from '../util/errors.ts';
import { CHUNK_ERR_CORRUPT, CHUNK_ERR_NOT_FOUND, type ChunkBytes, type ChunkPutOptions, type ChunkStore } from './chunk-store.ts';

/** Fewer than W owners stored a chunk: the write cannot be acknowledged. */
export const CHUNK_ERR_QUORUM = 'CHUNK_ERR_QUORUM';

/** Chunk transfer to and from other nodes (HTTP via undici in forward/; a fake in tests). */
export interface RemoteChunks {
  put(nodeId: number, id: string, data: Uint8Array): Promise<void>;
  /** The chunk's bytes, unverified (the caller verifies), or undefined when the node lacks it. */
  get(nodeId: number, id: string): Promise<Buffer | undefined>;
  /**
   * Like get, into a buffer the transport recycles once the caller calls release() (for callers
   * that are done with the bytes soon, like repair). Optional: get serves without it.
   */
  read?(nodeId: number, id: string): Promise<ChunkBytes | undefined>;
}

/** Where chunks go, as of the last committed membership the caller has seen. */
export interface ChunkPlacement {
  /** The R owners of a chunk, in preference order. */
  owners(chunkId: string, r: number): number[];
  /** Every node of the ring. */
  nodes(): number[];
  replicationFactor: number;
  writeQuorum: number;
  /**
   * The ring's partitions with their R owners (placement's tokenRanges), for anti-entropy; the
   * same array on every call. Absent in placements without a ring (then repair walks every
   * referenced chunk instead).
   */
  ranges?(): readonly OwnerRange[];
}

/** Options of the cluster chunk store. */
export interface ClusterChunkStoreOptions {
  selfId: number;
  logger: { warn(obj: object, msg: string): void };
}

/** Collaborators of the cluster chunk store. */
export interface ClusterChunkStoreDeps {
  local: ChunkStore;
  remote: RemoteChunks;
  /** The current placement; undefined before the first ring is known (then chunks stay local). */
  placement(): ChunkPlacement | undefined;
  /**
   * Re-reads committed membership now. A read that found no copy asks once before it fails: a
   * node that just started (or just caught up) may still hold a ring of fewer nodes than the
   * log has registered, and would ask nobody but itself.
   */
  refreshPlacement?(): Promise<void>;
}

/** Replicated chunk storage across the cluster. */
export class ClusterChunkStore implements ChunkStore {
  readonly #options: ClusterChunkStoreOptions;
  readonly #deps: ClusterChunkStoreDeps;
  /** One membership re-read at a time, shared by every read that missed meanwhile. */
  #refreshing: Promise<void> | undefined;

  constructor(options: ClusterChunkStoreOptions, deps: ClusterChunkStoreDeps) {
    this.#options = options;
    this.#deps = deps;
  }

  async put(id: string, data: Uint8Array, options?: ChunkPutOptions): Promise<void> {
    const placement = this.#deps.placement();
    if (!placement) {
      await this.#deps.local.put(id, data, options);
      return;
    }
    const owners = placement.owners(id, placement.replicationFactor);
    const w = Math.min(placement.writeQuorum, owners.length);
    assert(owners.length > 0 && w > 0, 'a placement names at least one owner');
    assert(new Set(owners).size === owners.length, 'owners are distinct');
    // The put resolves at W acknowledgements; the other copies keep reading `data` until they
    // settle, and only then may the caller reuse the buffer.
    let unsettled = owners.length;
    const settled = () => {
      if (--unsettled === 0) options?.onBytesReleased?.();
    };
    await new Promise<void>((resolve, reject) => {
      let acks = 0;
      let failures = 0;
      const errors: unknown[] = [];
      for (const owner of owners) {
        const write = owner === this.#options.selfId ? this.#deps.local.put(id, data) : this.#deps.remote.put(owner, id, data);
        write.then(
          () => {
            settled();
            if (++acks === w) resolve();
          },
          (err: unknown) => {
            settled();
            errors.push(err);
            this.#options.logger.warn({ owner, chunk: id, err: String(err) }, 'chunk copy failed');
            // Once more owners failed than R - W allows, W acks can no longer happen.
            if (++failures === owners.length - w + 1) {
              reject(new StoreError(CHUNK_ERR_QUORUM, `chunk ${id}: ${acks} of ${w} required copies stored`, { id, owners }, { cause: errors[0] }));
            }
          },
        );
      }
    });
  }

  async get(id: string): Promise<Buffer> {
    let localCorrupt = false;
    try {
      return await this.#deps.local.get(id);
    } catch (err) {
      const code = errorCode(err);
      if (code === CHUNK_ERR_CORRUPT) localCorrupt = true;
      else if (code !== CHUNK_ERR_NOT_FOUND) throw err;
    }
    const first = this.#deps.placement();
    const data = await this.#readFromPeers(id, first, localCorrupt);
    if (data) return data;
    if (this.#deps.refreshPlacement) {
      this.#refreshing ??= this.#deps.refreshPlacement().finally(() => {
        this.#refreshing = undefined;
      });
      await this.#refreshing;
      const now = this.#deps.placement();
      if (now !== first) {
        const again = await this.#readFromPeers(id, now, localCorrupt);
        if (again) return again;
      }
    }
    throw new StoreError(localCorrupt ? CHUNK_ERR_CORRUPT : CHUNK_ERR_NOT_FOUND, `chunk ${id} has no readable copy`, { id });
  }

  /** One round over the owners, then every other ring node; undefined when none had a good copy. */
  async #readFromPeers(id: string, placement: ChunkPlacement | undefined, localCorrupt: boolean): Promise<Buffer | undefined> {
    const owners = placement ? placement.owners(id, placement.replicationFactor) : [];
    const others = placement ? placement.nodes().filter((n) => !owners.includes(n)) : [];
    for (const node of [...owners, ...others]) {
      if (node === this.#options.selfId) continue;
      let data: Buffer | undefined;
      try {
        data = await this.#deps.remote.get(node, id);
      } catch (err) {
        this.#options.logger.warn({ node, chunk: id, err: String(err) }, 'chunk read from peer failed');
        continue;
      }
      if (data === undefined) continue;
      if (createHash('sha256').update(data).digest('hex') !== id) {
        this.#options.logger.warn({ node, chunk: id }, 'peer sent a corrupt chunk copy; trying the next');
        continue;
      }
      if (localCorrupt || (placement && owners.includes(this.#options.selfId))) {
        // Read repair: this node should hold a good copy. Best effort; the read does not wait.
        await this.#deps.local.delete(id);
        this.#deps.local.put(id, data).catch((err: unknown) => this.#options.logger.warn({ chunk: id, err: String(err) }, 'read repair failed'));
      }
      return data;
    }
    return undefined;
  }

  /**
   * Like get, in a recycled buffer when the local copy is good (the common case: with R at least
   * the node count every node holds every chunk); otherwise get's path (peers, read repair)
   * in a buffer of its own.
   */
  async read(id: string): Promise<ChunkBytes> {
    const local = this.#deps.local;
    if (local.read) {
      try {
        return await local.read(id);
      } catch (err) {
        const code = errorCode(err);
        if (code !== CHUNK_ERR_NOT_FOUND && code !== CHUNK_ERR_CORRUPT) throw err;
      }
    }
    return { bytes: await this.get(id), release: () => undefined };
  }

  has(id: string): Promise<boolean> {
    return this.#deps.local.has(id);
  }

  delete(id: string): Promise<void> {
    return this.#deps.local.delete(id);
  }

  list(): AsyncIterable<string> {
    return this.#deps.local.list();
  }

  close(): Promise<void> {
    return this.#deps.local.close();
  }
}
