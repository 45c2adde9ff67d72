/** Goal: the byte budget never lets held bytes exceed its limit (but for one oversized grant) and serves waiters in order. */
import test from 'ava';
import { ByteBudget } from '../../../src/util/byte-budget.ts';

test('acquirers wait once the budget is spent and are granted in FIFO order', async (t) => {
  const budget = new ByteBudget(10);
  await budget.acquire(6);
  const order: string[] = [];
  const a = budget.acquire(6).then(() => order.push('a'));
  const b = budget.acquire(1).then(() => order.push('b'));
  await Promise.resolve();
  t.deepEqual(order, [], 'b waits behind a even though it would fit');
  budget.release(6);
  await Promise.all([a, b]);
  t.deepEqual(order, ['a', 'b']);
  t.is(budget.usedBytes, 7);
});

test('a request larger than the whole budget is granted alone', async (t) => {
  const budget = new ByteBudget(4);
  await budget.acquire(100);
  t.is(budget.usedBytes, 100);
  let granted = false;
  const next = budget.acquire(1).then(() => {
    granted = true;
  });
  await Promise.resolve();
  t.false(granted);
  budget.release(100);
  await next;
  t.true(granted);
  t.throws(() => budget.release(5), { message: /more bytes than held/ });
});
