/**
 * Leader-side bookkeeping of each peer's replication (etcd tracker/): Progress with its three
 * states, the Inflights flow-control window, and the tracker that counts votes and quorums.
 *
 *   probe ──(MsgAppResp accepted)──▶ replicate ──(reject / unreachable)──▶ probe
 *     │                                                                     ▲
 *     └──(needed entries compacted)──▶ snapshot ──(snapshot applied / failed)┘
 *
 * probe:     at most one MsgApp in flight (until an answer or a heartbeat response).
 * replicate: optimistic pipelining; `next` jumps ahead; at most maxInflightMsgs MsgApp in flight.
 * snapshot:  nothing sent until the host reports the snapshot's fate (MsgSnapStatus) or the
 *            follower acks past the snapshot index.
 */
import { assert } from '../util/assert.ts';
import type { ConfState, NodeId, ProgressStatus } from './types.ts';

/** Sliding window of in-flight MsgApp (by last index), for flow control in replicate state. */
export class Inflights {
  readonly size: number;
  /** Last entry index of each in-flight MsgApp, ascending. */
  #indexes: number[] = [];

  constructor(size: number) {
    assert(Number.isInteger(size) && size > 0, `inflights size ${size} must be a positive integer`);
    this.size = size;
  }

  /** Records a sent MsgApp whose last entry is `index`. */
  add(index: number): void {
    assert(!this.full(), 'add to a full inflights window');
    const lastIndex = this.#indexes[this.#indexes.length - 1];
    assert(lastIndex === undefined || index > lastIndex, `inflight ${index} not after ${lastIndex}`);
    this.#indexes.push(index);
  }

  /** Frees every in-flight message whose last index is <= `to` (acknowledged). */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.#indexes.length && (this.#indexes[n] ?? Infinity) <= to) n++;
    if (n > 0) this.#indexes = this.#indexes.slice(n);
  }

  /** Frees the oldest in-flight message (a heartbeat answer proves the peer is alive). */
  freeFirstOne(): void {
    if (this.#indexes.length > 0) this.#indexes = this.#indexes.slice(1);
  }

  full(): boolean {
    return this.#indexes.length >= this.size;
  }

  count(): number {
    return this.#indexes.length;
  }

  reset(): void {
    this.#indexes = [];
  }
}

/** Replication state of one peer. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one peer's log. */
export class Progress {
  /** Highest index known to be replicated on the peer. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = 'probe';
  /** In snapshot state: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from within the current check-quorum period. */
  recentActive = false;
  /** In probe state: a probe is outstanding, send nothing more until an answer. */
  msgAppFlowPaused = false;
  /** Lease reads: the leader tick at which the newest heartbeat this peer acknowledged was sent. */
  leaseAckTick = Number.NEGATIVE_INFINITY;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    assert(next >= 1, `progress next ${next} < 1`);
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  #resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, resume probing right after it (the follower has at least that much once it
    // applies it); otherwise re-probe from match+1.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.#resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState('probe');
      this.next = this.match + 1;
    }
    assert(this.next > this.match, 'probe: next must be > match');
  }

  becomeReplicate(): void {
    this.#resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    assert(snapshotIndex > 0, 'snapshot index must be positive');
    this.#resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Updates after an accepting MsgAppResp for index n; returns false when the ack is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejected MsgApp for `rejected` with the follower's hint `matchHint` (the largest
   * index that might match). Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // In replicate state a rejection of anything <= match is from an older, reordered probe.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the rejection of the probe we sent (at next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.msgAppFlowPaused = false;
    assert(this.next > this.match, 'decr: next must be > match');
    return true;
  }

  /** Records that a MsgApp of `entries` entries starting at `nextIndex` was sent. */
  updateOnEntriesSend(entries: number, nextIndex: number): void {
    assert(entries >= 0, 'negative entry count');
    if (this.state === 'replicate') {
      if (entries > 0) {
        const lastIndex = nextIndex + entries - 1;
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      if (entries > 0) this.msgAppFlowPaused = true;
    } else {
      assert(false, `sending entries in ${this.state} state`);
    }
  }

  /** True when nothing more may be sent to this peer now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  toStatus(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
      pendingSnapshot: this.pendingSnapshot,
      inflight: this.inflights.count(),
    };
  }
}

/** Outcome of an election round. */
export type VoteResult = 'won' | 'lost' | 'pending';

/** Membership plus per-peer progress and votes. */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;

  constructor(maxInflight: number) {
    assert(maxInflight > 0, 'maxInflight must be positive');
    this.maxInflight = maxInflight;
  }

  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b),
    };
  }

  /** Voters in ascending id order (deterministic iteration for message order). */
  sortedVoters(): NodeId[] {
    return [...this.voters].sort((a, b) => a - b);
  }

  /** All peers (voters and learners) in ascending id order. */
  sortedIds(): NodeId[] {
    return [...this.progress.keys()].sort((a, b) => a - b);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /**
   * The highest index replicated on a quorum of voters: sort voter matches descending and take the
   * quorum-th (Raft §5.3/§5.4). With no voters returns Infinity-free 0.
   */
  committed(): number {
    if (this.voters.size === 0) return 0;
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    const q = matches[this.quorum() - 1];
    assert(q !== undefined, 'quorum index out of range');
    return q;
  }

  /** Records a vote (the first one from each voter counts). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Counts granted/rejected votes among current voters. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    let result: VoteResult = 'pending';
    if (granted >= q) result = 'won';
    else if (this.voters.size - rejected < q) result = 'lost';
    return { granted, rejected, result };
  }

  /** Result of a vote where `acks` are the voters that agreed (used by ReadIndex). */
  ackResult(acks: ReadonlySet<NodeId>): VoteResult {
    let n = 0;
    for (const id of this.voters) if (acks.has(id)) n++;
    return n >= this.quorum() ? 'won' : 'pending';
  }

  /** True when a quorum of voters was recently active (check-quorum). `self` counts as active. */
  quorumActive(self: NodeId): boolean {
    let n = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === self || pr?.recentActive === true) n++;
    }
    return n >= this.quorum();
  }
}
