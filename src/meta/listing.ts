/**
 * S3 listing over the sorted object keys of one bucket: prefix, delimiter roll-up into common
 * prefixes, an exclusive start key and a page size. Pages are bounded by keys, not cursors, so a
 * continuation works on any node and after any restart.
 *
 * Order is UTF-8 binary order (LevelDB's bytewise comparator); strings are compared as bytes here
 * too, never with JavaScript's UTF-16 `<`.
 */
import type { ClassicLevel } from 'classic-level';
import { assert } from '../util/assert.ts';
import { afterPrefix, decodeObjectKey, justAfter, objectPrefix } from './keys.ts';
import type { ListPage, ListQuery, ObjectRecord } from './types.ts';

/** Lists one page of `bucket`. */
export async function listObjects(db: ClassicLevel<Buffer, string>, bucket: string, query: ListQuery): Promise<ListPage> {
  assert(Number.isInteger(query.maxKeys) && query.maxKeys >= 0, 'maxKeys must be a non-negative integer');
  const page: ListPage = { objects: [], commonPrefixes: [], isTruncated: false };
  const base = objectPrefix(bucket);
  const encodedPrefix = Buffer.concat([base, Buffer.from(query.prefix, 'utf8')]);
  let lower: Buffer = encodedPrefix;
  if (query.startAfter !== '') {
    const afterStart = justAfter(Buffer.concat([base, Buffer.from(query.startAfter, 'utf8')]));
    if (Buffer.compare(afterStart, lower) > 0) lower = afterStart;
  }
  page.isTruncated = await scanRolledUp(
    db,
    { base, lower, upper: afterPrefix(encodedPrefix), prefix: query.prefix, delimiter: query.delimiter, after: query.startAfter, max: query.maxKeys },
    (encoded) => decodeObjectKey(bucket, encoded),
    (item) => {
      if (item.kind === 'prefix') page.commonPrefixes.push(item.prefix);
      else page.objects.push({ key: item.key, object: JSON.parse(item.value) as ObjectRecord });
      page.lastReturned = item.kind === 'prefix' ? item.prefix : item.key;
    },
  );
  assert(page.objects.length + page.commonPrefixes.length <= query.maxKeys, 'page larger than maxKeys');
  return page;
}

/** What a rolled-up scan yields: a record listed as itself, or a common prefix (once). */
export type ScanItem = { kind: 'entry'; key: string; encoded: Buffer; value: string } | { kind: 'prefix'; prefix: string };

/** Bounds of a rolled-up scan. */
export interface ScanBounds {
  /** Encoded prefix shared by every record of the listing (bucket part of the key). */
  base: Buffer;
  lower: Buffer;
  upper: Buffer;
  /** S3 prefix and delimiter, as decoded strings. */
  prefix: string;
  delimiter: string;
  /** Common prefixes at or before this (decoded) key were returned by an earlier page. */
  after: string;
  /** Items (records plus common prefixes) in one page. */
  max: number;
}

/**
 * The listing loop shared by objects and multipart uploads: walks [lower, upper) in key order,
 * rolls records whose key holds the delimiter after the prefix up into common prefixes (each
 * reported once; the iterator jumps past every key under it), and stops after `max` items.
 * Returns true when more items followed (the page is truncated).
 */
export async function scanRolledUp(
  db: ClassicLevel<Buffer, string>,
  bounds: ScanBounds,
  decodeKey: (encoded: Buffer) => string,
  visit: (item: ScanItem) => void,
): Promise<boolean> {
  if (Buffer.compare(bounds.lower, bounds.upper) >= 0) return false;
  // A page of zero items is empty and not truncated: S3 answers max-keys=0 (max-uploads=0) with
  // IsTruncated false and no continuation, whatever the bucket holds.
  if (bounds.max === 0) return false;
  const afterBytes = Buffer.from(bounds.after, 'utf8');
  const iterator = db.iterator({ gte: bounds.lower, lt: bounds.upper });
  let count = 0;
  try {
    for (;;) {
      const entry = await iterator.next();
      if (entry === undefined) return false;
      const [encoded, value] = entry;
      const key = decodeKey(encoded);
      const commonPrefix = rollUp(key, bounds.prefix, bounds.delimiter);
      if (commonPrefix !== undefined) {
        const cpBytes = Buffer.from(commonPrefix, 'utf8');
        // Every key under this common prefix rolls up into it: jump past all of them.
        iterator.seek(afterPrefix(Buffer.concat([bounds.base, cpBytes])));
        // A prefix at or before the start key was returned by an earlier page.
        if (bounds.after !== '' && Buffer.compare(cpBytes, afterBytes) <= 0) continue;
      }
      if (count === bounds.max) return true;
      visit(commonPrefix !== undefined ? { kind: 'prefix', prefix: commonPrefix } : { kind: 'entry', key, encoded, value });
      count++;
    }
  } finally {
    await iterator.close();
  }
}

/** The common prefix `key` rolls up into, or undefined when it is listed as itself. */
export function rollUp(key: string, prefix: string, delimiter: string): string | undefined {
  if (delimiter === '') return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at < 0 ? undefined : key.slice(0, at + delimiter.length);
}
