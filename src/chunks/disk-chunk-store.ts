/**
 * DiskChunkStore: one file per chunk under `<dir>/<id[0:2]>/<id>`.
 *
 * A put writes `<dir>/tmp/<random>`, fsyncs it, renames it to its final name and fsyncs the
 * directory, so after a crash a chunk file is either complete or absent; leftover temp files are
 * removed at open. Reads re-hash the bytes and report corruption instead of serving it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../util/assert.ts';
import { errorCode, StoreError } from '../util/errors.ts';
import {
  CHUNK_ERR_CLOSED,
  CHUNK_ERR_CORRUPT,
  CHUNK_ERR_HASH_MISMATCH,
  CHUNK_ERR_NOT_FOUND,
  CHUNK_ERR_TOO_LARGE,
  CHUNK_SIZE_BYTES_MAX,
  type ChunkStore,
  isChunkId,
} from './chunk-store.ts';

/** Options of the disk store. */
export interface DiskChunkStoreOptions {
  dir: string;
  /** fsync chunk files and directories; only tests of non-durable paths turn this off. */
  fsync: boolean;
}

/** Opens the store, creating its directories and removing temp files a crash left behind. */
export async function openDiskChunkStore(options: DiskChunkStoreOptions): Promise<DiskChunkStore> {
  const tmp = join(options.dir, 'tmp');
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  return new DiskChunkStore(options);
}

/** The file-per-chunk implementation of ChunkStore. Construct with openDiskChunkStore(). */
export class DiskChunkStore implements ChunkStore {
  readonly #options: DiskChunkStoreOptions;
  readonly #madeDirs = new Set<string>();
  /** Per-chunk queue: put, delete and deleteIfOlder of one id never interleave (see put()). */
  readonly #locks = new Map<string, Promise<void>>();
  #closed = false;

  constructor(options: DiskChunkStoreOptions) {
    this.#options = options;
  }

  async put(id: string, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    if (data.byteLength > CHUNK_SIZE_BYTES_MAX) {
      throw new StoreError(CHUNK_ERR_TOO_LARGE, `chunk of ${data.byteLength} bytes exceeds ${CHUNK_SIZE_BYTES_MAX}`);
    }
    if (sha256Hex(data) !== id) throw new StoreError(CHUNK_ERR_HASH_MISMATCH, `chunk bytes do not hash to ${id}`);
    await this.#locked(id, async () => {
      // Dedup, and why it touches the file: a PUT whose chunk already exists writes nothing, yet
      // from now until its metadata command is applied it relies on this file, which may be
      // unreferenced right now (its last object was deleted). The garbage collector deletes an
      // unreferenced chunk only when its mtime is older than (mark start − grace), and the grace
      // exceeds the longest in-flight write. Refreshing the mtime here makes the deduplicated
      // put look exactly like a fresh write to the collector. The per-id lock closes the gap
      // between the collector's mtime check and its unlink (deleteIfOlder runs under it too):
      // either the collector deletes first and this put rewrites the file (utimes sees ENOENT),
      // or this put touches first and the collector sees a young file.
      const now = new Date();
      try {
        await utimes(this.#path(id), now, now);
        return;
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
      await this.#writeFile(id, data);
    });
  }

  async get(id: string): Promise<Buffer> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    let data: Buffer;
    try {
      data = await readFile(this.#path(id));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw new StoreError(CHUNK_ERR_NOT_FOUND, `chunk ${id} not found`, { id });
      throw err;
    }
    // Paired with the check in put(): bytes are verified on the way in and on the way out.
    if (sha256Hex(data) !== id) throw new StoreError(CHUNK_ERR_CORRUPT, `chunk ${id} is corrupt`, { id });
    return data;
  }

  async has(id: string): Promise<boolean> {
    this.#checkOpen();
    try {
      await stat(this.#path(id));
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    await this.#locked(id, () => this.#unlink(id));
  }

  /** Size and modification time of a stored chunk, or undefined when absent. */
  async stat(id: string): Promise<{ sizeBytes: number; mtimeMs: number } | undefined> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    try {
      const s = await stat(this.#path(id));
      return { sizeBytes: s.size, mtimeMs: s.mtimeMs };
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Deletes a chunk only if its mtime is older than `cutoffMs`, atomically with respect to put()
   * of the same id (the garbage collector's sweep). Returns the bytes freed, or undefined when the
   * chunk was kept (young) or absent.
   */
  async deleteIfOlder(id: string, cutoffMs: number): Promise<number | undefined> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    return this.#locked(id, async () => {
      const s = await this.stat(id);
      if (s === undefined || !(s.mtimeMs < cutoffMs)) return undefined;
      await this.#unlink(id);
      return s.sizeBytes;
    });
  }

  async *list(): AsyncIterable<string> {
    this.#checkOpen();
    for (const shard of await readdir(this.#options.dir)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await readdir(join(this.#options.dir, shard))) if (isChunkId(name)) yield name;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #unlink(id: string): Promise<void> {
    try {
      await unlink(this.#path(id));
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
  }

  /** Runs `fn` after every earlier locked operation on `id` settled. */
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(id) ?? Promise.resolve();
    const run = before.then(fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(id, settled);
    try {
      return await run;
    } finally {
      // Last one out removes the entry, so the map holds only ids with work queued.
      if (this.#locks.get(id) === settled) this.#locks.delete(id);
    }
  }

  async #writeFile(id: string, data: Uint8Array): Promise<void> {
    const shardDir = join(this.#options.dir, id.slice(0, 2));
    if (!this.#madeDirs.has(shardDir)) {
      await mkdir(shardDir, { recursive: true });
      if (this.#options.fsync) await fsyncDir(this.#options.dir);
      this.#madeDirs.add(shardDir);
    }
    const tmp = join(this.#options.dir, 'tmp', `${id}.${randomBytes(6).toString('hex')}`);
    const handle = await open(tmp, 'w');
    try {
      let written = 0;
      while (written < data.byteLength) {
        const { bytesWritten } = await handle.write(data, written, data.byteLength - written);
        assert(bytesWritten > 0, 'short write made no progress');
        written += bytesWritten;
      }
      if (this.#options.fsync) await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    await rename(tmp, this.#path(id));
    if (this.#options.fsync) await fsyncDir(shardDir);
  }

  #path(id: string): string {
    return join(this.#options.dir, id.slice(0, 2), id);
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError(CHUNK_ERR_CLOSED, 'chunk store is closed');
  }
}

/** Lowercase hex sha256 of `data`. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
