/**
 * Goal: a follower may forward proposals to the leader while a Ready of its own is still being
 * persisted (RawNode.takeForwardedProposals), and the proposal is then committed exactly once and
 * never sent a second time with a later Ready. Method: the in-memory 3-node harness, with node 2's
 * Ready held "in flight" by hand while a proposal arrives at it.
 */
import test from 'ava';
import { EntryType, MessageType, decodeConfChange, type Message } from '../../../src/raft/index.ts';
import { TestCluster } from '../../raft/harness.ts';

test('a follower forwards a proposal while its Ready is being persisted; it commits once and leaves only once', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.propose(1, 'a');
  c.stabilize();
  const propsFrom2: Message[] = [];
  c.onDeliver = (m) => {
    if (m.from === 2 && m.type === MessageType.Prop) propsFrom2.push(m);
  };

  // Node 2 receives entries from the leader and starts persisting them (its Ready is taken).
  c.propose(1, 'b');
  c.processReady(1);
  c.deliver((m) => m.to === 2);
  const n2 = c.get(2);
  const inFlight = n2.node.ready();
  t.true(inFlight.entries.length > 0, 'node 2 has entries to persist');

  // A proposal arrives at node 2 meanwhile: it is forwarded at once, not with the next Ready.
  n2.node.propose(new TextEncoder().encode('fwd'));
  const forwarded = n2.node.takeForwardedProposals();
  t.is(forwarded.length, 1);
  t.is(forwarded[0]!.type, MessageType.Prop);
  t.is(forwarded[0]!.to, 1, 'to the leader');
  t.deepEqual(n2.node.takeForwardedProposals(), [], 'taken once');
  c.queue.push(...forwarded);

  // Node 2's persist completes as the Ready contract says; then everything settles.
  n2.storage.append(inFlight.entries);
  if (inFlight.hardState !== undefined) n2.storage.setHardState(inFlight.hardState);
  c.queue.push(...inFlight.messages);
  for (const e of inFlight.committedEntries) {
    if (e.type === EntryType.ConfChange) n2.confState = n2.node.applyConfChange(decodeConfChange(e.data));
    else if (e.data.byteLength > 0) n2.applied.push(e);
  }
  n2.node.advance(inFlight);
  c.stabilize();

  for (const id of [1, 2, 3]) t.deepEqual(c.appliedStrings(id), ['a', 'b', 'fwd'], `node ${id} applied each proposal once`);
  t.is(propsFrom2.length, 1, 'the proposal left node 2 once');
});

test('nothing but proposals is taken', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.propose(1, 'a');
  c.processReady(1);
  c.deliver((m) => m.to === 2);
  // Node 2 now owes the leader an append response: it must wait for node 2's persist.
  t.deepEqual(c.raw(2).takeForwardedProposals(), []);
  const rd = c.raw(2).ready();
  t.true(
    rd.messages.some((m) => m.type === MessageType.AppResp),
    'the append response stays in the Ready',
  );
});
