/**
 * Key encoding of the metadata LevelDB. Keys are bytes compared bytewise, so object keys sort in
 * UTF-8 binary order, which is S3's listing order. Layout:
 *
 *   'B' 0x00 bucket                       → BucketRecord
 *   'O' 0x00 bucket 0x00 key              → ObjectRecord    (bucket names never contain 0x00)
 *   'U' 0x00 bucket 0x00 key 0x00 uploadId                    → UploadRecord (in progress)
 *   'P' 0x00 bucket 0x00 key 0x00 uploadId 0x00 part(5 digits) → PartRecord
 *   'C' 0x00 bucket 0x00 key 0x00 uploadId                    → CompletionRecord (completed)
 *   'D' 0x00 groupStart(16 hex)           → dedup answers of a range of indexes (dedup-table.ts)
 *   'M' 0x00 name                         → store metadata (applied index, …)
 *
 * Object keys may contain any character but NUL (the S3 layer rejects NUL), so 0x00 is a safe
 * separator and the byte 0xFF (never present in UTF-8) bounds a prefix scan. Stores written before
 * dedup-table.ts also hold 'R' (a dedup record per request id) and 'Q' (their prune queue), which
 * opening converts to 'D' records.
 */
import { assert } from '../util/assert.ts';

const SEP = 0x00;

function join(tag: string, ...parts: string[]): Buffer {
  // Tags are ASCII and the separator is NUL, which UTF-8 encodes as the single byte 0x00, so
  // encoding the joined string gives exactly tag 0x00 part 0x00 part… in one allocation.
  return Buffer.from(parts.length === 0 ? tag : `${tag}\0${parts.join('\0')}`, 'utf8');
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A key as a "binary string": one char per byte of its UTF-8 encoding (what Buffer#toString('latin1')
 * gives). Apply's overlay is keyed by these; for ASCII keys (the usual case) it is the joined
 * string itself, with no Buffer in between.
 */
function joinBinary(tag: string, ...parts: string[]): string {
  const s = `${tag}\0${parts.join('\0')}`;
  return ASCII.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** bucketKey(bucket) as a binary string (see joinBinary). */
export function bucketKeyBinary(bucket: string): string {
  assert(!bucket.includes('\0'), 'bucket name contains NUL');
  return joinBinary('B', bucket);
}

/** objectKey(bucket, key) as a binary string (see joinBinary). */
export function objectKeyBinary(bucket: string, key: string): string {
  assert(!bucket.includes('\0'), 'bucket name contains NUL');
  assert(!key.includes('\0'), 'object key contains NUL');
  return joinBinary('O', bucket, key);
}

/** Key of a bucket record. */
export function bucketKey(bucket: string): Buffer {
  assert(!bucket.includes('\0'), 'bucket name contains NUL');
  return join('B', bucket);
}

/** Range bounds covering every bucket record. */
export function bucketRange(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from('B\0', 'latin1'), lt: Buffer.from('B\x01', 'latin1') };
}

/** Key of an object record. */
export function objectKey(bucket: string, key: string): Buffer {
  assert(!bucket.includes('\0'), 'bucket name contains NUL');
  assert(!key.includes('\0'), 'object key contains NUL');
  return join('O', bucket, key);
}

/** Prefix shared by every object key of `bucket` (including the trailing separator). */
export function objectPrefix(bucket: string): Buffer {
  return Buffer.concat([join('O', bucket), Buffer.of(SEP)]);
}

/** Decodes the object key out of an encoded object record key of a known bucket. */
export function decodeObjectKey(bucket: string, encoded: Buffer): string {
  const prefix = objectPrefix(bucket);
  assert(encoded.subarray(0, prefix.length).equals(prefix), 'encoded key is not in bucket');
  return encoded.subarray(prefix.length).toString('utf8');
}

/** Smallest encoded key greater than every key that starts with `prefix` bytes. */
export function afterPrefix(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, Buffer.of(0xff)]);
}

/** Smallest encoded key strictly greater than `key` itself. */
export function justAfter(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.of(0x00)]);
}

/** Key of a store metadata value. */
export function metaKey(name: string): Buffer {
  return join('M', name);
}

/** Largest part number S3 allows; part keys carry it zero-padded to this many digits. */
export const PART_NUMBER_MAX = 10_000;

function assertUploadParts(bucket: string, key: string, uploadId: string): void {
  assert(!bucket.includes('\0') && !key.includes('\0') && !uploadId.includes('\0'), 'NUL in upload key part');
}

/** Key of an in-progress upload. Uploads of one key sort by upload id (= initiation order). */
export function uploadKey(bucket: string, key: string, uploadId: string): Buffer {
  assertUploadParts(bucket, key, uploadId);
  return join('U', bucket, key, uploadId);
}

/** Prefix shared by every upload key of `bucket` (including the trailing separator). */
export function uploadPrefix(bucket: string): Buffer {
  return Buffer.concat([join('U', bucket), Buffer.of(SEP)]);
}

/** Splits an encoded upload key of a known bucket into object key and upload id. */
export function decodeUploadKey(bucket: string, encoded: Buffer): { key: string; uploadId: string } {
  const prefix = uploadPrefix(bucket);
  assert(encoded.subarray(0, prefix.length).equals(prefix), 'encoded upload key is not in bucket');
  const rest = encoded.subarray(prefix.length);
  const sep = rest.lastIndexOf(SEP);
  assert(sep >= 0, 'upload key without upload id');
  return { key: rest.subarray(0, sep).toString('utf8'), uploadId: rest.subarray(sep + 1).toString('utf8') };
}

/** Key of one part of an upload; part numbers are fixed-width so they sort numerically. */
export function partKey(bucket: string, key: string, uploadId: string, partNumber: number): Buffer {
  assertUploadParts(bucket, key, uploadId);
  assert(Number.isInteger(partNumber) && partNumber >= 1 && partNumber <= PART_NUMBER_MAX, 'bad part number');
  return join('P', bucket, key, uploadId, String(partNumber).padStart(5, '0'));
}

/** Prefix of every part key of one upload (including the trailing separator). */
export function partPrefix(bucket: string, key: string, uploadId: string): Buffer {
  assertUploadParts(bucket, key, uploadId);
  return Buffer.concat([join('P', bucket, key, uploadId), Buffer.of(SEP)]);
}

/** Prefix of every part key of every upload in `bucket`. */
export function bucketPartPrefix(bucket: string): Buffer {
  return Buffer.concat([join('P', bucket), Buffer.of(SEP)]);
}

/** Key of the record a completed upload leaves behind for retried completions. */
export function completionKey(bucket: string, key: string, uploadId: string): Buffer {
  assertUploadParts(bucket, key, uploadId);
  return join('C', bucket, key, uploadId);
}

/** Prefix of every completion record of `bucket`. */
export function completionPrefix(bucket: string): Buffer {
  return Buffer.concat([join('C', bucket), Buffer.of(SEP)]);
}

/** Key of a registered node ('N' 0x00 id as 12 hex digits, so nodes list in id order). */
export function nodeKey(nodeId: number): Buffer {
  assert(Number.isSafeInteger(nodeId) && nodeId > 0, 'bad node id');
  return join('N', nodeId.toString(16).padStart(12, '0'));
}

/** Range bounds covering every node record. */
export function nodeRange(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from('N\0', 'latin1'), lt: Buffer.from('N\x01', 'latin1') };
}
