/**
 * Goal: S3 listing over LevelDB returns exactly what a dumb oracle over a sorted array returns,
 * for any keys, prefix, delimiter, start key and page size, and paginating with the last returned
 * entry visits every entry once. Method: fast-check generates key sets over an alphabet chosen to
 * expose UTF-16 vs UTF-8 ordering (U+FF5A sorts after U+1F600 in UTF-16, before it in UTF-8)
 * and delimiter edge cases; the store is a real classic-level database in a temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import fc from 'fast-check';
import { type LevelMetaStore, openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { ListQuery, MetaCommand, MetaOp, ObjectRecord } from '../../../src/meta/types.ts';

const test = anyTest as TestFn<{ dir: string; store: LevelMetaStore; bucketSeq: number }>;

test.before(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-listing-'));
  t.context = { dir, store: await openLevelMetaStore({ location: dir, syncWrites: false }), bucketSeq: 0 };
});
test.after.always(async (t) => {
  await t.context.store.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

const object: ObjectRecord = {
  sizeBytes: 0,
  etag: 'd41d8cd98f00b204e9800998ecf8427e',
  lastModifiedMs: 1,
  writeId: 'w',
  owner: 'o',
  contentType: 'x',
  headers: {},
  userMeta: {},
  data: { kind: 'inline', base64: '' },
};

let requestSeq = 0;
async function apply(store: LevelMetaStore, op: MetaOp) {
  const command: MetaCommand = { v: 1, requestId: `r${++requestSeq}`, stampMs: 1, op };
  const [result] = await store.applyBatch([{ index: store.appliedIndex() + 1, command }]);
  if (!result?.ok) throw new Error(`apply failed: ${JSON.stringify(result)}`);
  return result!;
}

const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

type Entry = { kind: 'key' | 'prefix'; value: string };

function oracle(keys: string[], q: ListQuery): { entries: Entry[]; isTruncated: boolean } {
  const all: Entry[] = [];
  for (const key of [...keys].sort(cmp)) {
    if (!key.startsWith(q.prefix)) continue;
    const at = q.delimiter === '' ? -1 : key.indexOf(q.delimiter, q.prefix.length);
    if (at >= 0) {
      const cp = key.slice(0, at + q.delimiter.length);
      if (q.startAfter !== '' && cmp(cp, q.startAfter) <= 0) continue;
      if (all.at(-1)?.value === cp) continue;
      all.push({ kind: 'prefix', value: cp });
      continue;
    }
    if (q.startAfter !== '' && cmp(key, q.startAfter) <= 0) continue;
    all.push({ kind: 'key', value: key });
  }
  // S3: a max-keys=0 page is empty and never truncated.
  return { entries: all.slice(0, q.maxKeys), isTruncated: q.maxKeys > 0 && all.length > q.maxKeys };
}

const char = fc.constantFrom('a', 'b', '/', '-', 'é', '\u{1F600}', '\uFF5A', '\u0001');
const str = (max: number) => fc.array(char, { maxLength: max }).map((cs) => cs.join(''));

test.serial('one page equals the oracle for any keys and query', async (t) => {
  const { store } = t.context;
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(str(6).filter((k) => k !== ''), { maxLength: 25 }),
      str(2),
      fc.constantFrom('', '/', 'a', 'é/', '\u{1F600}'),
      fc.oneof(fc.constant(''), str(4)),
      fc.integer({ min: 0, max: 30 }),
      async (keys, prefix, delimiter, startAfter, maxKeys) => {
        const bucket = `b${++t.context.bucketSeq}`;
        await apply(store, { type: 'CreateBucket', bucket: { name: bucket, createdMs: 1, region: 'r', owner: 'o' } });
        for (const key of keys) await apply(store, { type: 'PutObject', bucket, key, object });
        const q = { prefix, delimiter, startAfter, maxKeys };
        const page = await store.listObjects(bucket, q);
        const expected = oracle(keys, q);
        const got: Entry[] = [
          ...page.objects.map((o) => ({ kind: 'key' as const, value: o.key })),
          ...page.commonPrefixes.map((p) => ({ kind: 'prefix' as const, value: p })),
        ].sort((a, b) => cmp(a.value, b.value));
        t.deepEqual(got, expected.entries, JSON.stringify(q));
        t.is(page.isTruncated, expected.isTruncated, JSON.stringify(q));
      },
    ),
    { numRuns: 150 },
  );
});

test.serial('paginating by the last returned entry visits every entry exactly once', async (t) => {
  const { store } = t.context;
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(str(5).filter((k) => k !== ''), { maxLength: 30 }),
      fc.constantFrom('', '/', 'a'),
      fc.integer({ min: 1, max: 4 }),
      async (keys, delimiter, maxKeys) => {
        const bucket = `p${++t.context.bucketSeq}`;
        await apply(store, { type: 'CreateBucket', bucket: { name: bucket, createdMs: 1, region: 'r', owner: 'o' } });
        for (const key of keys) await apply(store, { type: 'PutObject', bucket, key, object });
        const seen: string[] = [];
        let startAfter = '';
        for (let pages = 0; ; pages++) {
          t.true(pages <= keys.length + 1, 'pagination terminates');
          const page = await store.listObjects(bucket, { prefix: '', delimiter, startAfter, maxKeys });
          seen.push(...page.objects.map((o) => o.key), ...page.commonPrefixes);
          if (!page.isTruncated) break;
          startAfter = page.lastReturned!;
        }
        const expected = oracle(keys, { prefix: '', delimiter, startAfter: '', maxKeys: Number.MAX_SAFE_INTEGER }).entries.map((e) => e.value);
        t.deepEqual(seen.sort(cmp), expected);
      },
    ),
    { numRuns: 80 },
  );
});
