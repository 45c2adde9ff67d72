/**
 * Goal: SeededRandom (src/util/random.ts), the source of election-timeout randomness and of the
 * simulator's faults, is deterministic per seed and roughly uniform.
 * Method: compare sequences across instances and bucket counts over many draws.
 */
import test from 'ava';
import { SeededRandom } from '../../../src/util/random.ts';

test('equal seeds give equal sequences; different seeds differ', (t) => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const c = new SeededRandom(43);
  const sa = Array.from({ length: 20 }, () => a.nextUint32());
  const sb = Array.from({ length: 20 }, () => b.nextUint32());
  const sc = Array.from({ length: 20 }, () => c.nextUint32());
  t.deepEqual(sa, sb);
  t.notDeepEqual(sa, sc);
});

test('intBelow stays in range and is roughly uniform', (t) => {
  const r = new SeededRandom(7);
  const buckets = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = r.intBelow(10);
    t.true(x >= 0 && x < 10);
    buckets[x] = (buckets[x] ?? 0) + 1;
  }
  for (const [i, n] of buckets.entries()) t.true(n > 9_000 && n < 11_000, `bucket ${i}: ${n}`);
});

test('intBelow rejects bad bounds', (t) => {
  const r = new SeededRandom(1);
  t.throws(() => r.intBelow(0), { instanceOf: TypeError });
  t.throws(() => r.intBelow(1.5), { instanceOf: TypeError });
});
