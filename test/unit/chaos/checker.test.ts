/**
 * Goal: the chaos suite's checkers accept histories known to be correct and catch each known bad
 * one: stale read, lost write, split-brain (two conditional creates both acknowledged; readers
 * that see two diverging values), a read going back in time, a lost acknowledged write or delete
 * at the end, corrupt bytes, list-after-write and list-after-delete misses. A violation comes
 * with a minimal offending sub-history.
 * Method: small hand-written histories with known answers (times in ms; 'info' = indeterminate).
 */
import test from 'ava';
import { searchLinearization, shrink } from '../../../chaos/checker/linearizability.ts';
import {
  checkDurability,
  checkListings,
  checkRegisters,
  type FinalRead,
  keepsWriters,
  type ListOp,
  REGISTER_MODEL,
  type RegisterOp,
} from '../../../chaos/checker/register.ts';

let nextId = 1;
type Spec = [f: RegisterOp['f'], value: string | null, invoke: number, end: number, status?: RegisterOp['status'], expect?: string | null, key?: string];
function h(...specs: Spec[]): RegisterOp[] {
  return specs.map(([f, value, invokeTime, endTime, status = 'ok', expect, key = 'k']) => ({
    id: nextId++,
    client: `c${nextId % 3}`,
    key,
    f,
    value,
    ...(f === 'cas' ? { expect: expect ?? null } : {}),
    ...(f === 'cas' && status === 'fail' ? { refused: true } : {}),
    status,
    invokeTime,
    endTime,
  }));
}

test('good: sequential put, get, overwrite, delete, get', (t) => {
  const r = checkRegisters(h(['put', 'a', 0, 1], ['get', 'a', 2, 3], ['put', 'b', 4, 5], ['get', 'b', 6, 7], ['delete', null, 8, 9], ['get', null, 10, 11]));
  t.is(r.ok, true);
  t.is(r.violations.length, 0);
});

test('good: a read concurrent with a write may see the old or the new value', (t) => {
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['put', 'b', 2, 10], ['get', 'a', 3, 4], ['get', 'b', 5, 6], ['get', 'b', 11, 12])).ok, true);
});

test('good: an indeterminate write may take effect late, or never', (t) => {
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['put', 'b', 2, 3, 'info'], ['get', 'a', 5, 6], ['get', 'b', 7, 8])).ok, true);
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['put', 'b', 2, 3, 'info'], ['get', 'a', 5, 6], ['get', 'a', 7, 8])).ok, true);
});

test('good: compare-and-set chains, refused conditions, failed ops ignored', (t) => {
  const r = checkRegisters(
    h(
      ['cas', 'a', 0, 1, 'ok', null], // If-None-Match: * on an absent key
      ['cas', 'x', 2, 3, 'fail', null], // 412: it exists now
      ['cas', 'b', 4, 5, 'ok', 'a'], // If-Match etag(a)
      ['cas', 'y', 6, 7, 'fail', 'a'], // 412: a is no longer current
      ['put', 'z', 8, 9, 'fail'], // a definite 4xx: did nothing
      ['get', 'q', 10, 11, 'info'], // a failed read observed nothing
      ['get', 'b', 12, 13],
    ),
  );
  t.is(r.ok, true, JSON.stringify(r.violations));
});

test('good: a conditional write that failed without an answer about its condition observed nothing', (t) => {
  const ops = h(['get', null, 0, 1], ['cas', 'b', 2, 3, 'fail', null], ['get', null, 4, 5]);
  t.is(checkRegisters(ops).ok, false, 'a refused If-None-Match: * says the key existed');
  delete ops[1]!.refused; // e.g. the connection was refused
  t.is(checkRegisters(ops).ok, true);
});

test('bad: stale read after an acknowledged overwrite', (t) => {
  const r = checkRegisters(h(['put', 'a', 0, 1], ['put', 'b', 2, 3], ['get', 'a', 4, 5]));
  t.is(r.ok, false);
  t.is(r.violations[0]?.key, 'k');
  t.regex(r.violations[0]?.text ?? '', /not linearizable/);
});

test('bad: a read going back in time across two readers', (t) => {
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['put', 'b', 2, 20], ['get', 'b', 3, 4], ['get', 'a', 5, 6])).ok, false);
});

test('bad: lost write (an acknowledged write never visible, reads see the older value)', (t) => {
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['put', 'b', 2, 3], ['get', 'a', 10, 11], ['get', 'a', 12, 13])).ok, false);
  // A write that was acknowledged and then read as absent.
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['get', null, 2, 3])).ok, false);
});

test('bad: split-brain: two conditional creates of one key both acknowledged', (t) => {
  const r = checkRegisters(h(['cas', 'a', 0, 5, 'ok', null], ['cas', 'b', 1, 6, 'ok', null]));
  t.is(r.ok, false);
});

test('bad: split-brain: two compare-and-sets from the same value both succeed', (t) => {
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['cas', 'b', 2, 5, 'ok', 'a'], ['cas', 'c', 3, 6, 'ok', 'a'])).ok, false);
});

test('bad: split-brain: two leaders accept writes and readers see both histories interleave', (t) => {
  // Writes to two sides of a partition, each read back on its side, then the other side's value again.
  const r = checkRegisters(
    h(['put', 'a', 0, 1], ['put', 'L', 2, 3], ['put', 'R', 2, 3], ['get', 'L', 4, 5], ['get', 'R', 6, 7], ['get', 'L', 8, 9]),
  );
  t.is(r.ok, false);
});

test('bad: a refused condition that was in fact true', (t) => {
  t.is(checkRegisters(h(['put', 'a', 0, 1], ['cas', 'b', 2, 3, 'fail', 'a'], ['get', 'a', 4, 5])).ok, false);
});

test('bad: a read of a value nobody wrote', (t) => {
  t.is(checkRegisters(h(['get', 'ghost', 0, 1])).ok, false);
});

test('keys are checked independently and only the bad key is reported', (t) => {
  const r = checkRegisters([
    ...h(['put', 'a', 0, 1, 'ok', undefined, 'x'], ['get', 'a', 2, 3, 'ok', undefined, 'x']),
    ...h(['put', 'a', 0, 1, 'ok', undefined, 'y'], ['put', 'b', 2, 3, 'ok', undefined, 'y'], ['get', 'a', 4, 5, 'ok', undefined, 'y']),
  ]);
  t.is(r.ok, false);
  t.is(r.keys, 2);
  t.deepEqual(
    r.violations.map((v) => v.key),
    ['y'],
  );
});

test('a violation is reported with a minimal offending sub-history', (t) => {
  // A stale read buried among correct, unrelated traffic on the same key.
  const ops = h(
    ['put', 'v0', 0, 1],
    ['get', 'v0', 2, 3],
    ['put', 'v1', 4, 5],
    ['get', 'v1', 6, 7],
    ['put', 'v2', 8, 9, 'info'],
    ['get', 'v1', 10, 11],
    ['put', 'v3', 12, 13],
    ['get', 'v1', 14, 15], // stale: v3 was acknowledged before this read began
    ['put', 'v4', 16, 17],
    ['get', 'v4', 18, 19],
  );
  const r = checkRegisters(ops);
  t.is(r.ok, false);
  const minimal = r.violations[0]?.minimal ?? [];
  t.true(minimal.length <= 3, r.violations[0]?.text);
  t.true(minimal.some((o) => o.f === 'get' && o.value === 'v1' && o.invokeTime === 14), r.violations[0]?.text);
  // 1-minimal: still a violation, and removing any single op makes it linearizable.
  const timed = (o: RegisterOp) => ({ op: o, invokeTime: o.invokeTime, completeTime: o.status === 'info' ? Number.POSITIVE_INFINITY : o.endTime });
  t.is(searchLinearization(REGISTER_MODEL, minimal.map(timed)).ok, false);
  for (let i = 0; i < minimal.length; i++) {
    const fewer = minimal.filter((_, j) => j !== i).map(timed);
    if (!keepsWriters(fewer, ops.map(timed))) continue; // dropping a write its read needs is not a smaller history
    t.is(searchLinearization(REGISTER_MODEL, fewer).ok, true, `without op ${i} it should be linearizable`);
  }
  t.deepEqual(
    shrink(REGISTER_MODEL, minimal.map(timed), undefined, keepsWriters).map((o) => o.op.id),
    minimal.map((o) => o.id),
  );
});

test('the search gives up with unknown, not a verdict, when out of budget', (t) => {
  const many: Spec[] = [];
  for (let i = 0; i < 14; i++) many.push(['put', `w${i}`, 0, 100, 'info']);
  many.push(['get', 'nobody', 1, 2]);
  const r = checkRegisters(h(...many), { budget: 50 });
  t.is(r.ok, 'unknown');
});

test('a long concurrent history is checked quickly', (t) => {
  // 6 clients, 600 ops, overlapping ops, each read returning the last value acknowledged before it.
  const specs: Spec[] = [];
  let last: string | null = null;
  for (let i = 0; i < 600; i++) {
    const at = i * 10;
    if (i % 3 === 0) {
      specs.push(['put', `v${i}`, at, at + 25]);
    } else {
      specs.push(['get', last, at, at + 5]);
    }
    if (i % 3 === 0) last = i >= 3 ? `v${i - 3}` : null;
  }
  const started = performance.now();
  const r = checkRegisters(h(...specs));
  t.is(r.ok, true, r.violations[0]?.text);
  t.true(performance.now() - started < 5_000);
});

const final = (key: string, value: string | null | undefined, node = 1, bytesOk = true): FinalRead => ({ key, node, value, bytesOk });

test('durability: the last acknowledged write or a concurrent one is the final value', (t) => {
  const ops = h(['put', 'a', 0, 1], ['put', 'b', 2, 3], ['put', 'c', 4, 5, 'info']);
  t.true(checkDurability(ops, [final('k', 'b', 1), final('k', 'b', 2)]).ok);
  t.true(checkDurability(ops, [final('k', 'c', 1), final('k', 'c', 2)]).ok);
});

test('durability: a lost acknowledged write is caught', (t) => {
  const r = checkDurability(h(['put', 'a', 0, 1], ['put', 'b', 2, 3]), [final('k', 'a')]);
  t.false(r.ok);
  t.regex(r.problems.join('\n'), /lost write/);
  t.false(checkDurability(h(['put', 'a', 0, 1]), [final('k', null)]).ok);
});

test('durability: an acknowledged delete must stay deleted', (t) => {
  const r = checkDurability(h(['put', 'a', 0, 1], ['delete', null, 2, 3]), [final('k', 'a')]);
  t.false(r.ok);
  t.true(checkDurability(h(['put', 'a', 0, 1], ['delete', null, 2, 3]), [final('k', null)]).ok);
});

test('durability: corrupt bytes, a value nobody wrote, diverging nodes and failed reads are caught', (t) => {
  const ops = h(['put', 'a', 0, 1]);
  t.false(checkDurability(ops, [final('k', 'a', 1, false)]).ok);
  t.false(checkDurability(ops, [final('k', 'zzz')]).ok);
  t.false(checkDurability(ops, [final('k', 'a', 1), final('k', null, 2)]).ok);
  t.false(checkDurability(ops, [final('k', undefined)]).ok);
});

function list(prefix: string, keys: string[], invokeTime: number, endTime: number): ListOp {
  return { id: nextId++, client: 'l', prefix, keys, status: 'ok', invokeTime, endTime };
}

test('listing: list-after-write and list-after-delete hold on a good history', (t) => {
  const ops = [...h(['put', 'a', 0, 1, 'ok', undefined, 'p/1']), ...h(['put', 'b', 0, 1, 'ok', undefined, 'p/2'], ['delete', null, 2, 3, 'ok', undefined, 'p/2'])];
  t.true(checkListings(ops, [list('p/', ['p/1'], 4, 5), list('p/', ['p/1', 'p/2'], 1.5, 2.5)]).ok);
});

test('listing: a key missing after its acknowledged write is caught', (t) => {
  const ops = h(['put', 'a', 0, 1, 'ok', undefined, 'p/1']);
  const r = checkListings(ops, [list('p/', [], 2, 3)]);
  t.false(r.ok);
  t.regex(r.problems[0] ?? '', /misses p\/1/);
});

test('listing: a deleted key still listed, or a key nobody wrote, is caught', (t) => {
  const ops = h(['put', 'a', 0, 1, 'ok', undefined, 'p/1'], ['delete', null, 2, 3, 'ok', undefined, 'p/1']);
  t.false(checkListings(ops, [list('p/', ['p/1'], 4, 5)]).ok);
  t.false(checkListings(ops, [list('p/', ['p/9'], 4, 5)]).ok);
});

test('listing: an indeterminate delete excuses a missing key', (t) => {
  const ops = h(['put', 'a', 0, 1, 'ok', undefined, 'p/1'], ['delete', null, 2, 3, 'info', undefined, 'p/1']);
  t.true(checkListings(ops, [list('p/', [], 4, 5)]).ok);
});
