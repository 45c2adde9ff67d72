/**
 * Goal: the register linearizability checker used by the Raft simulator accepts linearizable
 * histories and rejects non-linearizable ones, including with indeterminate (timed-out) puts.
 * Method: small hand-written histories with known answers.
 */
import test from 'ava';
import { checkHistory, type RegisterOp } from './raft-linearizability.ts';

const INF = Number.POSITIVE_INFINITY;
function op(id: string, kind: 'put' | 'get', value: string | null, invokeTime: number, completeTime: number): RegisterOp {
  return { id, kind, key: 'k', value, invokeTime, completeTime };
}

test('sequential put then get of the same value is linearizable', (t) => {
  t.is(checkHistory([op('a', 'put', '1', 0, 1), op('b', 'get', '1', 2, 3)]).ok, true);
});

test('a stale read after a completed put is not linearizable', (t) => {
  const r = checkHistory([op('a', 'put', '1', 0, 1), op('b', 'put', '2', 2, 3), op('c', 'get', '1', 4, 5)]);
  t.is(r.ok, false);
});

test('a read concurrent with a put may see either value', (t) => {
  t.is(checkHistory([op('a', 'put', '1', 0, 1), op('b', 'put', '2', 2, 6), op('c', 'get', '1', 3, 4)]).ok, true);
  t.is(checkHistory([op('a', 'put', '1', 0, 1), op('b', 'put', '2', 2, 6), op('c', 'get', '2', 3, 4)]).ok, true);
});

test('reads must not go back in time (new then old) across two readers', (t) => {
  const r = checkHistory([
    op('a', 'put', '1', 0, 1),
    op('b', 'put', '2', 2, 10),
    op('c', 'get', '2', 3, 4),
    op('d', 'get', '1', 5, 6),
  ]);
  t.is(r.ok, false);
});

test('an indeterminate put may take effect late or never', (t) => {
  t.is(checkHistory([op('a', 'put', '1', 0, INF), op('b', 'get', null, 5, 6)]).ok, true);
  t.is(checkHistory([op('a', 'put', '1', 0, INF), op('b', 'get', null, 5, 6), op('c', 'get', '1', 7, 8)]).ok, true);
  t.is(checkHistory([op('a', 'put', '1', 0, INF), op('b', 'get', '1', 5, 6), op('c', 'get', null, 7, 8)]).ok, false);
});

test('a read of a value never written is not linearizable', (t) => {
  t.is(checkHistory([op('a', 'get', 'ghost', 0, 1)]).ok, false);
});
