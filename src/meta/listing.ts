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
  const startAfterBytes = Buffer.from(query.startAfter, 'utf8');
  let lower: Buffer = encodedPrefix;
  if (query.startAfter !== '') {
    const afterStart = justAfter(Buffer.concat([base, startAfterBytes]));
    if (Buffer.compare(afterStart, lower) > 0) lower = afterStart;
  }
  const upper = afterPrefix(encodedPrefix);
  if (Buffer.compare(lower, upper) >= 0) return page;

  const iterator = db.iterator({ gte: lower, lt: upper });
  let count = 0;
  try {
    for (;;) {
      const entry = await iterator.next();
      if (entry === undefined) break;
      const [encodedKey, value] = entry;
      const key = decodeObjectKey(bucket, encodedKey);
      const commonPrefix = rollUp(key, query.prefix, query.delimiter);
      if (commonPrefix !== undefined) {
        const cpBytes = Buffer.from(commonPrefix, 'utf8');
        // Every key under this common prefix rolls up into it: jump past all of them.
        iterator.seek(afterPrefix(Buffer.concat([base, cpBytes])));
        // A prefix at or before the start key was returned by an earlier page.
        if (query.startAfter !== '' && Buffer.compare(cpBytes, startAfterBytes) <= 0) continue;
        if (count === query.maxKeys) {
          page.isTruncated = true;
          break;
        }
        page.commonPrefixes.push(commonPrefix);
        page.lastReturned = commonPrefix;
        count++;
        continue;
      }
      if (count === query.maxKeys) {
        page.isTruncated = true;
        break;
      }
      page.objects.push({ key, object: JSON.parse(value) as ObjectRecord });
      page.lastReturned = key;
      count++;
    }
  } finally {
    await iterator.close();
  }
  assert(count <= query.maxKeys, 'page larger than maxKeys');
  return page;
}

/** The common prefix `key` rolls up into, or undefined when it is listed as itself. */
export function rollUp(key: string, prefix: string, delimiter: string): string | undefined {
  if (delimiter === '') return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at < 0 ? undefined : key.slice(0, at + delimiter.length);
}
