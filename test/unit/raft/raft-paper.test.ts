/**
 * Goal: check the rules of the Raft paper (Ongaro & Ousterhout 2014) one by one, each test named
 * after the section it checks.
 * Method: drive a single `Raft` directly with hand-built messages and inspect its state and its
 * outbound `msgs` (like etcd's raft_paper_test.go), or a small TestCluster when several nodes must
 * interact. Founding storage starts at index 1, term 1 (MemoryStorage.bootstrap).
 */
import test from 'ava';
import { Raft } from '../../../src/raft/raft.ts';
import {
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  MessageType,
  makeMessage,
  type NodeId,
  type RaftConfig,
  StateType,
} from '../../../src/raft/index.ts';
import { testConfig } from '../../raft/harness.ts';

function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) };
}

/** Storage of a founding member with extra entries (terms) after the bootstrap entry. */
function storageWith(voters: NodeId[], terms: number[], hardTerm?: number): MemoryStorage {
  const s = MemoryStorage.bootstrap({ voters, learners: [] });
  s.append(terms.map((t, i) => ent(i + 2, t)));
  const maxTerm = Math.max(1, ...terms);
  s.setHardState({ term: hardTerm ?? maxTerm, vote: 0, commit: 1 });
  return s;
}

function newRaft(id: NodeId, voters: NodeId[] = [1, 2, 3], overrides: Partial<RaftConfig> = {}, storage?: MemoryStorage): Raft {
  return new Raft(testConfig(id, overrides), storage ?? MemoryStorage.bootstrap({ voters, learners: [] }));
}

function take(r: Raft): Message[] {
  const m = r.msgs;
  r.msgs = [];
  return m;
}

function msg(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return makeMessage(fields);
}

/** Elects `r` and, as a host would, persists the entries it appended (its empty entry). */
function makeLeader(r: Raft): void {
  r.becomeCandidate();
  r.becomeLeader();
  r.onPersisted(r.log.lastIndex(), r.term);
  take(r);
}

test('§5.1 a node that sees a higher term adopts it and becomes follower', (t) => {
  const r = newRaft(1);
  makeLeader(r);
  const term = r.term;
  r.step(msg({ type: MessageType.App, from: 2, to: 1, term: term + 3, index: 1, logTerm: 1 }));
  t.is(r.term, term + 3);
  t.is(r.state, StateType.Follower);
  t.is(r.lead, 2, 'a MsgApp at a higher term names the new leader');
});

test('§5.1 a node ignores requests with a stale term', (t) => {
  const r = newRaft(1);
  r.becomeFollower(5, 2);
  r.step(msg({ type: MessageType.App, from: 3, to: 1, term: 4, index: 1, logTerm: 1, entries: [ent(2, 4)] }));
  t.is(r.log.lastIndex(), 1, 'no entries accepted from a stale leader');
  t.deepEqual(take(r), [], 'without check-quorum/pre-vote a stale MsgApp gets no answer');
});

test('§5.2 a follower that hears nothing for an election timeout becomes candidate and requests votes', (t) => {
  const r = newRaft(1);
  const term = r.term;
  for (let i = 0; i < 2 * r.electionTimeout; i++) r.tick();
  t.is(r.state, StateType.Candidate);
  t.is(r.term, term + 1, 'the candidate increments its term');
  t.is(r.vote, 1, 'the candidate votes for itself');
  const msgs = take(r);
  t.deepEqual(
    msgs.map((m) => [m.type, m.to, m.term, m.index, m.logTerm]),
    [
      [MessageType.Vote, 2, term + 1, 1, 1],
      [MessageType.Vote, 3, term + 1, 1, 1],
    ],
  );
});

test('§5.2 election timeouts are randomized in [T, 2T)', (t) => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 200; seed++) {
    const r = new Raft(testConfig(1, { random: { intBelow: (n) => (seed * 7919) % n } }), MemoryStorage.bootstrap({ voters: [1, 2, 3], learners: [] }));
    t.true(r.randomizedElectionTimeout >= 10 && r.randomizedElectionTimeout < 20, `seed ${seed}`);
    seen.add(r.randomizedElectionTimeout);
  }
  t.true(seen.size >= 5, 'timeouts actually vary');
});

test('§5.2 a candidate that receives votes from a majority becomes leader', (t) => {
  const r = newRaft(1, [1, 2, 3, 4, 5]);
  r.step(msg({ type: MessageType.Hup, from: 1 })); // campaign: candidate + self vote
  take(r);
  r.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: r.term }));
  t.is(r.state, StateType.Candidate, '2 of 5 votes is not a majority');
  r.step(msg({ type: MessageType.VoteResp, from: 3, to: 1, term: r.term }));
  t.is(r.state, StateType.Leader, '3 of 5 votes is a majority');
  t.is(r.lead, 1);
});

test('§5.2 a candidate that receives rejections from a majority becomes follower', (t) => {
  const r = newRaft(1, [1, 2, 3]);
  r.step(msg({ type: MessageType.Hup, from: 1 }));
  const term = r.term;
  r.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term, reject: true }));
  t.is(r.state, StateType.Candidate);
  r.step(msg({ type: MessageType.VoteResp, from: 3, to: 1, term, reject: true }));
  t.is(r.state, StateType.Follower);
  t.is(r.term, term, 'losing does not change the term');
});

test('§5.2 a candidate that receives a MsgApp from a leader of its term becomes follower', (t) => {
  const r = newRaft(1);
  r.becomeCandidate();
  r.step(msg({ type: MessageType.App, from: 2, to: 1, term: r.term, index: 1, logTerm: 1 }));
  t.is(r.state, StateType.Follower);
  t.is(r.lead, 2);
});

test('§5.2 a voter grants at most one vote per term, first come first served', (t) => {
  const r = newRaft(1);
  const term = r.term + 1;
  r.step(msg({ type: MessageType.Vote, from: 2, to: 1, term, index: 1, logTerm: 1 }));
  r.step(msg({ type: MessageType.Vote, from: 3, to: 1, term, index: 1, logTerm: 1 }));
  r.step(msg({ type: MessageType.Vote, from: 2, to: 1, term, index: 1, logTerm: 1 }));
  t.deepEqual(
    take(r).map((m) => [m.to, m.reject]),
    [
      [2, false],
      [3, true],
      [2, false],
    ],
    'second candidate rejected; a retransmitted request from the chosen one is granted again',
  );
  t.is(r.vote, 2);
});

test('§5.4.1 a voter rejects a candidate whose log is less up to date', (t) => {
  // Voter log: index 2..3 at term 2.
  const cases: Array<[number, number, boolean]> = [
    // [candidate lastLogTerm, candidate lastIndex, granted]
    [1, 10, false], // lower last term loses regardless of length
    [2, 2, false], // same last term, shorter log
    [2, 3, true], // same last term, same length
    [2, 4, true], // same last term, longer
    [3, 1, true], // higher last term wins regardless of length
  ];
  for (const [logTerm, index, granted] of cases) {
    const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [2, 2]));
    r.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 5, index, logTerm }));
    const [resp] = take(r);
    t.is(resp?.type, MessageType.VoteResp);
    t.is(resp?.reject, !granted, `candidate (${logTerm}, ${index})`);
  }
});

test('§5.3 a follower rejects MsgApp whose previous entry does not match, and truncates conflicts', (t) => {
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [2, 2]));
  r.step(msg({ type: MessageType.App, from: 2, to: 1, term: 3, index: 3, logTerm: 3, entries: [ent(4, 3)] }));
  const [rej] = take(r);
  t.true(rej?.reject, 'prev (3, term 3) does not match our (3, term 2)');
  t.is(r.log.lastIndex(), 3);
  r.step(msg({ type: MessageType.App, from: 2, to: 1, term: 3, index: 2, logTerm: 2, entries: [ent(3, 3), ent(4, 3)] }));
  const [ok] = take(r);
  t.false(ok?.reject);
  t.is(ok?.index, 4);
  t.is(r.log.term(3), 3, 'the conflicting entry at 3 was replaced');
  t.is(r.log.lastIndex(), 4);
});

test('§5.3 a leader commits an entry of its term once a majority stores it, and followers learn it', (t) => {
  const r = newRaft(1, [1, 2, 3, 4, 5]);
  makeLeader(r);
  const emptyIndex = r.log.lastIndex();
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: r.term, index: emptyIndex }));
  t.is(r.log.committed, 1, 'leader + 1 of 5 is not a majority');
  r.step(msg({ type: MessageType.AppResp, from: 3, to: 1, term: r.term, index: emptyIndex }));
  t.is(r.log.committed, emptyIndex, 'leader + 2 of 5 is a majority');
  const apps = take(r).filter((m) => m.type === MessageType.App);
  t.true(apps.length > 0 && apps.every((m) => m.commit === emptyIndex), 'the new commit index is broadcast');
});

test('§10.2.1 a leader counts its own entries toward commit only once they are durable (so it may send before its fsync)', (t) => {
  const r = newRaft(1, [1, 2, 3]);
  r.becomeCandidate();
  r.becomeLeader();
  take(r);
  const emptyIndex = r.log.lastIndex();
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: r.term, index: emptyIndex }));
  t.is(r.log.committed, 1, 'follower 2 alone is 1 of 3: the leader has not persisted its entry yet');
  r.onPersisted(emptyIndex, r.term);
  t.is(r.log.committed, emptyIndex, 'leader + follower 2 is a majority once the leader persisted');
  t.true(take(r).some((m) => m.type === MessageType.App && m.commit === emptyIndex), 'the new commit index is broadcast');
  // A persist report for an entry no longer in the log (other term) counts nothing.
  r.onPersisted(emptyIndex, r.term + 5);
  t.is(r.trk.progress.get(1)?.match, emptyIndex);
});

test('§5.4.2 leader never commits a previous-term entry by counting replicas', (t) => {
  // Figure 8: node 1 holds an entry of term 2 at index 2 and becomes leader in term 3.
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [2], 2));
  makeLeader(r);
  t.is(r.term, 3);
  t.is(r.log.lastIndex(), 3, 'leader appended its empty entry of term 3 at index 3');
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 2 }));
  t.is(r.log.committed, 1, 'index 2 (term 2) is on a majority but must not be committed by counting');
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 3 }));
  t.is(r.log.committed, 3, 'committing the term-3 entry commits index 2 indirectly');
});

test('§5.3 leader sends missing entries after a follower acknowledges (log replication)', (t) => {
  const r = newRaft(1);
  makeLeader(r);
  r.step(msg({ type: MessageType.Prop, from: 1, entries: [ent(0, 0, 'x')] }));
  const apps = take(r).filter((m) => m.type === MessageType.App);
  // Followers start in probe state: one MsgApp each, carrying everything after their probe point.
  t.deepEqual(apps.map((m) => m.to), [2, 3]);
  for (const m of apps) {
    t.is(m.term, r.term);
    t.deepEqual(m.entries.map((e) => e.index), [2, 3], 'the empty entry and the proposal');
  }
  // A follower's ack moves it to replicate state, so the next proposal is pipelined at once.
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: r.term, index: 3 }));
  take(r);
  r.step(msg({ type: MessageType.Prop, from: 1, entries: [ent(0, 0, 'y')] }));
  t.deepEqual(take(r).filter((m) => m.type === MessageType.App).map((m) => m.to), [2], 'node 3 is still probing (paused)');
});
