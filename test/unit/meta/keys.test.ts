/**
 * Goal: the metadata key layout is exactly tag 0x00 part 0x00 part… in UTF-8 bytes (the on-disk
 * format), and object keys sort in UTF-8 binary order. Method: fast-check against a byte-level
 * oracle.
 */
import test from 'ava';
import fc from 'fast-check';
import { bucketKey, bucketKeyBinary, completionKey, objectKey, objectKeyBinary, partKey } from '../../../src/meta/keys.ts';

const oracle = (tag: string, ...parts: string[]) =>
  Buffer.concat([Buffer.from(tag, 'latin1'), ...parts.flatMap((p) => [Buffer.of(0), Buffer.from(p, 'utf8')])]);
const noNul = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));

test('keys are tag, NUL and UTF-8 parts, byte for byte', (t) => {
  fc.assert(
    fc.property(noNul, noNul, noNul, fc.integer({ min: 1, max: 10_000 }), (bucket, key, upload, n) => {
      t.true(objectKey(bucket, key).equals(oracle('O', bucket, key)));
      t.true(partKey(bucket, key, upload, n).equals(oracle('P', bucket, key, upload, String(n).padStart(5, '0'))));
      t.true(completionKey(bucket, key, upload).equals(oracle('C', bucket, key, upload)));
    }),
  );
});

test('binary-string keys are the latin1 view of the same bytes', (t) => {
  fc.assert(
    fc.property(noNul, noNul, (bucket, key) => {
      t.is(objectKeyBinary(bucket, key), objectKey(bucket, key).toString('latin1'));
      t.is(bucketKeyBinary(bucket), bucketKey(bucket).toString('latin1'));
    }),
  );
});

test('object keys of one bucket sort in UTF-8 binary order', (t) => {
  fc.assert(
    fc.property(noNul, noNul, (a, b) => {
      const byBytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
      t.is(Math.sign(Buffer.compare(objectKey('bkt', a), objectKey('bkt', b))), Math.sign(byBytes));
    }),
  );
});
