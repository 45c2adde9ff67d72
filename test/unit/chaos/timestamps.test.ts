/**
 * The Last-Modified checker (chaos/checker/timestamps.ts) on hand-made histories: a clean one,
 * an overwrite stamped before the write it superseded (a node whose clock is behind), one value
 * read with two stamps, and concurrent writes (not ordered, so not judged).
 */
import test from 'ava';
import type { RegisterOp } from '../../../chaos/checker/register.ts';
import { checkTimestamps } from '../../../chaos/checker/timestamps.ts';

let id = 0;
const put = (key: string, value: string, invokeTime: number, endTime: number): RegisterOp => ({ id: id++, client: 'c', key, f: 'put', value, status: 'ok', invokeTime, endTime });
const get = (key: string, value: string, at: number, lastModifiedMs: number): RegisterOp => ({ id: id++, client: 'r', key, f: 'get', value, status: 'ok', invokeTime: at, endTime: at + 1, lastModifiedMs });

test('overwrites stamped in order pass', (t) => {
  const r = checkTimestamps([put('k', 'a', 0, 10), get('k', 'a', 11, 5_000), put('k', 'b', 20, 30), get('k', 'b', 31, 6_000)]);
  t.true(r.ok, r.problems.join('\n'));
  t.is(r.pairs, 1);
});

test('an overwrite stamped before the write it superseded is caught', (t) => {
  const r = checkTimestamps([put('k', 'a', 0, 10), get('k', 'a', 11, 65_000), put('k', 'b', 20, 30), get('k', 'b', 31, 6_000)]);
  t.false(r.ok);
  t.regex(r.problems[0]!, /59 s earlier/);
});

test('one value read with two Last-Modified stamps is caught; the same second is not', (t) => {
  t.false(checkTimestamps([put('k', 'a', 0, 10), get('k', 'a', 11, 5_000), get('k', 'a', 12, 9_000)]).ok);
  t.true(checkTimestamps([put('k', 'a', 0, 10), get('k', 'a', 11, 5_100), get('k', 'a', 12, 5_900)]).ok);
});

test('concurrent writes are not ordered, so any stamps pass; unobserved values are not judged', (t) => {
  t.true(checkTimestamps([put('k', 'a', 0, 30), put('k', 'b', 10, 40), get('k', 'a', 50, 9_000), get('k', 'b', 51, 1_000)]).ok);
  const r = checkTimestamps([put('k', 'a', 0, 10), put('k', 'b', 20, 30), get('k', 'b', 31, 1_000)]);
  t.true(r.ok);
  t.is(r.pairs, 0);
});

test('a delete that may fall between two writes lets the key start afresh', (t) => {
  const del = (at: number, status: RegisterOp['status']): RegisterOp => ({ id: id++, client: 'd', key: 'k', f: 'delete', value: null, status, invokeTime: at, endTime: at + 5 });
  const history = [put('k', 'a', 0, 10), get('k', 'a', 11, 65_000), put('k', 'b', 20, 30), get('k', 'b', 31, 6_000)];
  t.true(checkTimestamps([...history, del(12, 'ok')]).ok);
  t.true(checkTimestamps([...history, del(12, 'info')]).ok);
  t.false(checkTimestamps([...history, del(12, 'fail')]).ok, 'a refused delete changed nothing');
  t.false(checkTimestamps([...history, del(40, 'ok')]).ok, 'a delete after both writes does not excuse them');
});
