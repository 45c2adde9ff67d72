/**
 * State machine snapshots as LevelDB iteration (ARCHITECTURE.md): the whole key space streamed
 * as framed records, and rebuilt into a fresh database that then replaces the live one.
 *
 *   stream := record*      record := keyLength:u32be key valueLength:u32be value
 *
 * Chunks of the stream may split records anywhere (they travel in bounded network pieces).
 * Replacement is crash-safe: the new database is built in `<location>.incoming`, marked complete,
 * then swapped in with two renames; recoverSwap() finishes or undoes a swap a crash interrupted.
 */
import { access, rename, rm, writeFile } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import { assert } from '../util/assert.ts';
import { errorCode } from '../util/errors.ts';

/** Snapshot stream chunks are cut at about this size. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
const COMPLETE_MARKER = 'SNAPSHOT_COMPLETE';
/** Entries written per LevelDB batch while installing. */
const INSTALL_BATCH_ENTRIES = 1000;

type Db = ClassicLevel<Buffer, string>;

/** Streams every key/value of `db` from one consistent view (the iterator's implicit snapshot). */
export async function* exportLevel(db: Db): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const [key, value] of db.iterator()) {
    const v = Buffer.from(value, 'utf8');
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(key.length);
    const vheader = Buffer.allocUnsafe(4);
    vheader.writeUInt32BE(v.length);
    parts.push(header, key, vheader, v);
    size += 8 + key.length + v.length;
    if (size >= SNAPSHOT_CHUNK_BYTES) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

/** Builds a new database at `location` from a snapshot stream and marks it complete. */
export async function importLevel(location: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  await rm(location, { recursive: true, force: true });
  const db: Db = new ClassicLevel<Buffer, string>(location, { keyEncoding: 'buffer', valueEncoding: 'utf8' });
  await db.open();
  try {
    let pending = Buffer.alloc(0);
    let batch: { type: 'put'; key: Buffer; value: string }[] = [];
    for await (const chunk of chunks) {
      pending = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk]);
      let at = 0;
      for (;;) {
        if (pending.length - at < 4) break;
        const keyLength = pending.readUInt32BE(at);
        if (pending.length - at < 8 + keyLength) break;
        const valueLength = pending.readUInt32BE(at + 4 + keyLength);
        const end = at + 8 + keyLength + valueLength;
        if (pending.length < end) break;
        const key = Buffer.from(pending.subarray(at + 4, at + 4 + keyLength));
        batch.push({ type: 'put', key, value: pending.toString('utf8', at + 8 + keyLength, end) });
        at = end;
        if (batch.length >= INSTALL_BATCH_ENTRIES) {
          await db.batch(batch);
          batch = [];
        }
      }
      pending = pending.subarray(at);
    }
    assert(pending.length === 0, 'snapshot stream ended inside a record');
    if (batch.length > 0) await db.batch(batch);
    // One synced write makes every earlier write of this database durable (LevelDB's log is
    // sequential), before the marker says the copy is complete.
    await db.put(Buffer.from('M\0snapshotInstalled', 'latin1'), '1', { sync: true });
  } finally {
    await db.close();
  }
  await writeFile(`${location}/${COMPLETE_MARKER}`, '');
}

/** Swaps a completed `<location>.incoming` in place of `<location>` (the db must be closed). */
export async function swapIn(location: string): Promise<void> {
  await rm(`${location}.old`, { recursive: true, force: true });
  await rename(location, `${location}.old`);
  await rename(`${location}.incoming`, location);
  await rm(`${location}.old`, { recursive: true, force: true });
}

/** At open: completes or undoes a swap that a crash interrupted, and drops half-built copies. */
export async function recoverSwap(location: string): Promise<void> {
  const exists = async (path: string) => {
    try {
      await access(path);
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  };
  if (!(await exists(location)) && (await exists(`${location}.old`))) {
    if (await exists(`${location}.incoming/${COMPLETE_MARKER}`)) await rename(`${location}.incoming`, location);
    else await rename(`${location}.old`, location);
  }
  await rm(`${location}.incoming`, { recursive: true, force: true });
  await rm(`${location}.old`, { recursive: true, force: true });
}
