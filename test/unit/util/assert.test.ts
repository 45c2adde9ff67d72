/** Goal: assert() throws a coded AssertionError on falsy input and passes truthy input through. */
import test from 'ava';
import { assert, AssertionError } from '../../../src/util/assert.ts';

test('assert throws AssertionError with a stable code on a falsy condition', (t) => {
  const err = t.throws(() => assert(0, 'zero is falsy'), { instanceOf: AssertionError });
  t.is(err?.code, 'ERR_ASSERTION');
  t.is(err?.message, 'zero is falsy');
});

test('assert passes a truthy condition', (t) => {
  t.notThrows(() => assert(1));
});
