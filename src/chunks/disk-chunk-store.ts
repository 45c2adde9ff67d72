/**
 * DiskChunkStore: one file per chunk under `<dir>/<id[0:2]>/<id>`.
 *
 * A put writes `<dir>/tmp/<random>`, fsyncs it, renames it to its final name and fsyncs the
 * directory, so after a crash a chunk file is either complete or absent; leftover temp files are
 * removed at open. Reads re-hash the bytes and report corruption instead of serving it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
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
    if (await this.has(id)) return;
    await this.#writeFile(id, data);
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
    try {
      await unlink(this.#path(id));
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
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
