/** Goal: a 3-node cluster elects a leader and replicates a proposal to all nodes (smoke test). */
import test from 'ava';
import { StateType } from '../../../src/raft/index.ts';
import { TestCluster } from '../../raft/harness.ts';

test('3 nodes elect node 1 and apply a proposal everywhere', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  t.is(c.raw(1).status().softState.raftState, StateType.Leader);
  c.propose(1, 'hello');
  c.stabilize();
  for (const id of [1, 2, 3]) t.deepEqual(c.appliedStrings(id), ['hello'], `node ${id}`);
});
