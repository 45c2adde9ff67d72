/**
 * RawNode: the host-facing API of the Raft core, in the shape of etcd's RawNode.
 *
 * Inputs:  tick(), step(m), propose(data), proposeConfChange(cc), readIndex(ctx),
 *          transferLeader(to), campaign(), forgetLeader(), reportUnreachable(id), reportSnapshot(id, ok).
 * Outputs: ready() -> Ready, acknowledged by advance(rd).
 *
 * The host loop (one thread, no concurrency inside the core):
 *
 *   loop:
 *     on timer          -> node.tick()
 *     on peer message   -> node.step(msg)
 *     on client command -> node.propose(data)       (may throw RAFT_PROPOSAL_DROPPED)
 *     if node.hasReady():
 *       rd = node.ready()
 *       1. storage: append rd.entries, set rd.hardState, install rd.snapshot; fsync if rd.mustSync
 *       2. transport: send rd.messages                (never before step 1 completes)
 *       3. state machine: install rd.snapshot, apply rd.committedEntries in order
 *          (for confChange entries: decodeConfChange(e.data) then node.applyConfChange(cc));
 *          answer reads in rd.readStates once applied index >= readState.index
 *       4. node.advance(rd)
 *
 * Between ready() and advance() the host may keep calling tick/step/propose (e.g. while the fsync
 * runs); it must not call ready() again before advance().
 */
import { assert } from '../util/assert.ts';
import { encodeConfChange } from './conf-change.ts';
import { isRaftError, RaftError, RaftErrorCode } from './errors.ts';
import { Raft } from './raft.ts';
import type { RaftStorage } from './storage.ts';
import {
  type ConfChange,
  type ConfState,
  EntryType,
  type HardState,
  isResponseMessage,
  LOCAL_MESSAGE_TYPES,
  type Message,
  MessageType,
  makeMessage,
  type NodeId,
  type ProgressStatus,
  type RaftConfig,
  type Ready,
  type SoftState,
  StateType,
  type Status,
} from './types.ts';
import { hardStateEqual, isEmptyHardState, last } from './util.ts';

/** The host-facing Raft node. See the file comment for the Ready contract. */
export class RawNode {
  /** The protocol state. Exposed for tests and diagnostics; hosts should use the methods. */
  readonly raft: Raft;
  #prevSoftState: SoftState;
  #prevHardState: HardState;
  #readyPending = false;

  /**
   * Creates a node over `storage` (which the host owns and writes). A founding member starts from
   * MemoryStorage.bootstrap(...)-like storage; a joining node starts from empty storage and
   * receives a snapshot from the leader; a restarting node starts from what it persisted.
   */
  constructor(config: RaftConfig, storage: RaftStorage) {
    this.raft = new Raft(config, storage);
    this.#prevSoftState = this.raft.softState();
    this.#prevHardState = this.raft.hardState();
  }

  /** Advances the logical clock by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first if enabled). */
  campaign(): void {
    this.raft.step(makeMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  /**
   * Forgets the current leader so this follower grants votes at once (see Raft.forgetLeader).
   * Returns false when it did nothing: not a follower, no leader known, or lease reads on.
   */
  forgetLeader(): boolean {
    return this.raft.forgetLeader();
  }

  /**
   * Processes a message received from a peer. Local-only types throw RAFT_STEP_LOCAL_MSG.
   * Responses from peers not in the configuration are ignored. A forwarded proposal or read
   * request that this node cannot serve is dropped silently (its originator times out, as in etcd).
   */
  step(m: Message): void {
    if (LOCAL_MESSAGE_TYPES.has(m.type)) {
      throw new RaftError(RaftErrorCode.StepLocalMsg, `cannot step local message ${m.type}`);
    }
    assert(m.to === this.raft.id || m.to === 0, `message for ${m.to} stepped into node ${this.raft.id}`);
    assert(m.from !== this.raft.id, `message from self stepped into node ${this.raft.id}`);
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) return;
    try {
      this.raft.step(m);
    } catch (err) {
      const dropped =
        isRaftError(err, RaftErrorCode.ProposalDropped) &&
        (m.type === MessageType.Prop || m.type === MessageType.ReadIndex);
      if (!dropped) throw err;
    }
  }

  /**
   * Proposes a command to be appended to the log. Throws RaftError RAFT_PROPOSAL_DROPPED when it
   * was not accepted (no leader known, leadership transfer in progress, forwarding disabled,
   * removed). Returning normally does NOT mean committed: the command may still be lost if
   * leadership changes; the host learns its fate only by seeing it in committedEntries.
   */
  propose(data: Uint8Array): void {
    assert(data instanceof Uint8Array, 'proposal data must be bytes');
    this.raft.step(
      makeMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Proposes several entries in one message: one append, one MsgApp per follower, instead of one
   * per entry. All or none are accepted (throws as propose() does).
   */
  proposeBatch(data: readonly Uint8Array[]): void {
    assert(data.length > 0, 'empty proposal batch');
    for (const d of data) assert(d instanceof Uint8Array, 'proposal data must be bytes');
    this.raft.step(
      makeMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: data.map((d) => ({ term: 0, index: 0, type: EntryType.Normal, data: d })),
      }),
    );
  }

  /**
   * Proposes a single-server membership change. Throws RAFT_PROPOSAL_DROPPED as propose() does,
   * and also when the leader still has an unapplied conf change (one at a time).
   */
  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    this.raft.step(
      makeMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }],
      }),
    );
  }

  /**
   * Applies a committed conf change. The host calls this while applying the confChange entry
   * (step 3 of the Ready contract), before advance(); returns the new membership, which the host
   * stores with its next snapshot.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Requests a linearizable read point. `ctx` must be unique per request (it is the request id).
   * The answer arrives as a ReadState {index, requestCtx: ctx} in a later Ready; the read may be
   * served once the applied index >= index. Throws RAFT_PROPOSAL_DROPPED when no leader is known;
   * if leadership is lost on the way the answer never comes and the host must time out.
   */
  readIndex(ctx: Uint8Array): void {
    assert(ctx.byteLength > 0, 'readIndex needs a non-empty request context');
    this.raft.step(makeMessage({ type: MessageType.ReadIndex, context: ctx }));
  }

  /** Asks the leader to transfer leadership to `transferee` (forwarded if we are a follower). */
  transferLeader(transferee: NodeId): void {
    assert(transferee > 0, 'transferee must be a node id');
    this.raft.step(makeMessage({ type: MessageType.TransferLeader, from: transferee }));
  }

  /** Reports that the last message(s) to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.Unreachable, from: id }));
  }

  /** Reports the outcome of streaming a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(makeMessage({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  /** The leader this node knows right now (NONE if none) and its term; cheaper than status(). */
  get lead(): NodeId {
    return this.raft.lead;
  }

  get term(): number {
    return this.raft.term;
  }

  /**
   * Removes and returns the proposals queued for the leader since the last ready(), for a host to
   * forward at once rather than with the next Ready: a forwarded proposal claims nothing about
   * this node's log, so it need not wait behind a persist in progress (etcd, too, sends all but
   * append and vote responses without waiting for the disk). Every other message stays queued.
   */
  takeForwardedProposals(): Message[] {
    const r = this.raft;
    if (!r.msgs.some((m) => m.type === MessageType.Prop)) return [];
    const forwarded = r.msgs.filter((m) => m.type === MessageType.Prop);
    r.msgs = r.msgs.filter((m) => m.type !== MessageType.Prop);
    assert(forwarded.every((m) => m.to !== r.id), 'a forwarded proposal goes to another node');
    return forwarded;
  }

  /** True when ready() would return something to do. */
  hasReady(): boolean {
    const r = this.raft;
    if (!softStateEqual(r.softState(), this.#prevSoftState)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.#prevHardState)) return true;
    if (r.log.unstable.snapshot !== undefined) return true;
    if (r.log.unstable.entries.length > 0) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    return !this.#readyPending && r.log.hasNextCommittedEnts();
  }

  /**
   * Returns the work to do. The returned object is owned by the host; it must be acknowledged
   * with advance(rd) before the next ready().
   */
  ready(): Ready {
    assert(!this.#readyPending, 'ready() called again before advance()');
    const r = this.raft;
    const entries = r.log.unstableEntries();
    const rd: Ready = {
      entries,
      committedEntries: r.log.nextCommittedEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
      sendBeforePersist: false,
    };
    const soft = r.softState();
    if (!softStateEqual(soft, this.#prevSoftState)) {
      rd.softState = soft;
      this.#prevSoftState = soft;
    }
    const hard = r.hardState();
    if (!hardStateEqual(hard, this.#prevHardState)) {
      rd.hardState = hard;
    }
    const snap = r.log.unstable.snapshot;
    if (snap !== undefined) rd.snapshot = snap;
    // Term and vote must be durable before a vote or append ack leaves; so must new entries.
    // A commit-only change need not be synced (commit can be re-learned from the leader).
    rd.mustSync =
      hard.term !== this.#prevHardState.term ||
      hard.vote !== this.#prevHardState.vote ||
      entries.length > 0 ||
      snap !== undefined;
    // A leader's messages need nothing from this write: its term and vote are already durable
    // (they were before it campaigned), and it counts its own entries only once persisted. So
    // the host may send them first and overlap its fsync with the followers' (thesis §10.2.1).
    rd.sendBeforePersist =
      r.state === StateType.Leader && hard.term === this.#prevHardState.term && hard.vote === this.#prevHardState.vote && snap === undefined;
    if (rd.hardState !== undefined) this.#prevHardState = hard;
    r.msgs = [];
    r.readStates = [];
    this.#readyPending = true;
    return rd;
  }

  /** Acknowledges that the host persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    assert(this.#readyPending, 'advance() without a pending ready()');
    this.#readyPending = false;
    const log = this.raft.log;
    if (rd.committedEntries.length > 0) {
      log.appliedTo(last(rd.committedEntries).index);
      this.raft.reduceUncommittedSize(rd.committedEntries);
    } else if (rd.snapshot !== undefined) {
      log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const e = last(rd.entries);
      log.stableTo(e.index, e.term);
      this.raft.onPersisted(e.index, e.term);
    }
    if (rd.snapshot !== undefined) log.stableSnapTo(rd.snapshot.metadata.index);
  }

  /** Current state for diagnostics and tests. */
  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.state === StateType.Leader) {
      for (const [id, pr] of r.trk.progress) progress.set(id, pr.toStatus());
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      appliedIndex: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.trk.confState(),
      progress,
      leadTransferee: r.leadTransferee,
    };
  }
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.raftState === b.raftState;
}

