/**
 * DiskChunkStore: one file per chunk under `<dir>/<id[0:2]>/<id>`.
 *
 * A put writes `<dir>/tmp/<random>`, fsyncs it, renames it to its final name and fsyncs the
 * directory, so after a crash a chunk file is either complete or absent; leftover temp files are
 * removed at open. Reads re-hash the bytes and report corruption instead of serving it.
 */
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../util/assert.ts';
import type { DiskFaultHook } from '../util/disk-faults.ts';
import { errorCode, StoreError } from '../util/errors.ts';
import {
  CHUNK_ERR_CLOSED,
  CHUNK_ERR_CORRUPT,
  CHUNK_ERR_HASH_MISMATCH,
  CHUNK_ERR_NOT_FOUND,
  CHUNK_ERR_SIZE_MISMATCH,
  CHUNK_ERR_TOO_LARGE,
  CHUNK_SIZE_BYTES_MAX,
  type ChunkBytes,
  type ChunkPutOptions,
  type ChunkStore,
  isChunkId,
  takeHashedId,
} from './chunk-store.ts';

/**
 * Bytes a streaming put gathers before one writev(): large enough that a 4 MiB chunk is a
 * handful of system calls, small enough that the socket keeps reading while the disk writes.
 */
export const CHUNK_WRITE_BATCH_BYTES = 1024 * 1024;
/** Size of the pieces a streaming read yields. */
export const CHUNK_READ_PIECE_BYTES = 512 * 1024;
/**
 * Size of the read buffers openRead() recycles: the default chunk size, so a chunk of up to
 * this size is read into memory the process touched before. (On this project's VMs a fresh
 * buffer per read cost more than the read and hash together: page faults on first touch, a
 * slower first socket send from it, and the garbage collector's work to free it.)
 */
export const CHUNK_READ_BUFFER_BYTES = 4 * 1024 * 1024;
/** Released read buffers kept for reuse (32 MiB); more concurrent reads allocate fresh ones. */
export const CHUNK_READ_BUFFERS_KEPT_MAX = 8;

/** A stored chunk opened for streaming: its size, then its bytes (see DiskChunkStore.openRead). */
export interface ChunkReadStream {
  sizeBytes: number;
  /**
   * The bytes in pieces, hashed as they are read. The last piece is held back until the whole
   * file hashed to the id: a corrupt copy throws CHUNK_ERR_CORRUPT instead of yielding it, so a
   * consumer that forwards pieces never completes a corrupt transfer. Iterate it once.
   * Pieces are views of one buffer (distinct regions, never overwritten during this read).
   */
  body: AsyncIterable<Buffer>;
  /**
   * Gives the pieces' buffer back for reuse by a later read. Call it only once nothing refers
   * to any piece any more (e.g. a response's 'finish': every socket write completed), and not
   * at all when unsure (an aborted response): an unreleased buffer is just left to the GC.
   */
  release(): void;
}

/** Options of the disk store. */
export interface DiskChunkStoreOptions {
  dir: string;
  /** fsync chunk files and directories; only tests of non-durable paths turn this off. */
  fsync: boolean;
  /** Chaos fault mode only: called before each chunk file's fsync (slow or failing disk). */
  faults?: DiskFaultHook;
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
  /** Read buffers of CHUNK_READ_BUFFER_BYTES given back by released reads (see openRead). */
  readonly #readBuffers: Buffer[] = [];
  #closed = false;

  constructor(options: DiskChunkStoreOptions) {
    this.#options = options;
  }

  async put(id: string, data: Uint8Array, options?: ChunkPutOptions): Promise<void> {
    try {
      await this.#put(id, data);
    } finally {
      options?.onBytesReleased?.();
    }
  }

  async #put(id: string, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    if (data.byteLength > CHUNK_SIZE_BYTES_MAX) {
      throw new StoreError(CHUNK_ERR_TOO_LARGE, `chunk of ${data.byteLength} bytes exceeds ${CHUNK_SIZE_BYTES_MAX}`);
    }
    if (takeHashedId(data) !== id && sha256Hex(data) !== id) throw new StoreError(CHUNK_ERR_HASH_MISMATCH, `chunk bytes do not hash to ${id}`);
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
      if (await this.#touch(id)) return;
      await this.#writeFile(id, data);
    });
  }

  /**
   * Streaming put: stores the `sizeBytes` bytes `source` yields under `id`, hashing them as they
   * arrive and writing them to a temp file in batches (receive, hash and disk write overlap; no
   * whole-chunk buffer). The temp file is renamed into place only after the bytes hashed to `id`
   * (CHUNK_ERR_HASH_MISMATCH otherwise) and were fsynced; a source of another length is refused
   * (CHUNK_ERR_SIZE_MISMATCH). When the chunk already exists the source is drained, not written,
   * and the file's mtime is refreshed first, exactly as put() does (see there and gc.ts).
   */
  async putStream(id: string, sizeBytes: number, source: AsyncIterable<Uint8Array>): Promise<void> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new TypeError(`bad chunk size ${sizeBytes}`);
    if (sizeBytes > CHUNK_SIZE_BYTES_MAX) {
      throw new StoreError(CHUNK_ERR_TOO_LARGE, `chunk of ${sizeBytes} bytes exceeds ${CHUNK_SIZE_BYTES_MAX}`);
    }
    const existed = await this.#locked(id, () => this.#touch(id));
    if (existed) {
      // Touched before draining: from here the collector sees a young file (put()'s argument).
      let received = 0;
      for await (const piece of source) {
        received += piece.byteLength;
        if (received > sizeBytes) break;
      }
      if (received !== sizeBytes) throw sizeMismatch(id, received, sizeBytes);
      return;
    }
    const hash = createHash('sha256');
    let received = 0;
    const tmp = await this.#writeTemp(id, async (handle) => {
      received = await writeHashed(handle, source, hash, sizeBytes);
      if (received !== sizeBytes) throw sizeMismatch(id, received, sizeBytes);
      // Paired with the check in get(): nothing is renamed into place unverified.
      if (hash.digest('hex') !== id) throw new StoreError(CHUNK_ERR_HASH_MISMATCH, `chunk bytes do not hash to ${id}`);
    });
    assert(received === sizeBytes, 'a verified streaming put has the declared size');
    await this.#locked(id, async () => {
      // A concurrent put of the same id may have won while this one streamed: keep its file.
      if (await this.#touch(id)) {
        await rm(tmp, { force: true });
        return;
      }
      await this.#install(tmp, id);
    });
  }

  /**
   * Opens a stored chunk for streaming (the internal GET endpoint): CHUNK_ERR_NOT_FOUND when
   * absent; corruption (and a chunk deleted in between) surfaces from the body (see
   * ChunkReadStream). The body closes its file when it ends, fails, or its consumer stops early.
   */
  async openRead(id: string): Promise<ChunkReadStream> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    const s = await this.stat(id);
    if (s === undefined) throw new StoreError(CHUNK_ERR_NOT_FOUND, `chunk ${id} not found`, { id });
    // The file is opened by the body's first read, so a body nobody iterates holds no handle.
    const buffer = this.#takeReadBuffer(s.sizeBytes);
    let released = false;
    return {
      sizeBytes: s.sizeBytes,
      body: readVerified(this.#path(id), id, s.sizeBytes, buffer),
      release: () => {
        assert(!released, 'a chunk read is released once');
        released = true;
        this.#giveBackReadBuffer(buffer);
      },
    };
  }

  /**
   * Re-hashes a stored chunk without holding it in memory: 'ok', 'missing' or 'corrupt'. What
   * the HEAD check of rebalancing and the scrubber need (they do not want the bytes).
   */
  async verify(id: string): Promise<'ok' | 'missing' | 'corrupt'> {
    try {
      const read = await this.openRead(id);
      for await (const _ of read.body) {
        // Hashing happens in the iterator; the pieces are not needed.
      }
      // Only after a complete iteration: a failed one may have left the file handle reading.
      read.release();
      return 'ok';
    } catch (err) {
      const code = errorCode(err);
      if (code === CHUNK_ERR_NOT_FOUND) return 'missing';
      if (code === CHUNK_ERR_CORRUPT) return 'corrupt';
      throw err;
    }
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

  /**
   * Like get, into a recycled read buffer (the pool openRead uses) for chunks up to
   * CHUNK_READ_BUFFER_BYTES; larger ones get a buffer of their own.
   */
  async read(id: string): Promise<ChunkBytes> {
    this.#checkOpen();
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    let file: FileHandle;
    try {
      file = await open(this.#path(id), 'r');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw new StoreError(CHUNK_ERR_NOT_FOUND, `chunk ${id} not found`, { id });
      throw err;
    }
    let buffer: Buffer | undefined;
    try {
      const { size } = await file.stat();
      buffer = this.#takeReadBuffer(size);
      let filled = 0;
      while (filled < size) {
        const { bytesRead } = await file.read(buffer, filled, size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      const bytes = buffer.subarray(0, filled);
      // Paired with the check in put(): bytes are verified on the way in and on the way out.
      if (filled !== size || sha256Hex(bytes) !== id) throw new StoreError(CHUNK_ERR_CORRUPT, `chunk ${id} is corrupt`, { id });
      let released = false;
      const kept = buffer;
      return {
        bytes,
        release: () => {
          if (released) return;
          released = true;
          this.#giveBackReadBuffer(kept);
        },
      };
    } catch (err) {
      // Nothing outside refers to the buffer yet.
      if (buffer) this.#giveBackReadBuffer(buffer);
      throw err;
    } finally {
      await file.close();
    }
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

  /** Ids stored in one shard directory (`shard` = the ids' first two hex digits), unsorted. */
  async *listShard(shard: string): AsyncIterable<string> {
    this.#checkOpen();
    if (!/^[0-9a-f]{2}$/.test(shard)) throw new TypeError(`not a shard: ${shard}`);
    let names: string[];
    try {
      names = await readdir(join(this.#options.dir, shard));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const name of names) if (isChunkId(name)) yield name;
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

  /** Refreshes the mtime of a stored chunk; false when it is absent. Call under the id's lock. */
  async #touch(id: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.#path(id), now, now);
      return true;
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      return false;
    }
  }

  /** A fresh temp file name for `id`, creating the chunk's shard directory on first use. */
  async #tmpPath(id: string): Promise<string> {
    const shardDir = join(this.#options.dir, id.slice(0, 2));
    if (!this.#madeDirs.has(shardDir)) {
      await mkdir(shardDir, { recursive: true });
      if (this.#options.fsync) await fsyncDir(this.#options.dir);
      this.#madeDirs.add(shardDir);
    }
    return join(this.#options.dir, 'tmp', `${id}.${randomBytes(6).toString('hex')}`);
  }

  /** Renames a complete, fsynced temp file into place and makes the rename durable. */
  async #install(tmp: string, id: string): Promise<void> {
    await rename(tmp, this.#path(id));
    if (this.#options.fsync) await fsyncDir(join(this.#options.dir, id.slice(0, 2)));
  }

  async #writeFile(id: string, data: Uint8Array): Promise<void> {
    const tmp = await this.#writeTemp(id, async (handle) => {
      let written = 0;
      while (written < data.byteLength) {
        const { bytesWritten } = await handle.write(data, written, data.byteLength - written);
        assert(bytesWritten > 0, 'short write made no progress');
        written += bytesWritten;
      }
    });
    await this.#install(tmp, id);
  }

  /**
   * A new temp file for chunk `id`, filled by `write`, fsynced (when on) and closed; returns its
   * path, for #install. When `write` or the sync fails, the temp file is removed and the error
   * rethrown: nothing half-written is left behind.
   */
  async #writeTemp(id: string, write: (handle: FileHandle) => Promise<void>): Promise<string> {
    const tmp = await this.#tmpPath(id);
    const handle = await open(tmp, 'w');
    try {
      await write(handle);
      await this.#options.faults?.beforeSync('chunk');
      if (this.#options.fsync) await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    return tmp;
  }

  /** A read buffer for a chunk of `sizeBytes`: a recycled one when it fits, else one of its own. */
  #takeReadBuffer(sizeBytes: number): Buffer {
    if (sizeBytes > CHUNK_READ_BUFFER_BYTES) return Buffer.allocUnsafeSlow(sizeBytes);
    return this.#readBuffers.pop() ?? Buffer.allocUnsafeSlow(CHUNK_READ_BUFFER_BYTES);
  }

  /** Keeps a pool-sized buffer for a later read (up to CHUNK_READ_BUFFERS_KEPT_MAX); others go to the GC. */
  #giveBackReadBuffer(buffer: Buffer): void {
    if (buffer.length === CHUNK_READ_BUFFER_BYTES && this.#readBuffers.length < CHUNK_READ_BUFFERS_KEPT_MAX) this.#readBuffers.push(buffer);
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

function sizeMismatch(id: string, received: number, sizeBytes: number): StoreError {
  return new StoreError(CHUNK_ERR_SIZE_MISMATCH, `chunk ${id}: ${received > sizeBytes ? 'more than' : 'only'} ${received} of ${sizeBytes} bytes arrived`, { id });
}

/**
 * Hashes and writes what `source` yields into `handle`, at most `limit` + 1 bytes (one more shows
 * the source is too long). Pieces are gathered into batches of CHUNK_WRITE_BATCH_BYTES and
 * written with writev while the next batch is gathered, so at most two batches are held.
 * Returns the bytes received. Pieces are not copied: writev takes them as they are.
 */
async function writeHashed(handle: FileHandle, source: AsyncIterable<Uint8Array>, hash: Hash, limit: number): Promise<number> {
  let received = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = async (pieces: Uint8Array[], bytes: number): Promise<void> => {
    let written = 0;
    while (written < bytes) {
      // writev may write less than asked; resume from the first piece not fully written.
      const { bytesWritten } = await handle.writev(written === 0 ? pieces : remainder(pieces, written));
      assert(bytesWritten > 0, 'short write made no progress');
      written += bytesWritten;
    }
  };
  try {
    for await (const piece of source) {
      received += piece.byteLength;
      if (received > limit) break;
      hash.update(piece);
      batch.push(piece);
      batchBytes += piece.byteLength;
      if (batchBytes >= CHUNK_WRITE_BATCH_BYTES) {
        await writing;
        writing = flush(batch, batchBytes);
        // A failed write must not surface as an unhandled rejection while the next batch gathers.
        writing.catch(() => undefined);
        batch = [];
        batchBytes = 0;
      }
    }
  } catch (err) {
    // The source failed (a peer went away): let the write in flight finish before the caller
    // closes the file under it.
    await writing.catch(() => undefined);
    throw err;
  }
  await writing;
  if (batchBytes > 0 && received <= limit) await flush(batch, batchBytes);
  return received;
}

/** The pieces left after the first `skip` bytes of `pieces`. */
function remainder(pieces: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of pieces) {
    if (skip >= p.byteLength) {
      skip -= p.byteLength;
      continue;
    }
    out.push(skip > 0 ? p.subarray(skip) : p);
    skip = 0;
  }
  return out;
}

/**
 * The body of openRead(): pieces of a chunk file, read into consecutive regions of `buffer`
 * (at least `sizeBytes` long), the last one yielded only once the whole file verified.
 */
async function* readVerified(path: string, id: string, sizeBytes: number, buffer: Buffer): AsyncGenerator<Buffer> {
  assert(buffer.length >= sizeBytes, 'the read buffer holds the whole chunk');
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new StoreError(CHUNK_ERR_NOT_FOUND, `chunk ${id} not found`, { id });
    throw err;
  }
  try {
    const hash = createHash('sha256');
    let offset = 0;
    let held: Buffer | undefined;
    while (offset < sizeBytes) {
      // Each piece has its own region: the consumer may still hold earlier ones (socket writes).
      const { bytesRead } = await handle.read(buffer, offset, Math.min(CHUNK_READ_PIECE_BYTES, sizeBytes - offset), offset);
      if (bytesRead === 0) break; // Truncated under us: the hash check below reports it.
      const got = buffer.subarray(offset, offset + bytesRead);
      hash.update(got);
      offset += bytesRead;
      if (held) yield held;
      held = got;
    }
    if (hash.digest('hex') !== id) throw new StoreError(CHUNK_ERR_CORRUPT, `chunk ${id} is corrupt`, { id });
    assert(offset === sizeBytes, 'a verified chunk file has the size it was opened with');
    if (held) yield held;
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
