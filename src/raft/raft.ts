/**
 * The Raft state machine (etcd raft.go): roles, elections, replication, commit, ReadIndex,
 * membership, leadership transfer. Pure and deterministic: inputs are tick(), step(m) and
 * applyConfChange(); outputs accumulate in `msgs`, `readStates` and the log, and RawNode turns them
 * into a Ready.
 *
 * Membership changes are ONE AT A TIME (single-server changes, Raft thesis §4.1), not joint
 * consensus. Why: every change we need (add learner, promote, remove, replace one node at a time)
 * is expressible as a sequence of single changes, and the single-server rules are far smaller to
 * get right and to test. Safety rests on three rules implemented here:
 *   1. A change takes effect when its entry is APPLIED (RawNode.applyConfChange), on every node.
 *   2. At most one change is pending: the leader refuses a new one until the previous one is
 *      applied (pendingConfIndex > applied => RAFT_PROPOSAL_DROPPED).
 *   3. A new leader accepts no change until an entry of its own term is committed (pendingConfIndex
 *      starts at the leader's empty entry) — the fix for the single-server bug Ongaro described on
 *      raft-dev in 2015.
 * A node also refuses to campaign while a committed conf change is not yet applied, so it never
 * campaigns with a stale view of the voters.
 */
import { assert } from '../util/assert.ts';
import { isValidNodeId } from './conf-change.ts';
import { isRaftError, RaftError, RaftErrorCode } from './errors.ts';
import { RaftLog } from './log.ts';
import { Progress, ProgressTracker, type VoteResult } from './progress.ts';
import { ReadOnly } from './read-only.ts';
import type { RaftStorage } from './storage.ts';
import {
  CAMPAIGN_TRANSFER,
  type ConfChange,
  ConfChangeType,
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  makeMessage,
  NONE,
  type NodeId,
  type RaftConfig,
  type RaftRandom,
  ReadOnlyOption,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from './types.ts';
import { isEmptyHardState, isEmptySnapshot } from './util.ts';

/** Kinds of campaigns. */
type CampaignType = 'preElection' | 'election' | 'transfer';

/** Default lease allowance for clock drift and late timers, in ticks. */
export const DEFAULT_LEASE_DRIFT_TICKS = 2;

const LEASE_CTX_MAGIC = [0x00, 0x6c, 0x65, 0x61, 0x73, 0x65]; // "\0lease"

/** A heartbeat context carrying the leader tick it was sent at (never a host read ctx: those are hex). */
function encodeLeaseCtx(tick: number): Uint8Array {
  const out = new Uint8Array(LEASE_CTX_MAGIC.length + 8);
  out.set(LEASE_CTX_MAGIC);
  let v = tick;
  for (let i = out.length - 1; i >= LEASE_CTX_MAGIC.length; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

function decodeLeaseCtx(ctx: Uint8Array): number | undefined {
  if (ctx.byteLength !== LEASE_CTX_MAGIC.length + 8) return undefined;
  for (let i = 0; i < LEASE_CTX_MAGIC.length; i++) if (ctx[i] !== LEASE_CTX_MAGIC[i]) return undefined;
  let v = 0;
  for (let i = LEASE_CTX_MAGIC.length; i < ctx.byteLength; i++) v = v * 256 + (ctx[i] ?? 0);
  return v;
}

/** Validates a RaftConfig; throws TypeError listing the first problem. */
export function validateConfig(c: RaftConfig): void {
  if (!isValidNodeId(c.id)) throw new TypeError(`raft config: id ${c.id} must be a positive safe integer`);
  if (!Number.isInteger(c.heartbeatTimeoutTicks) || c.heartbeatTimeoutTicks <= 0) {
    throw new TypeError('raft config: heartbeatTimeoutTicks must be a positive integer');
  }
  if (!Number.isInteger(c.electionTimeoutTicks) || c.electionTimeoutTicks <= c.heartbeatTimeoutTicks) {
    throw new TypeError('raft config: electionTimeoutTicks must be an integer > heartbeatTimeoutTicks');
  }
  if (!Number.isInteger(c.maxInflightMsgs) || c.maxInflightMsgs <= 0) {
    throw new TypeError('raft config: maxInflightMsgs must be a positive integer');
  }
  if (!(c.maxSizePerMsgBytes >= 0)) throw new TypeError('raft config: maxSizePerMsgBytes must be >= 0');
  if (c.readOnlyOption === ReadOnlyOption.LeaseBased) {
    if (c.checkQuorum !== true) throw new TypeError('raft config: readOnlyOption leaseBased requires checkQuorum');
    const drift = c.leaseDriftTicks ?? DEFAULT_LEASE_DRIFT_TICKS;
    if (!Number.isInteger(drift) || drift < 1 || drift >= c.electionTimeoutTicks) {
      throw new TypeError('raft config: leaseDriftTicks must be an integer in [1, electionTimeoutTicks)');
    }
  }
  if (typeof c.random?.intBelow !== 'function') throw new TypeError('raft config: random is required');
}

/** The Raft protocol state of one node. Use through RawNode. */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: StateType = StateType.Follower;
  /** True when this node is a learner in the current configuration. */
  isLearner = false;
  readonly log: RaftLog;
  trk: ProgressTracker;
  /** Outbound messages, drained by RawNode.ready(). */
  msgs: Message[] = [];
  /** Completed local ReadIndex requests, drained by RawNode.ready(). */
  readStates: ReadState[] = [];
  /** Target of an ongoing leadership transfer, or NONE. */
  leadTransferee: NodeId = NONE;
  /** Index of the latest conf-change entry the leader may not yet have applied (rule 2 and 3 above). */
  pendingConfIndex = 0;
  readOnly: ReadOnly;
  /** ReadIndex requests held until the leader commits an entry of its term. */
  pendingReadIndexMessages: Message[] = [];

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly maxMsgSizeBytes: number;
  /** Limit on uncommittedSizeBytes (Infinity = none). */
  readonly maxUncommittedSizeBytes: number;
  /** Leader only: payload bytes appended in this term and not yet applied. */
  uncommittedSizeBytes = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly disableProposalForwarding: boolean;
  readonly #random: RaftRandom;
  /** Ticks since this node started (the lease clock). */
  #ticks = 0;
  readonly #leaseDriftTicks: number;

  constructor(c: RaftConfig, storage: RaftStorage) {
    validateConfig(c);
    this.id = c.id;
    this.electionTimeout = c.electionTimeoutTicks;
    this.heartbeatTimeout = c.heartbeatTimeoutTicks;
    // 0 means "one entry per message" (limitSize always keeps one).
    this.maxMsgSizeBytes = c.maxSizePerMsgBytes;
    const maxUncommitted = c.maxUncommittedEntriesSizeBytes ?? 0;
    this.maxUncommittedSizeBytes = maxUncommitted > 0 ? maxUncommitted : Number.POSITIVE_INFINITY;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.#random = c.random;
    this.#leaseDriftTicks = c.leaseDriftTicks ?? DEFAULT_LEASE_DRIFT_TICKS;
    const maxApplying = c.maxCommittedSizePerReadyBytes ?? 0;
    this.log = new RaftLog(storage, maxApplying > 0 ? maxApplying : Number.POSITIVE_INFINITY);
    this.readOnly = new ReadOnly(c.readOnlyOption ?? ReadOnlyOption.Safe);
    this.trk = new ProgressTracker(c.maxInflightMsgs);

    const { hardState, confState } = storage.initialState();
    this.#applyConfState(confState);
    if (!isEmptyHardState(hardState)) this.#loadState(hardState);
    const applied = c.appliedIndex ?? 0;
    if (applied > this.log.applied) this.log.appliedTo(applied);
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- state accessors

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  /** True when this node may campaign: it is a voter and has no snapshot pending installation. */
  promotable(): boolean {
    return this.trk.progress.has(this.id) && !this.isLearner && this.log.unstable.snapshot === undefined;
  }

  #loadState(hs: HardState): void {
    assert(hs.commit >= this.log.committed, `hard state commit ${hs.commit} < log commit ${this.log.committed}`);
    assert(hs.commit <= this.log.lastIndex(), `hard state commit ${hs.commit} > last index ${this.log.lastIndex()}`);
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  #applyConfState(cs: ConfState): void {
    const trk = new ProgressTracker(this.trk.maxInflight);
    const next = this.log.lastIndex() + 1;
    for (const id of cs.voters) {
      assert(isValidNodeId(id), `voter id ${id} invalid`);
      trk.voters.add(id);
      trk.progress.set(id, new Progress(next, trk.maxInflight, false));
    }
    for (const id of cs.learners) {
      assert(!trk.voters.has(id), `node ${id} is both voter and learner`);
      trk.learners.add(id);
      trk.progress.set(id, new Progress(next, trk.maxInflight, true));
    }
    this.trk = trk;
    this.isLearner = trk.learners.has(this.id);
  }

  // ---------------------------------------------------------------- sending

  #send(fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    const m = makeMessage(fields);
    if (m.from === NONE) m.from = this.id;
    assert(m.to !== NONE && m.to !== this.id, `message ${m.type} to ${m.to} from ${this.id}`);
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Vote messages carry the term they are about (for pre-votes, a future term).
      assert(m.term !== 0, `${m.type} must carry a term`);
    } else {
      assert(m.term === 0, `${m.type} must not set its term explicitly`);
      // Proposals and read requests are forwarded "as local" messages: no term.
      if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends a MsgApp (or MsgSnap) to `to` even if there are no new entries (a probe). */
  sendAppend(to: NodeId): void {
    this.#maybeSendAppend(to, true);
  }

  /**
   * Sends entries from pr.next if flow control allows, or a snapshot when they are compacted.
   * Returns true if a message was sent.
   */
  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    assert(pr !== undefined, `sendAppend to unknown peer ${to}`);
    assert(to !== this.id, 'sendAppend to self');
    if (pr.isPaused()) return false;
    assert(pr.next <= this.log.lastIndex() + 1, `progress next ${pr.next} beyond last index + 1`);

    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let compacted = prevTerm === undefined;
    let ents: Entry[] = [];
    if (!compacted && (pr.state !== 'replicate' || !pr.inflights.full())) {
      try {
        ents = this.log.entries(pr.next, this.maxMsgSizeBytes);
      } catch (err) {
        if (!isRaftError(err, RaftErrorCode.Compacted)) throw err;
        compacted = true;
      }
    }
    if (compacted) return this.#maybeSendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    assert(prevTerm !== undefined, 'prevTerm known when not compacted');
    this.#send({
      type: MessageType.App,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    });
    pr.updateOnEntriesSend(ents.length, pr.next);
    return true;
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // A peer we have not heard from recently is probably down; do not build and ship a snapshot
    // to it (etcd does the same). The next heartbeat response marks it active again.
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (err) {
      if (isRaftError(err, RaftErrorCode.SnapshotTemporarilyUnavailable)) return false;
      throw err;
    }
    assert(!isEmptySnapshot(snap), 'need a non-empty snapshot to send');
    pr.becomeSnapshot(snap.metadata.index);
    this.#send({ type: MessageType.Snap, to, snapshot: snap });
    return true;
  }

  #sendHeartbeat(to: NodeId, ctx: Uint8Array): void {
    const pr = this.trk.progress.get(to);
    assert(pr !== undefined, `heartbeat to unknown peer ${to}`);
    // A follower may not have the leader's whole committed log yet; never tell it to commit past
    // what it is known to hold.
    const commit = Math.min(pr.match, this.log.committed);
    this.#send({ type: MessageType.Heartbeat, to, commit, context: ctx });
  }

  bcastAppend(): void {
    for (const id of this.trk.sortedIds()) if (id !== this.id) this.sendAppend(id);
  }

  #bcastHeartbeat(): void {
    const pending = this.readOnly.lastPendingRequestCtx();
    // With leases, a plain heartbeat carries its send tick; the echoed tick renews the lease.
    if (pending === undefined && this.readOnly.option === ReadOnlyOption.LeaseBased) this.#bcastHeartbeatWithCtx(encodeLeaseCtx(this.#ticks));
    else this.#bcastHeartbeatWithCtx(pending ?? EMPTY_BYTES);
  }

  /**
   * True while no other leader can exist (thesis §6.4.1): a quorum acknowledged a heartbeat sent
   * at tick s, each of those followers refuses votes until electionTimeout of its ticks after it
   * received it, so none can be elected before s + electionTimeout on our clock, less the drift
   * allowance. Never during a leadership transfer (TimeoutNow bypasses the followers' refusal).
   */
  #leaseValid(): boolean {
    if (this.readOnly.option !== ReadOnlyOption.LeaseBased || this.leadTransferee !== NONE) return false;
    const acked = [...this.trk.voters].map((id) => (id === this.id ? this.#ticks : (this.trk.progress.get(id)?.leaseAckTick ?? Number.NEGATIVE_INFINITY)));
    acked.sort((a, b) => b - a);
    const quorumTick = acked[Math.floor(acked.length / 2)] ?? Number.NEGATIVE_INFINITY;
    return quorumTick > this.#ticks - (this.electionTimeout - this.#leaseDriftTicks);
  }

  #bcastHeartbeatWithCtx(ctx: Uint8Array): void {
    for (const id of this.trk.sortedIds()) if (id !== this.id) this.#sendHeartbeat(id, ctx);
  }

  // ---------------------------------------------------------------- roles

  #resetRandomizedElectionTimeout(): void {
    // §5.2: randomized timeouts in [T, 2T) make split votes rare.
    this.randomizedElectionTimeout = this.electionTimeout + this.#random.intBelow(this.electionTimeout);
  }

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const lastIndex = this.log.lastIndex();
    for (const [id, old] of this.trk.progress) {
      const pr = new Progress(lastIndex + 1, this.trk.maxInflight, old.isLearner);
      // Our own match counts only durable entries (the host may send before it persists, and a
      // commit must never rest on entries this node could still lose); onPersisted() raises it.
      if (id === this.id) pr.match = Math.min(lastIndex, this.log.unstable.offset - 1);
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSizeBytes = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    assert(term >= this.term, `becomeFollower: term ${term} < ${this.term}`);
    this.#reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  becomeCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition leader -> candidate');
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition leader -> pre-candidate');
    // Pre-vote: neither the term nor the vote changes (thesis §9.6), so a partitioned node that
    // keeps failing pre-votes never disrupts the cluster with a higher term.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  becomeLeader(): void {
    assert(this.state !== StateType.Follower, 'invalid transition follower -> leader');
    assert(this.vote === this.id, 'leader must have voted for itself');
    this.#reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id);
    assert(self !== undefined, 'leader must be in its own configuration');
    self.becomeReplicate();
    self.recentActive = true;
    // §5.4.2 / §8: append an empty entry of the new term; committing it commits every earlier entry
    // and lets the leader learn the commit index (needed for ReadIndex, thesis §6.4).
    this.#appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }]);
    // Rule 3: no conf change until this empty entry (of our term) is committed and applied.
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---------------------------------------------------------------- ticks

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.#ticks++;
    if (this.state === StateType.Leader) this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  #tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------- elections

  #hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (lo > this.log.committed) return false;
    const ents = this.log.slice(lo, this.log.committed + 1, Number.POSITIVE_INFINITY);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  /**
   * Forgets the leader this follower knows (etcd's ForgetLeader): the node stays a leaderless
   * follower in its term and does not campaign, but it now grants (pre-)votes at once instead of
   * refusing them as disruptions for the rest of an election timeout (leader stickiness). When a
   * quorum of followers has outside evidence that the leader is dead (its process is gone: the
   * host saw the connection refused), they forget it and one of them campaigns: a new leader in a
   * few round trips instead of an election timeout. Hearing from the leader again restores it.
   * Safety does not depend on timing, so a wrong guess costs at most an unneeded election.
   * Ignored with lease reads: the old leader may still be serving reads on a lease that counts
   * on this node not voting for anyone else before its election timeout runs out.
   */
  forgetLeader(): boolean {
    if (this.readOnly.option === ReadOnlyOption.LeaseBased) return false;
    if (this.state !== StateType.Follower || this.lead === NONE) return false;
    this.lead = NONE;
    return true;
  }

  #hup(t: CampaignType): void {
    // Each early return below is a deliberate refusal to campaign.
    if (this.state === StateType.Leader) return; // already leader
    if (!this.promotable()) return; // learner, removed, or installing a snapshot
    if (this.#hasUnappliedConfChanges()) return; // would campaign with a stale voter set
    this.#campaign(t);
  }

  #campaign(t: CampaignType): void {
    assert(this.promotable(), 'campaign by a non-promotable node');
    let term: number;
    let voteMsg: MessageType;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1; // the term we would campaign at; not adopted yet
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    if (this.#poll(this.id, true) === 'won') {
      // Single-voter configuration: we won on our own vote.
      if (t === 'preElection') this.#campaign('election');
      else this.becomeLeader();
      return;
    }
    const context = t === 'transfer' ? CAMPAIGN_TRANSFER : EMPTY_BYTES;
    for (const id of this.trk.sortedVoters()) {
      if (id === this.id) continue;
      this.#send({
        type: voteMsg,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context,
      });
    }
  }

  #poll(id: NodeId, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---------------------------------------------------------------- step

  /**
   * Processes one message. Throws RaftError RAFT_PROPOSAL_DROPPED when a proposal (MsgProp) cannot
   * be appended or forwarded, and RAFT_PROPOSAL_DROPPED for a local MsgReadIndex without a leader.
   */
  step(m: Message): void {
    assert(m.term >= 0, 'message term must be non-negative');
    assert(m.from !== this.id || m.term === 0, `non-local message from self: ${m.type}`);

    // 1. Term handling (Raft §5.1): messages from the past are ignored, from the future demote us.
    if (m.term === 0) {
      // Local message (or a forwarded MsgProp/MsgReadIndex).
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        // With lease reads, a node that just (re)started also refuses for an election timeout: it
        // may have acknowledged a leader's heartbeat just before it crashed, and that leader still
        // counts on it.
        const justStarted = this.readOnly.option === ReadOnlyOption.LeaseBased && this.#ticks < this.electionTimeout;
        const inLease = this.checkQuorum && ((this.lead !== NONE && this.electionElapsed < this.electionTimeout) || justStarted);
        // Leader stickiness (thesis §4.2.3): while we heard from a leader within the minimum
        // election timeout, a vote request is a disruption, not a sign of a dead leader. A transfer
        // is the exception: the leader itself asked for it.
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // Never change term in response to a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries our future term; the term is bumped only if we win.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader that we ignore would never learn of the new term (with check-quorum or
        // pre-vote we may not bump our term on its vote requests); tell it so it steps down.
        this.#send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        // Reject with our (higher) term so the pre-candidate catches up.
        this.#send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
      }
      // Otherwise: a stale message; ignore it.
      return;
    }

    // 2. Messages every role handles the same way.
    switch (m.type) {
      case MessageType.Hup:
        this.#hup(this.preVote ? 'preElection' : 'election');
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.#onVoteRequest(m);
        return;
      default:
        break;
    }

    // 3. Role-specific handling.
    switch (this.state) {
      case StateType.Leader:
        this.#stepLeader(m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.#stepCandidate(m);
        return;
      case StateType.Follower:
        this.#stepFollower(m);
        return;
    }
  }

  #onVoteRequest(m: Message): void {
    assert(m.type === MessageType.Vote || m.type === MessageType.PreVote, 'onVoteRequest: wrong type');
    assert(m.from !== NONE && m.term > 0, 'onVoteRequest: vote request needs sender and term');
    // We can vote if we already voted for this candidate (a retransmission), or we have not voted
    // and know of no leader in this term, or this is a pre-vote for a future term.
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    // §5.4.1: only vote for candidates whose log is at least as up to date as ours.
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // Reply with the request's term: for a pre-vote that is the future term, which the
      // pre-candidate recognises as "granted for the election it is about to start".
      this.#send({ type: respType, to: m.from, term: m.term });
      if (m.type === MessageType.Vote) {
        // Only a real vote resets our election timer and is recorded (and persisted before sending).
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.#send({ type: respType, to: m.from, term: this.term, reject: true });
    }
  }

  #stepLeader(m: Message): void {
    assert(this.state === StateType.Leader, 'stepLeader: not leader');
    assert(this.lead === this.id, 'stepLeader: leader must lead itself');
    switch (m.type) {
      case MessageType.Beat:
        this.#bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        // §6.2 / thesis §6.2: a leader that cannot reach a quorum steps down, so clients go elsewhere
        // and a leader lease can be trusted.
        if (!this.trk.quorumActive(this.id)) this.becomeFollower(this.term, NONE);
        for (const [id, pr] of this.trk.progress) pr.recentActive = id === this.id;
        return;
      case MessageType.Prop:
        this.#onLeaderPropose(m);
        return;
      case MessageType.ReadIndex:
        this.#onLeaderReadIndex(m);
        return;
      default:
        break;
    }

    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return; // from a node not in the configuration (e.g. just removed)
    switch (m.type) {
      case MessageType.AppResp:
        this.#onAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.#onHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        if (pr.state !== 'snapshot') return; // stale report
        // Success or failure, go back to probing; on failure forget the snapshot so we re-probe
        // from match+1. Pause until the follower answers (a MsgAppResp or heartbeat response).
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        pr.msgAppFlowPaused = true;
        return;
      case MessageType.Unreachable:
        // Optimistic pipelining to an unreachable peer would just lose messages: probe instead.
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      case MessageType.TransferLeader:
        this.#onTransferLeader(m, pr);
        return;
      default:
        return; // other messages mean nothing to a leader of this term
    }
  }

  #onLeaderPropose(m: Message): void {
    assert(m.type === MessageType.Prop, 'onLeaderPropose: wrong type');
    assert(m.entries.length > 0, 'proposal with no entries');
    if (!this.trk.progress.has(this.id)) {
      throw new RaftError(RaftErrorCode.ProposalDropped, 'leader is not in the configuration');
    }
    if (this.leadTransferee !== NONE) {
      throw new RaftError(RaftErrorCode.ProposalDropped, `leadership transfer to ${this.leadTransferee} in progress`);
    }
    let pendingConf = this.pendingConfIndex;
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i];
      if (e?.type !== EntryType.ConfChange) continue;
      if (pendingConf > this.log.applied) {
        throw new RaftError(
          RaftErrorCode.ProposalDropped,
          `conf change refused: pending conf change at ${pendingConf} not applied (applied ${this.log.applied})`,
        );
      }
      pendingConf = this.log.lastIndex() + i + 1;
    }
    let payload = 0;
    for (const e of m.entries) payload += e.data.byteLength;
    if (this.uncommittedSizeBytes > 0 && payload > 0 && this.uncommittedSizeBytes + payload > this.maxUncommittedSizeBytes) {
      throw new RaftError(
        RaftErrorCode.ProposalDropped,
        `too many uncommitted bytes (${this.uncommittedSizeBytes} + ${payload} > ${this.maxUncommittedSizeBytes})`,
      );
    }
    this.uncommittedSizeBytes += payload;
    this.pendingConfIndex = pendingConf;
    this.#appendEntries(m.entries);
    this.bcastAppend();
  }

  /** Called when entries were applied: they no longer count against the uncommitted limit. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== StateType.Leader || this.uncommittedSizeBytes === 0) return;
    let payload = 0;
    for (const e of ents) payload += e.data.byteLength;
    // Entries of an earlier term were never counted, so clamp at zero rather than go negative.
    this.uncommittedSizeBytes = Math.max(0, this.uncommittedSizeBytes - payload);
    assert(this.uncommittedSizeBytes >= 0, 'uncommitted size negative');
  }

  #appendEntries(es: readonly Entry[]): void {
    assert(this.state === StateType.Leader, 'only the leader appends new entries');
    assert(es.length > 0, 'append of nothing');
    const li = this.log.lastIndex();
    const stamped = es.map((e, i) => ({ term: this.term, index: li + 1 + i, type: e.type, data: e.data }));
    this.log.append(stamped);
    // The leader's own entries count toward the quorum only once durable (onPersisted), so the
    // host may send them to followers while its own write is still running (thesis §10.2.1).
  }

  /**
   * The host made entries up to `index` (of `term`) durable. A leader counts itself for them now,
   * which may commit them.
   */
  onPersisted(index: number, term: number): void {
    if (this.state !== StateType.Leader || !this.log.matchTerm(index, term)) return;
    const self = this.trk.progress.get(this.id);
    if (self === undefined || !self.maybeUpdate(index)) return;
    if (this.#maybeCommit()) {
      this.#releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  /** Advances the commit index to what a quorum holds, if it is an entry of our term (§5.4.2). */
  #maybeCommit(): boolean {
    return this.log.maybeCommit(this.trk.committed(), this.term);
  }

  #onAppendResponse(m: Message, pr: Progress): void {
    assert(m.type === MessageType.AppResp, 'onAppendResponse: wrong type');
    assert(m.from !== this.id, 'append response from self');
    pr.recentActive = true;
    if (m.reject) {
      // Fast backtracking (etcd): the follower's hint (rejectHint, logTerm) names the last entry that
      // might match. If our log has entries of a smaller term before that, jump straight past the
      // whole conflicting term instead of stepping back one index per round trip.
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.log.findConflictByTerm(Math.min(m.rejectHint, this.log.lastIndex()), m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe'))) return; // stale ack
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up past the snapshot by other means (or installed it): resume.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.#maybeCommit()) {
      this.#releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) {
      // The window was full; this ack opened it.
      this.sendAppend(m.from);
    }
    // Fill the window with as many messages as flow control allows.
    while (this.#maybeSendAppend(m.from, false)) {
      // keep sending
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.#send({ type: MessageType.TimeoutNow, to: m.from });
    }
  }

  #onHeartbeatResponse(m: Message, pr: Progress): void {
    assert(m.type === MessageType.HeartbeatResp, 'onHeartbeatResponse: wrong type');
    assert(m.from !== this.id, 'heartbeat response from self');
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    // If the window is full, MsgApps were probably lost (or the peer restarted). Free one slot so
    // a MsgApp goes out; a rejection then moves the peer back to probe and repairs it (etcd).
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    const leaseTick = decodeLeaseCtx(m.context);
    if (leaseTick !== undefined) {
      if (leaseTick > pr.leaseAckTick) pr.leaseAckTick = leaseTick;
      return;
    }
    // A read round (Safe, or LeaseBased without a lease): count the ack.
    if (m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return; // ack for a request already answered
    if (this.trk.ackResult(acks) !== 'won') return;
    for (const rs of this.readOnly.advance(m.context)) this.#respondToReadIndex(rs.req, rs.index);
  }

  #onTransferLeader(m: Message, pr: Progress): void {
    assert(m.type === MessageType.TransferLeader, 'onTransferLeader: wrong type');
    const transferee = m.from;
    if (pr.isLearner) return; // a learner cannot lead
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // same transfer already under way
      this.leadTransferee = NONE; // abort the previous one, start this one
    }
    if (transferee === this.id) return; // already leader
    // The transfer must finish within an election timeout (see tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) {
      this.#send({ type: MessageType.TimeoutNow, to: transferee });
    } else {
      this.sendAppend(transferee); // catch it up first; TimeoutNow follows its ack
    }
  }

  #committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  #onLeaderReadIndex(m: Message): void {
    assert(m.type === MessageType.ReadIndex, 'onLeaderReadIndex: wrong type');
    assert(m.context.byteLength > 0, 'ReadIndex needs a non-empty context');
    if (this.trk.isSingleton()) {
      // A single voter is always the leader of its term: its commit index is current.
      this.#respondToReadIndex(m, this.log.committed);
      return;
    }
    // Thesis §6.4 step 1: until an entry of our term is committed we may not know the real commit
    // index. Hold the request until then.
    if (!this.#committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.#sendReadIndexResponse(m);
  }

  #sendReadIndexResponse(m: Message): void {
    if (this.#leaseValid()) {
      this.#respondToReadIndex(m, this.log.committed);
      return;
    }
    // Safe: record the commit index, then confirm leadership with a heartbeat round (§6.4 step 2-3).
    this.readOnly.addRequest(this.log.committed, m);
    const acks = this.readOnly.recvAck(this.id, m.context);
    assert(acks !== undefined, 'read request just added');
    this.#bcastHeartbeatWithCtx(m.context);
  }

  #releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.#committedEntryInCurrentTerm()) return;
    const held = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of held) this.#sendReadIndexResponse(m);
  }

  #respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
      return;
    }
    this.#send({ type: MessageType.ReadIndexResp, to: req.from, index: readIndex, context: req.context });
  }

  #stepCandidate(m: Message): void {
    assert(this.state === StateType.Candidate || this.state === StateType.PreCandidate, 'stepCandidate: wrong role');
    const myRespType = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new RaftError(RaftErrorCode.ProposalDropped, `no leader (node is ${this.state})`);
      case MessageType.ReadIndex:
        throw new RaftError(RaftErrorCode.ProposalDropped, `read index dropped: no leader (node is ${this.state})`);
      case MessageType.App:
        // A leader exists for this term (§5.2): recognise it.
        this.becomeFollower(m.term, m.from);
        this.#onAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.#onHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.#onSnapshot(m);
        return;
      case myRespType: {
        const result = this.#poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.state === StateType.PreCandidate) {
            this.#campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          // A pre-candidate that lost keeps its term; a candidate stays in its (new) term.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return; // e.g. MsgTimeoutNow to a candidate, stale responses: ignore
    }
  }

  #stepFollower(m: Message): void {
    assert(this.state === StateType.Follower, 'stepFollower: not follower');
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw new RaftError(RaftErrorCode.ProposalDropped, 'no leader');
        if (this.disableProposalForwarding) {
          throw new RaftError(RaftErrorCode.ProposalDropped, 'not leader and proposal forwarding is disabled');
        }
        this.#send({ ...m, to: this.lead });
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#onAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#onHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#onSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return; // nowhere to forward; the host may retry
        this.#send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.TimeoutNow:
        // The leader asked us to take over: campaign at once, skipping pre-vote and leases.
        this.#hup('transfer');
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) throw new RaftError(RaftErrorCode.ProposalDropped, 'read index dropped: no leader');
        this.#send({ ...m, to: this.lead });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
      default:
        return; // responses meant for a leader or candidate we no longer are
    }
  }

  #onAppendEntries(m: Message): void {
    assert(m.type === MessageType.App, 'onAppendEntries: wrong type');
    assert(m.from === this.lead, 'append entries from a node that is not our leader');
    if (m.index < this.log.committed) {
      // Entries up to our commit index are already settled; tell the leader where we are.
      this.#send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.#send({ type: MessageType.AppResp, to: m.from, index: lastNew });
      return;
    }
    // §5.3 consistency check failed. Hint the leader at the last index that could match: the
    // largest index <= min(m.index, lastIndex) whose term is <= m.logTerm.
    const hintIndex = Math.min(m.index, this.log.lastIndex());
    const [idx, term] = this.log.findConflictByTerm(hintIndex, m.logTerm);
    this.#send({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: idx, logTerm: term });
  }

  #onHeartbeat(m: Message): void {
    assert(m.type === MessageType.Heartbeat, 'onHeartbeat: wrong type');
    assert(m.from === this.lead, 'heartbeat from a node that is not our leader');
    // commitTo asserts m.commit <= lastIndex: the leader never sends more than our match.
    this.log.commitTo(m.commit);
    this.#send({ type: MessageType.HeartbeatResp, to: m.from, context: m.context });
  }

  #onSnapshot(m: Message): void {
    assert(m.type === MessageType.Snap, 'onSnapshot: wrong type');
    assert(m.snapshot !== undefined, 'MsgSnap without snapshot');
    if (this.#restore(m.snapshot)) {
      this.#send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() });
    } else {
      this.#send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
    }
  }

  /** Installs a snapshot into the log; returns false when it is stale or not for us. */
  #restore(s: Snapshot): boolean {
    assert(!isEmptySnapshot(s), 'restore of an empty snapshot');
    if (s.metadata.index <= this.log.committed) return false; // we already have all of it
    if (this.state !== StateType.Follower) {
      // Only a follower receives snapshots; be defensive like etcd and never restore otherwise.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    // Unlike etcd we accept a snapshot whose membership does not (yet) contain us: a node that is
    // joining receives the leader's last snapshot, which may predate the conf change adding it; the
    // entries after the snapshot contain that change. Until it is applied we are not promotable.
    const cs = s.metadata.confState;
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // Our log already contains the snapshot's last entry: just fast-forward the commit index.
      this.log.commitTo(s.metadata.index);
      return false;
    }
    this.log.restore(s);
    this.#applyConfState(cs);
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) self.maybeUpdate(self.next - 1);
    assert(this.log.lastIndex() === s.metadata.index, 'restore must leave the log ending at the snapshot');
    return true;
  }

  // ---------------------------------------------------------------- membership

  /**
   * Applies a committed single-server conf change (rule 1) and returns the new ConfState. A change
   * that would leave no voter is ignored (every node ignores it identically, so they stay in sync).
   */
  applyConfChange(cc: ConfChange): ConfState {
    assert(isValidNodeId(cc.nodeId), `conf change node ${cc.nodeId} invalid`);
    const trk = this.trk;
    const next = this.log.lastIndex() + 1;
    switch (cc.type) {
      case ConfChangeType.AddNode: {
        const pr = trk.progress.get(cc.nodeId);
        trk.learners.delete(cc.nodeId);
        trk.voters.add(cc.nodeId);
        if (pr === undefined) {
          const np = new Progress(next, trk.maxInflight, false);
          np.recentActive = true; // give a new voter a grace period before check-quorum counts it
          trk.progress.set(cc.nodeId, np);
        } else {
          pr.isLearner = false;
        }
        break;
      }
      case ConfChangeType.AddLearnerNode: {
        if (trk.voters.has(cc.nodeId) && trk.voters.size === 1) break; // would leave no voter
        const pr = trk.progress.get(cc.nodeId);
        trk.voters.delete(cc.nodeId);
        trk.learners.add(cc.nodeId);
        if (pr === undefined) {
          const np = new Progress(next, trk.maxInflight, true);
          np.recentActive = true;
          trk.progress.set(cc.nodeId, np);
        } else {
          pr.isLearner = true;
        }
        break;
      }
      case ConfChangeType.RemoveNode:
        if (trk.voters.has(cc.nodeId) && trk.voters.size === 1) break; // would leave no voter
        trk.voters.delete(cc.nodeId);
        trk.learners.delete(cc.nodeId);
        trk.progress.delete(cc.nodeId);
        break;
    }
    assert(trk.voters.size > 0, 'configuration without voters');
    this.#switchToConfig();
    return trk.confState();
  }

  #switchToConfig(): void {
    this.isLearner = this.trk.learners.has(this.id);
    if (this.state !== StateType.Leader) return;
    if (!this.trk.progress.has(this.id) || this.isLearner) {
      // This leader was removed or demoted. Tell the others the latest commit index, then step
      // down; the remaining voters elect a leader among themselves.
      this.bcastAppend();
      this.becomeFollower(this.term, NONE);
      return;
    }
    // The quorum changed: the commit index may move (e.g. a slow voter was removed).
    if (this.#maybeCommit()) {
      this.#releasePendingReadIndexMessages();
      this.bcastAppend();
    } else {
      // Probe peers we have never heard from (e.g. the node just added) right away instead of
      // waiting for the next heartbeat; others only get a message if there is something new.
      for (const id of this.trk.sortedIds()) {
        if (id !== this.id) this.#maybeSendAppend(id, this.trk.progress.get(id)?.match === 0);
      }
    }
    if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) this.leadTransferee = NONE;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
