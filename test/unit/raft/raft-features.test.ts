/**
 * Goal: check the extensions beyond the basic paper rules: pre-vote, check-quorum and leader
 * stickiness, learners, one-at-a-time membership change, leadership transfer, ReadIndex (leader,
 * follower, lease), snapshots, fast log backtracking, flow control and dropped proposals.
 * Method: a TestCluster of RawNodes over MemoryStorage with a controllable message queue; each test
 * names the rule it checks.
 */
import test from 'ava';
import {
  ConfChangeType,
  EMPTY_BYTES,
  EntryType,
  isRaftError,
  MemoryStorage,
  type Message,
  MessageType,
  RaftErrorCode,
  RawNode,
  ReadOnlyOption,
  StateType,
} from '../../../src/raft/index.ts';
import { TestCluster, testConfig } from '../../raft/harness.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function role(c: TestCluster, id: number): string {
  return c.raw(id).status().softState.raftState;
}
function term(c: TestCluster, id: number): number {
  return c.raw(id).status().hardState.term;
}
/** Ticks node `id` n times, processing its Ready after each tick, without delivering messages. */
function tickAlone(c: TestCluster, id: number, n: number): void {
  for (let i = 0; i < n; i++) {
    c.tick(id);
    c.processReady(id);
  }
}
/** Ticks every node n times with full message exchange (stabilize after each tick). */
function tickAll(c: TestCluster, n: number): void {
  for (let i = 0; i < n; i++) {
    for (const id of c.nodes.keys()) c.tick(id);
    c.stabilize();
  }
}

test('pre-vote: a partitioned node does not bump its term and does not disrupt the leader on rejoin', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { preVote: true });
  c.elect(1);
  const t0 = term(c, 1);
  c.isolate(3);
  tickAlone(c, 3, 100);
  t.is(term(c, 3), t0, 'pre-candidate never increments its term');
  t.is(role(c, 3), StateType.PreCandidate);
  c.heal();
  tickAll(c, 3);
  t.is(role(c, 1), StateType.Leader, 'leader undisturbed');
  t.is(term(c, 1), t0);
});

test('without pre-vote, a partitioned node rejoining with a higher term deposes the leader (contrast)', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  const t0 = term(c, 1);
  c.isolate(3);
  tickAlone(c, 3, 100);
  t.true(term(c, 3) > t0, 'the isolated node kept incrementing its term');
  c.heal();
  tickAll(c, 3);
  t.true(term(c, 1) > t0, 'the old leader had to adopt the higher term');
});

test('check-quorum: a leader that does not hear from a quorum within an election timeout steps down', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true });
  c.elect(1);
  c.isolate(1);
  // The first check (after 10 ticks) still sees the activity from the election round.
  tickAlone(c, 1, 10);
  t.is(role(c, 1), StateType.Leader, 'heard from a quorum during the first period');
  // The second check covers a whole election timeout of silence.
  tickAlone(c, 1, 10);
  t.is(role(c, 1), StateType.Follower);
  t.is(c.raw(1).status().softState.lead, 0);
});

test('check-quorum: a leader that hears from a quorum stays leader', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true });
  c.elect(1);
  c.isolate(3);
  tickAll(c, 50);
  t.is(role(c, 1), StateType.Leader);
});

test('leader stickiness: with check-quorum a follower ignores vote requests while within its leader lease', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true });
  c.elect(1);
  const t0 = term(c, 1);
  const vote = (from: number): Message => ({
    type: MessageType.Vote,
    to: 3,
    from,
    term: t0 + 1,
    logTerm: t0,
    index: c.raw(1).status().lastIndex,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
  });
  c.raw(3).step(vote(2));
  t.is(term(c, 3), t0, 'vote request ignored: term unchanged');
  t.deepEqual(c.raw(3).raft.msgs, [], 'no response at all');
  // Once an election timeout passes without hearing from the leader, the lease is over.
  c.raw(3).raft.electionElapsed = 10;
  c.raw(3).step(vote(2));
  t.is(term(c, 3), t0 + 1);
  t.deepEqual(
    c.raw(3).raft.msgs.map((m) => [m.type, m.reject]),
    [[MessageType.VoteResp, false]],
  );
});

test('forget leader: followers that forgot a dead leader elect a new one at once, without waiting out their lease', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true, preVote: true });
  c.elect(1);
  const t0 = term(c, 1);
  c.isolate(1); // the leader's process is gone
  // Node 2 campaigns at once but node 3 still respects the leader it heard from: no election.
  c.raw(2).campaign();
  c.stabilize();
  t.is(role(c, 2), StateType.PreCandidate, 'pre-vote refused inside the lease');
  t.is(term(c, 3), t0);
  // Both saw the leader die and forget it; a campaign now wins in one pre-vote and one vote round.
  t.true(c.raw(2).forgetLeader() === false, 'a pre-candidate has no leader to forget');
  t.true(c.raw(3).forgetLeader());
  t.is(c.raw(3).status().softState.lead, 0);
  t.is(role(c, 3), StateType.Follower, 'forgetting is not campaigning');
  c.raw(2).campaign();
  c.stabilize();
  t.is(role(c, 2), StateType.Leader);
  t.is(term(c, 2), t0 + 1);
  t.is(c.raw(3).status().softState.lead, 2);
});

test('forget leader: a follower that hears from its leader again follows it again', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true, preVote: true });
  c.elect(1);
  t.true(c.raw(2).forgetLeader());
  t.is(c.raw(2).status().softState.lead, 0);
  c.propose(1, 'x');
  c.stabilize();
  t.is(c.raw(2).status().softState.lead, 1, 'the next append restores the leader');
  t.deepEqual(c.appliedStrings(2), ['x']);
});

test('forget leader: ignored with lease reads, where the old leader counts on the lease', (t) => {
  // Nodes refuse votes for their first election timeout with leases on: tick until one wins.
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true, preVote: true, readOnlyOption: ReadOnlyOption.LeaseBased, leaseDriftTicks: 2 });
  for (let i = 0; i < 60 && ![1, 2, 3].some((id) => role(c, id) === StateType.Leader); i++) tickAll(c, 1);
  const lead = [1, 2, 3].find((id) => role(c, id) === StateType.Leader);
  if (lead === undefined) throw new Error('no leader elected');
  const follower = lead === 1 ? 2 : 1;
  t.false(c.raw(follower).forgetLeader());
  t.is(c.raw(follower).status().softState.lead, lead);
  t.false(c.raw(lead).forgetLeader(), 'a leader forgets nothing');
});

test('learner does not vote: it never campaigns, is never asked, and is not counted for commit', (t) => {
  const c = TestCluster.of([1, 2], [3]);
  tickAlone(c, 3, 100);
  t.is(role(c, 3), StateType.Follower, 'a learner never campaigns');
  c.raw(1).campaign();
  const votes = c.raw(1).raft.msgs.filter((m) => m.type === MessageType.Vote);
  t.deepEqual(votes.map((m) => m.to), [2], 'vote requests go to voters only');
  c.stabilize();
  t.is(role(c, 1), StateType.Leader);
  c.isolate(2);
  c.propose(1, 'x');
  c.stabilize();
  t.deepEqual(c.appliedStrings(1), [], 'leader + learner is not a quorum of {1,2}');
  t.is(c.raw(3).status().lastIndex, c.raw(1).status().lastIndex, 'but the learner receives the entry');
  c.heal();
  tickAll(c, 2);
  t.deepEqual(c.appliedStrings(3), ['x'], 'learner applies after commit');
});

test('conf change one-at-a-time: a second change is refused until the first is applied; a joining node catches up', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.add(4, new MemoryStorage());
  c.elect(1);
  c.raw(1).proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 4, context: EMPTY_BYTES });
  const err = t.throws(() =>
    c.raw(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: EMPTY_BYTES }),
  );
  t.true(isRaftError(err, RaftErrorCode.ProposalDropped));
  c.stabilize();
  t.deepEqual(c.get(1).confState.voters, [1, 2, 3, 4]);
  t.deepEqual(c.get(4).confState.voters, [1, 2, 3, 4], 'the new node replayed the change');
  c.propose(1, 'after-join');
  c.stabilize();
  t.deepEqual(c.appliedStrings(4), ['after-join']);
  // Now the next change is accepted.
  c.raw(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: EMPTY_BYTES });
  c.stabilize();
  t.deepEqual(c.get(2).confState.voters, [1, 2, 4]);
});

test('conf change: a new leader refuses a change until an entry of its own term is committed', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.raw(1).campaign();
  c.processReady(1);
  c.deliver(); // vote requests
  c.processReady(2);
  c.processReady(3);
  c.deliver(); // votes: 1 becomes leader, its empty entry not yet replicated
  t.is(role(c, 1), StateType.Leader);
  const err = t.throws(() =>
    c.raw(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: EMPTY_BYTES }),
  );
  t.true(isRaftError(err, RaftErrorCode.ProposalDropped));
  c.stabilize();
  t.notThrows(() => c.raw(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: EMPTY_BYTES }));
});

test('conf change: removing the leader makes it step down and the rest elect a new leader', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.raw(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1, context: EMPTY_BYTES });
  c.stabilize();
  t.is(role(c, 1), StateType.Follower);
  t.deepEqual(c.get(2).confState.voters, [2, 3]);
  tickAll(c, 30);
  const leaders = [2, 3].filter((id) => role(c, id) === StateType.Leader);
  t.is(leaders.length, 1);
});

test('conf change: promoting a learner makes it a voter', (t) => {
  const c = TestCluster.of([1, 2], [3]);
  c.elect(1);
  c.raw(1).proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 3, context: EMPTY_BYTES });
  c.stabilize();
  t.deepEqual(c.get(3).confState, { voters: [1, 2, 3], learners: [] });
  t.false(c.raw(3).raft.isLearner);
});

test('leader transfer: the transferee campaigns on MsgTimeoutNow and wins, even under check-quorum leases', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true });
  c.elect(1);
  const t0 = term(c, 1);
  c.raw(1).transferLeader(2);
  c.stabilize();
  t.is(role(c, 2), StateType.Leader);
  t.is(role(c, 1), StateType.Follower);
  t.is(term(c, 2), t0 + 1);
});

test('leader transfer: proposals are dropped while the transfer is in progress, and it aborts after an election timeout', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  c.propose(1, 'a');
  c.stabilize();
  c.raw(1).transferLeader(3); // 3 is behind: the leader first tries to catch it up
  t.is(c.raw(1).status().leadTransferee, 3);
  const err = t.throws(() => c.propose(1, 'b'));
  t.true(isRaftError(err, RaftErrorCode.ProposalDropped));
  tickAll(c, 10);
  t.is(c.raw(1).status().leadTransferee, 0, 'transfer aborted');
  t.notThrows(() => c.propose(1, 'c'));
});

test('leader transfer from a follower is forwarded to the leader', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.raw(3).transferLeader(3);
  c.stabilize();
  t.is(role(c, 3), StateType.Leader);
});

test('ReadIndex on the leader: answered after a heartbeat round with the commit index', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.propose(1, 'v');
  c.stabilize();
  c.raw(1).readIndex(enc('req-1'));
  const rd = c.processReady(1);
  t.deepEqual(rd?.readStates, [], 'not answered before a quorum confirms leadership');
  t.true((rd?.messages ?? []).some((m) => m.type === MessageType.Heartbeat && dec(m.context) === 'req-1'));
  c.stabilize();
  const rs = c.get(1).readStates;
  t.is(rs.length, 1);
  t.is(dec(rs[0]?.requestCtx ?? EMPTY_BYTES), 'req-1');
  t.is(rs[0]?.index, c.raw(1).status().hardState.commit);
});

test('ReadIndex on the leader: held until an entry of the current term is committed', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.raw(1).campaign();
  c.processReady(1);
  c.deliver();
  c.processReady(2);
  c.processReady(3);
  c.deliver();
  t.is(role(c, 1), StateType.Leader);
  c.raw(1).readIndex(enc('early'));
  t.is(c.raw(1).raft.pendingReadIndexMessages.length, 1);
  c.stabilize();
  t.is(c.get(1).readStates.length, 1);
  t.true((c.get(1).readStates[0]?.index ?? 0) >= c.raw(1).status().lastIndex);
});

test('ReadIndex on a follower: forwarded to the leader and answered with the leader commit index', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.propose(1, 'v');
  c.stabilize();
  c.raw(2).readIndex(enc('f-1'));
  c.stabilize();
  const rs = c.get(2).readStates;
  t.is(rs.length, 1);
  t.is(dec(rs[0]?.requestCtx ?? EMPTY_BYTES), 'f-1');
  t.is(rs[0]?.index, c.raw(1).status().hardState.commit);
});

test('ReadIndex lease-based (thesis 6.4.1): answered at once only while a quorum acked a heartbeat sent within electionTimeout - drift ticks; otherwise a heartbeat round', (t) => {
  t.throws(() => new RawNode(testConfig(1, { readOnlyOption: ReadOnlyOption.LeaseBased }), new MemoryStorage()), {
    instanceOf: TypeError,
  });
  t.throws(() => new RawNode(testConfig(1, { checkQuorum: true, readOnlyOption: ReadOnlyOption.LeaseBased, leaseDriftTicks: 0 }), new MemoryStorage()), {
    instanceOf: TypeError,
  });
  // Nodes refuse votes for their first election timeout with leases on: let one be elected.
  const electLeased = (): { c: TestCluster; lead: number } => {
    const c = TestCluster.of([1, 2, 3], [], { checkQuorum: true, readOnlyOption: ReadOnlyOption.LeaseBased, leaseDriftTicks: 2 });
    for (let i = 0; i < 60 && ![1, 2, 3].some((id) => role(c, id) === 'leader'); i++) tickAll(c, 1);
    const lead = [1, 2, 3].find((id) => role(c, id) === 'leader');
    if (lead === undefined) throw new Error('no leader elected');
    return { c, lead };
  };
  const { c, lead } = electLeased();
  const electionTicks = testConfig(1).electionTimeoutTicks;
  const readNow = (ctx: string): boolean => {
    c.raw(lead).readIndex(enc(ctx));
    const rd = c.processReady(lead);
    return (rd?.readStates ?? []).some((rs) => dec(rs.requestCtx) === ctx);
  };
  // Elected on this tick: no heartbeat of this term acknowledged yet, so no lease; a round answers.
  t.false(readNow('no-lease-yet'));
  c.stabilize();
  t.true(c.get(lead).readStates.some((rs) => dec(rs.requestCtx) === 'no-lease-yet'), 'answered after the round');
  // One heartbeat acked by the followers: the lease holds and reads are answered at once.
  c.tick(lead);
  c.stabilize();
  t.true(readNow('leased'));
  // Cut the leader off: acks stop; the lease holds for electionTimeout - drift ticks after the
  // last acked heartbeat was sent, then reads fall back to a round (which cannot complete).
  c.isolate(lead);
  tickAlone(c, lead, electionTicks - 2 - 1);
  t.true(readNow('still-leased'), 'within electionTimeout - drift');
  tickAlone(c, lead, 1);
  t.false(readNow('lease-expired'), 'past electionTimeout - drift: not answered at once');
  // A leadership transfer suspends the lease (TimeoutNow lets the transferee skip the followers' refusal).
  const d = electLeased();
  d.c.tick(d.lead);
  d.c.stabilize();
  const transferee = [1, 2, 3].find((id) => id !== d.lead)!;
  d.c.isolate(transferee);
  d.c.raw(d.lead).transferLeader(transferee);
  d.c.processReady(d.lead);
  d.c.raw(d.lead).readIndex(enc('during-transfer'));
  t.false((d.c.processReady(d.lead)?.readStates ?? []).some((rs) => dec(rs.requestCtx) === 'during-transfer'));
});

test('lease reads: a node that just (re)started refuses votes for an election timeout (it may have acked a heartbeat a leader still counts on)', (t) => {
  const make = (readOnlyOption?: ReadOnlyOption) => new RawNode(testConfig(3, { checkQuorum: true, ...(readOnlyOption ? { readOnlyOption } : {}) }), MemoryStorage.bootstrap({ voters: [1, 2, 3], learners: [] }));
  const vote: Message = { type: MessageType.Vote, to: 3, from: 2, term: 5, logTerm: 1, index: 1, entries: [], commit: 0, reject: false, rejectHint: 0, context: EMPTY_BYTES };
  const leased = make(ReadOnlyOption.LeaseBased);
  leased.step({ ...vote });
  t.is(leased.status().hardState.term, 1, 'ignored right after start');
  for (let i = 0; i < 10; i++) leased.tick();
  leased.step({ ...vote });
  t.is(leased.status().hardState.term, 5, 'an election timeout later it votes');
  const plain = make();
  plain.step({ ...vote });
  t.is(plain.status().hardState.term, 5, 'without leases nothing holds it back');
});

test('ReadIndex without a known leader throws RAFT_PROPOSAL_DROPPED', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  const err = t.throws(() => c.raw(2).readIndex(enc('x')));
  t.true(isRaftError(err, RaftErrorCode.ProposalDropped));
});

test('proposals without a leader, or with forwarding disabled, throw RAFT_PROPOSAL_DROPPED', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { disableProposalForwarding: true });
  const e1 = t.throws(() => c.propose(2, 'x'));
  t.is((e1 as { code?: string }).code, 'RAFT_PROPOSAL_DROPPED');
  c.elect(1);
  const e2 = t.throws(() => c.propose(2, 'x'));
  t.is((e2 as { code?: string }).code, 'RAFT_PROPOSAL_DROPPED');
});

test('followers forward proposals to the leader', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.propose(3, 'fwd');
  c.stabilize();
  for (const id of [1, 2, 3]) t.deepEqual(c.appliedStrings(id), ['fwd']);
});

test('snapshot: a follower whose entries were compacted receives MsgSnap, restores it and catches up', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
  c.stabilize();
  const leader = c.get(1);
  const applied = leader.node.status().appliedIndex;
  leader.storage.createSnapshot(applied, leader.confState, enc('state@' + applied));
  leader.storage.compact(applied);
  c.heal();
  const snaps: Message[] = [];
  c.onDeliver = (m) => {
    if (m.type === MessageType.Snap) snaps.push(m);
  };
  tickAll(c, 2);
  t.is(snaps.length, 1, 'exactly one snapshot sent');
  t.is(snaps[0]?.snapshot?.metadata.index, applied);
  t.is(dec(c.get(3).storage.snapshot().data), `state@${applied}`, 'follower persisted the snapshot');
  c.propose(1, 'after');
  c.stabilize();
  t.deepEqual(c.appliedStrings(3), ['after'], 'follower applies entries after the snapshot');
  t.is(c.raw(1).status().progress.get(3)?.state, 'replicate');
});

test('snapshot status: a failed snapshot makes the leader probe again', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  c.propose(1, 'x');
  c.stabilize();
  const leader = c.get(1);
  const applied = leader.node.status().appliedIndex;
  leader.storage.createSnapshot(applied, leader.confState, EMPTY_BYTES);
  leader.storage.compact(applied);
  c.heal();
  c.tick(1); // heartbeat -> response -> (stale append rejected) -> 3 needs compacted entries -> MsgSnap
  let sawSnap = false;
  for (let round = 0; round < 10 && !sawSnap; round++) {
    for (const id of [1, 2, 3]) c.processReady(id);
    sawSnap = c.queue.some((m) => m.type === MessageType.Snap && m.to === 3);
    if (!sawSnap) c.deliver();
  }
  t.true(sawSnap);
  t.is(c.raw(1).status().progress.get(3)?.state, 'snapshot', 'nothing else is sent while the snapshot is out');
  c.queue = []; // the transport lost it
  c.raw(1).reportSnapshot(3, false);
  t.is(c.raw(1).status().progress.get(3)?.state, 'probe');
  tickAll(c, 2);
  t.is(c.raw(3).status().lastIndex, c.raw(1).status().lastIndex, 'a new snapshot attempt succeeded');
});

test('fast backtracking: a follower with a long divergent tail is repaired in one rejection', (t) => {
  // Nodes 1, 2: entries 2..21 at term 3. Node 3: entries 2..41 at term 2 (never committed).
  const mk = (terms: number[]) => {
    const s = MemoryStorage.bootstrap({ voters: [1, 2, 3], learners: [] });
    s.append(terms.map((tm, i) => ({ index: i + 2, term: tm, type: EntryType.Normal, data: EMPTY_BYTES })));
    s.setHardState({ term: Math.max(...terms), vote: 0, commit: 1 });
    return s;
  };
  const c = new TestCluster();
  c.add(1, mk(Array(20).fill(3)));
  c.add(2, mk(Array(20).fill(3)));
  c.add(3, mk(Array(40).fill(2)));
  let rejects = 0;
  c.onDeliver = (m) => {
    if (m.type === MessageType.AppResp && m.reject) rejects++;
  };
  c.elect(1);
  t.is(role(c, 1), StateType.Leader);
  t.true(rejects <= 1, `rejections: ${rejects}`);
  t.is(c.raw(3).status().lastIndex, c.raw(1).status().lastIndex);
  t.is(c.get(3).storage.term(21), 3, 'the divergent tail was replaced');
});

test('flow control: at most maxInflightMsgs MsgApp are in flight to a follower in replicate state', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { maxInflightMsgs: 2, maxSizePerMsgBytes: 1 });
  c.elect(1);
  for (let i = 0; i < 10; i++) c.propose(1, `p${i}`);
  c.processReady(1);
  const toTwo = c.queue.filter((m) => m.type === MessageType.App && m.to === 2);
  t.is(toTwo.length, 2, 'window of 2');
  t.true(toTwo.every((m) => m.entries.length === 1), 'maxSizePerMsgBytes=1 sends one entry per message');
  c.stabilize();
  for (const id of [1, 2, 3]) t.is(c.appliedStrings(id).length, 10);
});

test('batching: with a large maxSizePerMsgBytes a lagging follower gets many entries in one MsgApp', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 20; i++) c.propose(1, `p${i}`);
  c.stabilize();
  c.heal();
  let maxBatch = 0;
  c.onDeliver = (m) => {
    if (m.type === MessageType.App && m.to === 3) maxBatch = Math.max(maxBatch, m.entries.length);
  };
  tickAll(c, 2);
  t.true(maxBatch >= 20, `largest batch ${maxBatch}`);
  t.is(c.appliedStrings(3).length, 20);
});

test('RawNode.step refuses local message types', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  const err = t.throws(() =>
    c.raw(1).step({
      type: MessageType.Hup,
      to: 1,
      from: 2,
      term: 0,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      context: EMPTY_BYTES,
    }),
  );
  t.true(isRaftError(err, RaftErrorCode.StepLocalMsg));
});

test('a single-node cluster commits and answers reads on its own', (t) => {
  const c = TestCluster.of([1]);
  c.elect(1);
  c.propose(1, 'solo');
  c.raw(1).readIndex(enc('r'));
  c.stabilize();
  t.deepEqual(c.appliedStrings(1), ['solo']);
  t.is(c.get(1).readStates.length, 1);
});

test('restart: a node rebuilt from its storage replays committed entries after its applied index', (t) => {
  const c = TestCluster.of([1, 2, 3]);
  c.elect(1);
  c.propose(1, 'a');
  c.propose(1, 'b');
  c.stabilize();
  const storage = c.get(2).storage;
  const restarted = new RawNode(testConfig(2), storage);
  t.is(restarted.status().hardState.commit, c.raw(1).status().hardState.commit, 'commit restored from HardState');
  const rd = restarted.ready();
  t.deepEqual(
    rd.committedEntries.filter((e) => e.data.byteLength > 0).map((e) => dec(e.data)),
    ['a', 'b'],
    'entries after the applied index (the bootstrap snapshot) are replayed',
  );
  t.deepEqual(rd.entries, [], 'nothing new to persist');
  restarted.advance(rd);
  const again = new RawNode(testConfig(2, { appliedIndex: restarted.status().appliedIndex }), storage);
  t.false(again.hasReady(), 'with appliedIndex given nothing is replayed');
});

test('maxCommittedSizePerReadyBytes splits committed entries across Readys', (t) => {
  const c = TestCluster.of([1], [], { maxCommittedSizePerReadyBytes: 1 });
  c.elect(1);
  c.propose(1, 'a');
  c.propose(1, 'b');
  const sizes: number[] = [];
  c.onReady = (_id, rd) => {
    if (rd.committedEntries.length > 0) sizes.push(rd.committedEntries.length);
  };
  c.stabilize();
  t.deepEqual(sizes, [1, 1]);
  t.deepEqual(c.appliedStrings(1), ['a', 'b']);
});

test('ready() twice without advance() is a programmer error', (t) => {
  const c = TestCluster.of([1]);
  c.raw(1).campaign();
  c.raw(1).ready();
  t.throws(() => c.raw(1).ready(), { message: /before advance/ });
});

test('maxUncommittedEntriesSizeBytes: the leader drops proposals beyond the uncommitted byte budget', (t) => {
  const c = TestCluster.of([1, 2, 3], [], { maxUncommittedEntriesSizeBytes: 10 });
  c.elect(1);
  c.isolate(1); // nothing commits
  c.propose(1, '123456'); // 6 bytes: accepted (nothing outstanding)
  c.propose(1, '1234'); // 10 bytes total: accepted
  const err = t.throws(() => c.propose(1, 'x'));
  t.true(isRaftError(err, RaftErrorCode.ProposalDropped));
  c.heal();
  tickAll(c, 2);
  t.deepEqual(c.appliedStrings(1), ['123456', '1234']);
  t.notThrows(() => c.propose(1, 'x'), 'budget freed once applied');
});
