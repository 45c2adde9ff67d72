/**
 * Goal: the join protocol's decisions (src/membership/join.ts, promoter.ts) on their own:
 * allocation through the log never hands out an id twice, an id that is a member with another
 * data directory is refused, a lost answer can be asked again, the joiner's loop treats refusals
 * as final and "not now" as a reason to retry, and the promoter promotes only learners that
 * really replicate. Method: fakes for consensus and HTTP; no sockets, no timers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaOp, ReplacementRecord } from '../../../src/meta/types.ts';
import type { Member } from '../../../src/membership/gossip.ts';
import { JoinAdmitter, joinCluster, MEMBERSHIP_ERR_CONFLICT, MEMBERSHIP_ERR_JOIN_TIMEOUT, MEMBERSHIP_ERR_REFUSED, parseJoinRequest } from '../../../src/membership/join.ts';
import { learnerToPromote, votersWanted } from '../../../src/membership/promoter.ts';
import { replacementProblems } from '../../../src/membership/replace.ts';
import type { ProgressStatus } from '../../../src/raft/types.ts';

/** A fake cluster: a counter applied in order, learners added to a conf state. */
function fakeCluster(voters: number[]) {
  const conf = { voters: [...voters], learners: [] as number[] };
  let next = 1;
  const incarnations = new Map<number, string>([[2, 'aaaaaaaaaaaaaaaa']]);
  const leads = { self: true };
  // Node 2's process is gone (the leader no longer hears it); 1 and 3 answer.
  const active = new Set([1, 3]);
  const leaving = new Set<number>();
  const registered: number[] = [];
  const replacements = new Map<number, ReplacementRecord>();
  const allocated = new Map<string, number>();
  const admitter = new JoinAdmitter({
    clusterId: 'c1',
    confState: () => ({ voters: [...conf.voters], learners: [...conf.learners] }),
    propose: async (op: MetaOp) => {
      if (op.type === 'SetReplacement') {
        // The meta store's compare-and-set.
        if ((replacements.get(op.nodeId)?.state ?? null) !== op.expected) return { ok: false, code: 'META_ERR_PRECONDITION_FAILED', message: 'state moved' };
        if (op.record) replacements.set(op.nodeId, op.record);
        else replacements.delete(op.nodeId);
        return { ok: true };
      }
      if (op.type !== 'AllocateNodeId') throw new Error('unexpected op');
      // The meta store's rule: max(floor, counter), then the counter moves past it; the same
      // incarnation gets its id again.
      await new Promise((r) => setImmediate(r));
      const given = op.incarnation === undefined ? undefined : allocated.get(op.incarnation);
      if (given !== undefined) return { ok: true, value: { kind: 'AllocateNodeId', nodeId: given } };
      const nodeId = Math.max(op.floor, next);
      next = nodeId + 1;
      if (op.incarnation !== undefined) allocated.set(op.incarnation, nodeId);
      return { ok: true, value: { kind: 'AllocateNodeId', nodeId } };
    },
    addLearner: async (id) => {
      conf.learners.push(id);
    },
    removeNode: async (id) => {
      conf.voters = conf.voters.filter((v) => v !== id);
      conf.learners = conf.learners.filter((v) => v !== id);
      incarnations.delete(id);
    },
    listNodes: async () => registered.map((nodeId) => ({ nodeId, s3Url: `http://h${nodeId}:9000`, raftAddress: `h${nodeId}:9001`, weight: 1 })),
    incarnationOf: (id) => incarnations.get(id),
    peers: () => ({ '1': '127.0.0.1:9001' }),
    leader: () => (leads.self ? { self: true } : { self: false, s3Url: 'http://leader:9000' }),
    isActive: (id) => active.has(id),
    leavingIds: async () => [...leaving],
    replacementOf: async (id) => replacements.get(id),
  });
  return { conf, admitter, leads, active, leaving, registered, replacements };
}

const request = (extra: object = {}) => parseJoinRequest({ incarnation: 'bbbbbbbbbbbbbbbb', raftAddress: '127.0.0.1:9005', s3Url: 'http://127.0.0.1:9004', ...extra });

test('concurrent joins get distinct ids above every member, each added as a learner', async (t) => {
  const { conf, admitter } = fakeCluster([1, 2, 3]);
  const answers = await Promise.all(['1111111111111111', '2222222222222222', '3333333333333333'].map((incarnation) => admitter.admit(request({ incarnation }))));
  t.deepEqual(answers.map((a) => a.nodeId).sort(), [4, 5, 6]);
  t.deepEqual(conf.learners.sort(), [4, 5, 6]);
  t.deepEqual(answers[0]!.peers, { '1': '127.0.0.1:9001' }, 'the answer tells the joiner where the members are');
});

test('a joiner whose answer was lost asks again and gets the same id: no orphan learner, no second id', async (t) => {
  const { conf, admitter } = fakeCluster([1, 2, 3]);
  const first = await admitter.admit(request({ incarnation: 'dddddddddddddddd' }));
  const again = await admitter.admit(request({ incarnation: 'dddddddddddddddd' }));
  t.is(again.nodeId, first.nodeId);
  t.deepEqual(conf.learners, [first.nodeId], 'one learner');
  const other = await admitter.admit(request({ incarnation: 'eeeeeeeeeeeeeeee' }));
  t.not(other.nodeId, first.nodeId, 'another data directory is another node');
});

test('AllocateNodeId in the meta store: the same incarnation gets its id back without moving the counter', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-alloc-'));
  try {
    const s = await openLevelMetaStore({ location: dir, syncWrites: false });
    const cmd = (i: number, op: MetaOp) => ({ index: i, command: { v: 1 as const, requestId: `r${i}`, stampMs: 1, op } });
    const r = await s.applyBatch([
      cmd(1, { type: 'AllocateNodeId', floor: 4, incarnation: 'aa11' }),
      cmd(2, { type: 'AllocateNodeId', floor: 4, incarnation: 'aa11' }),
      cmd(3, { type: 'AllocateNodeId', floor: 4, incarnation: 'bb22' }),
      cmd(4, { type: 'AllocateNodeId', floor: 4 }),
    ]);
    t.deepEqual(r.map((x) => (x.ok && x.value?.kind === 'AllocateNodeId' ? x.value.nodeId : x)), [4, 4, 5, 6]);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an id that is a member with another data directory is refused; the same directory asking again is answered', async (t) => {
  const { conf, admitter } = fakeCluster([1, 2, 3]);
  const err = await t.throwsAsync(admitter.admit(request({ nodeId: 2 })));
  t.is((err as { code?: string }).code, MEMBERSHIP_ERR_CONFLICT);
  t.regex(err!.message, /node 2 is already a member with another data directory/);
  t.deepEqual(conf.learners, [], 'nothing changed');
  const again = await admitter.admit(request({ nodeId: 2, incarnation: 'aaaaaaaaaaaaaaaa' }));
  t.is(again.nodeId, 2);
  t.deepEqual(conf.learners, [], 'already a member: no second conf change');
  t.is((await admitter.admit(request({ nodeId: 9 }))).nodeId, 9, 'a free id asked for is used');
});

test('replace: a member whose data directory was lost is removed and added back as a learner under its id; a late founder is let in as it is', async (t) => {
  const { conf, admitter } = fakeCluster([1, 2, 3]);
  const answer = await admitter.admit(request({ nodeId: 2, replace: true }));
  t.deepEqual([answer.nodeId, answer.replaced], [2, true]);
  t.deepEqual(conf, { voters: [1, 3], learners: [2] }, 'the old voter 2 is gone, the new 2 is a learner (the promoter makes it a voter)');
  const late = await admitter.admit(request({ nodeId: 3, replace: true }));
  t.deepEqual([late.nodeId, late.replaced], [3, undefined], 'node 3 never spoke: its place is waiting, nothing changes');
  t.deepEqual(conf, { voters: [1, 3], learners: [2] });
  t.throws(() => parseJoinRequest({ incarnation: 'aaaaaaaa', raftAddress: 'h:1', s3Url: 'http://h:2', replace: true }), { code: 'MEMBERSHIP_ERR_BAD_REQUEST' }, 'replace needs an id');
});

test('replace asked by the operator (ts3ctl replace): a joiner naming the id takes the place without TS3GW_REPLACE; the step is recorded, and its lost answer asked again changes nothing', async (t) => {
  const { conf, admitter, replacements } = fakeCluster([1, 2, 3]);
  replacements.set(2, { nodeId: 2, state: 'waiting', startedMs: 1, updatedMs: 1, wasVoter: true });
  const answer = await admitter.admit(request({ nodeId: 2 }));
  t.deepEqual([answer.nodeId, answer.replaced], [2, true]);
  t.deepEqual(conf, { voters: [1, 3], learners: [2] });
  t.like(replacements.get(2), { state: 'joined', wasVoter: true, incarnation: 'bbbbbbbbbbbbbbbb', startedMs: 1 });
  // The answer was lost; the same data directory asks again before it ever ran Raft.
  const again = await admitter.admit(request({ nodeId: 2 }));
  t.deepEqual([again.nodeId, again.replaced], [2, true]);
  t.deepEqual(conf, { voters: [1, 3], learners: [2] }, 'no second removal and addition');
  // Another data directory claiming the place now is refused (the replacement was given).
  const other = await t.throwsAsync(admitter.admit(request({ nodeId: 2, incarnation: 'cccccccccccccccc' })));
  t.is((other as { code?: string }).code, MEMBERSHIP_ERR_CONFLICT);
});

test('a replace through TS3GW_REPLACE is recorded too; a leader that died after the removal leaves a vacated place the retry fills', async (t) => {
  const { conf, admitter, replacements } = fakeCluster([1, 2, 3]);
  await admitter.admit(request({ nodeId: 2, replace: true }));
  t.like(replacements.get(2), { state: 'joined', wasVoter: true });
  // Node 3's old member was removed by a leader that died before adding the new one.
  const b = fakeCluster([1, 2, 3]);
  b.replacements.set(3, { nodeId: 3, state: 'waiting', startedMs: 1, updatedMs: 1, wasVoter: true });
  b.conf.voters = [1, 2];
  const filled = await b.admitter.admit(request({ nodeId: 3 }));
  t.deepEqual([filled.nodeId, filled.replaced], [3, true]);
  t.deepEqual(b.conf, { voters: [1, 2], learners: [3] });
  t.like(b.replacements.get(3), { state: 'joined', wasVoter: true });
  t.deepEqual(conf.learners, [2]);
});

test('replacementProblems: refused while the node answers, below a quorum of the others, for non-members and decommissioned nodes', (t) => {
  const base = { confState: { voters: [1, 2, 3], learners: [4] }, registered: [], decommissions: [] };
  const alive = (ids: number[]) => (id: number) => ids.includes(id);
  t.deepEqual(replacementProblems({ ...base, nodeId: 2, isAlive: alive([1, 3]) }), []);
  t.regex(replacementProblems({ ...base, nodeId: 2, isAlive: alive([1, 2, 3]) }).join(), /node 2 still answers/);
  t.regex(replacementProblems({ ...base, nodeId: 2, isAlive: alive([1]) }).join(), /only 1 of the other 2 voters answer; replacing node 2 needs 2/);
  t.deepEqual(replacementProblems({ ...base, nodeId: 4, isAlive: alive([1]) }), [], 'a learner takes nobody\'s vote away');
  t.regex(replacementProblems({ ...base, nodeId: 9, isAlive: alive([1, 2, 3]) }).join(), /not a member/);
  t.regex(replacementProblems({ ...base, nodeId: 3, decommissions: [{ nodeId: 3, state: 'draining', startedMs: 1, updatedMs: 1 }], isAlive: alive([1, 2]) }).join(), /decommissioned/);
});

test('only the leader admits: a follower names it, and the joiner asks it next', async (t) => {
  const { conf, admitter, leads } = fakeCluster([1, 2, 3]);
  leads.self = false;
  const err = await t.throwsAsync(admitter.admit(request()));
  t.is((err as { code?: string }).code, 'MEMBERSHIP_ERR_NOT_LEADER');
  t.deepEqual((err as { meta?: object }).meta, { leaderUrl: 'http://leader:9000' });
  t.deepEqual(conf.learners, [], 'a follower changes nothing');
  const { deps, asked } = joinerDeps([member(1)], [{ status: 421, body: { message: 'ask the leader', leaderUrl: 'http://leader:9000' } }, { status: 200, body: { nodeId: 4, clusterId: 'c1', peers: {} } }]);
  t.is((await joinCluster(options, deps)).nodeId, 4);
  t.deepEqual(asked, ['http://h1:9000', 'http://leader:9000']);
});

test('replace is refused while the member still answers, when the quorum is thin, for a member that ran before; decommissioned ids are refused', async (t) => {
  const { conf, admitter, active, leaving, registered } = fakeCluster([1, 2, 3]);
  active.add(2);
  const busy = await t.throwsAsync(admitter.admit(request({ nodeId: 2, replace: true })));
  t.is((busy as { code?: string }).code, 'MEMBERSHIP_ERR_BUSY');
  t.regex(busy!.message, /still answers the leader/);
  active.delete(2);
  active.delete(3);
  const thin = await t.throwsAsync(admitter.admit(request({ nodeId: 2, replace: true })));
  t.regex(thin!.message, /only 1 of the other 2 voters answer/);
  t.deepEqual(conf, { voters: [1, 2, 3], learners: [] }, 'nothing changed');
  // Node 3 ran before (registered) but this leader never heard it: a replace, not a late founder.
  registered.push(3);
  active.add(1);
  active.add(2);
  const replaced = await admitter.admit(request({ nodeId: 3, replace: true }));
  t.true(replaced.replaced);
  leaving.add(7);
  const gone = await t.throwsAsync(admitter.admit(request({ nodeId: 7 })));
  t.regex(gone!.message, /node 7 was decommissioned/);
});

test('malformed join requests are refused before anything is proposed', (t) => {
  for (const body of [null, {}, { incarnation: 'zz', raftAddress: 'h:1', s3Url: 'http://h:2' }, { incarnation: 'aaaaaaaa', raftAddress: 'no-port', s3Url: 'http://h:2' }, { incarnation: 'aaaaaaaa', raftAddress: 'h:1', s3Url: 'ftp://h' }, { incarnation: 'aaaaaaaa', raftAddress: 'h:1', s3Url: 'http://h:2', nodeId: 0 }]) {
    t.throws(() => parseJoinRequest(body), { code: 'MEMBERSHIP_ERR_BAD_REQUEST' }, JSON.stringify(body));
  }
});

const member = (nodeId: number, state: Member['state'] = 'alive'): Member => ({ address: `h${nodeId}:9001`, incarnation: 1, state, sinceMs: 0, meta: { nodeId, raftAddress: `h${nodeId}:9001`, s3Url: `http://h${nodeId}:9000` } });

function joinerDeps(members: Member[], answers: Array<{ status: number; body: unknown } | Error>) {
  let now = 0;
  const asked: string[] = [];
  return {
    asked,
    deps: {
      members: () => members,
      resync: () => undefined,
      post: async (url: string) => {
        asked.push(url);
        const next = answers.shift() ?? { status: 503, body: { message: 'no leader' } };
        if (next instanceof Error) throw next;
        return next;
      },
      sleep: async (ms: number) => {
        now += ms;
      },
      nowMs: () => now,
      logger: { info: () => undefined, warn: () => undefined },
    },
  };
}

const options = { seeds: ['h1:9001'], secret: 's', request: request(), timeoutMs: 10_000, retryMs: 500 };

test('the joiner retries through unavailable members and takes the first admission', async (t) => {
  const { deps, asked } = joinerDeps([member(1), member(2), member(0), member(3, 'dead')], [new Error('ECONNREFUSED'), { status: 503, body: { message: 'no leader' } }, { status: 200, body: { nodeId: 4, clusterId: 'c1', peers: { '1': 'h1:9001' } } }]);
  const answer = await joinCluster(options, deps);
  t.deepEqual(answer, { nodeId: 4, clusterId: 'c1', peers: { '1': 'h1:9001' } });
  t.deepEqual(asked, ['http://h1:9000', 'http://h2:9000', 'http://h1:9000'], 'only alive members with an id are asked');
});

test('refusals are final: wrong secret, identity conflict, another cluster id', async (t) => {
  for (const [answer, pattern, expected] of [
    [{ status: 403, body: { message: 'wrong cluster secret' } }, /wrong cluster secret/, undefined],
    [{ status: 409, body: { message: 'node 2 is already a member' } }, /already a member/, undefined],
    [{ status: 200, body: { nodeId: 4, clusterId: 'other', peers: {} } }, /belong to cluster other, not c1/, 'c1'],
  ] as const) {
    const { deps, asked } = joinerDeps([member(1)], [answer]);
    const err = await t.throwsAsync(joinCluster({ ...options, ...(expected ? { expectedClusterId: expected } : {}) }, deps), { message: pattern });
    t.is((err as { code?: string }).code, MEMBERSHIP_ERR_REFUSED);
    t.is(asked.length, 1, 'asked once, not again');
  }
});

test('no member ever found: the timeout says the seeds did not answer gossip', async (t) => {
  const { deps } = joinerDeps([], []);
  const err = await t.throwsAsync(joinCluster(options, deps), { message: /no seed answered gossip: unreachable, or its cluster secret differs/ });
  t.is((err as { code?: string }).code, MEMBERSHIP_ERR_JOIN_TIMEOUT);
});

const progress = (over: Partial<ProgressStatus>): ProgressStatus => ({ match: 100, next: 101, state: 'replicate', isLearner: true, recentActive: true, pendingSnapshot: 0, inflight: 0, ...over });

test('the promoter promotes a replicating, answering, caught-up, alive learner while voters are wanted', (t) => {
  const status = (over: object = {}, pr: Partial<ProgressStatus> = {}) => ({
    role: 'leader',
    lastIndex: 120,
    confState: { voters: [1, 2], learners: [5, 4] },
    progress: new Map([[4, progress(pr)], [5, progress(pr)]]),
    ...over,
  });
  const opts = { votersTarget: 3, lagEntriesMax: 50 };
  const alive = () => true;
  t.is(learnerToPromote(status(), opts, alive), 4, 'lowest id first');
  t.is(learnerToPromote(status({ role: 'follower' }), opts, alive), undefined, 'only the leader promotes');
  t.is(learnerToPromote(status({ confState: { voters: [1, 2, 3], learners: [4, 5] } }), opts, alive), undefined, 'enough voters');
  t.is(learnerToPromote(status({}, { state: 'probe' }), opts, alive), undefined, 'still probing');
  t.is(learnerToPromote(status({}, { recentActive: false }), opts, alive), undefined, 'not heard from lately');
  t.is(learnerToPromote(status({ lastIndex: 30 }, { match: 0 }), opts, alive), undefined, 'never acknowledged anything, even with a short log');
  t.is(learnerToPromote(status({ lastIndex: 500 }), opts, alive), undefined, 'too far behind');
  t.is(learnerToPromote(status(), opts, (id) => id !== 4), 5, 'gossip sees 4 down: 5 instead');
  // TS3GW_VOTERS=4: three voters are kept (an even count adds quorum size, not fault tolerance).
  const three = { confState: { voters: [1, 2, 3], learners: [4, 5] } };
  t.is(learnerToPromote(status(three), { ...opts, votersTarget: 4 }, alive), undefined, 'an even target of 4 stops at 3');
  t.is(learnerToPromote(status(three), { ...opts, votersTarget: 5 }, alive), 4, 'a target of 5 goes on');
  t.deepEqual([1, 2, 3, 4, 5, 6, 7].map(votersWanted), [1, 1, 3, 3, 5, 5, 7]);
});
