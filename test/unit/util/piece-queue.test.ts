/**
 * Goal: PieceQueue hands pushed pieces to its consumer in order, waits for pieces not yet pushed,
 * and fails the consumer when the frame ends short.
 */
import test from 'ava';
import { PieceQueue } from '../../../src/util/piece-queue.ts';

async function drain(queue: PieceQueue): Promise<string> {
  let text = '';
  for await (const piece of queue) text += piece.toString();
  return text;
}

test('pieces pushed before and after the consumer starts arrive in order; end() completes it', async (t) => {
  const queue = new PieceQueue(6);
  queue.push(Buffer.from('ab'));
  const consumed = drain(queue);
  await new Promise((r) => setImmediate(r));
  queue.push(Buffer.from('cd'));
  queue.push(Buffer.from('ef'));
  t.true(queue.complete);
  queue.end();
  t.is(await consumed, 'abcdef');
});

test('a frame that ends short fails its consumer', async (t) => {
  const queue = new PieceQueue(10);
  const consumed = drain(queue);
  queue.push(Buffer.from('abc'));
  t.false(queue.complete);
  queue.end();
  await t.throwsAsync(consumed, { message: 'connection ended inside a chunk' });
});
