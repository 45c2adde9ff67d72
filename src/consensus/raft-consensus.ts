/**
 * RaftConsensus: the Raft host. It owns the tick timer, the durable log, the transport and the
 * apply loop around the pure core (src/raft/), and offers the object layer the same Consensus
 * seam that LocalConsensus does, so S3 code does not know which one it talks to.
 *
 * The Ready loop obeys etcd's ordering contract (STYLE.md rule 3):
 *
 *   ready() ─► persist entries + HardState (one write, fsync if mustSync)
 *           ─► send messages            (a vote or an append ack never outruns the disk)
 *           ─► apply committedEntries   (one metadata batch; conf changes to the core)
 *           ─► serve readStates         (once applied ≥ read index)
 *           ─► advance()
 *
 * Proposals that arrive while a Ready is being persisted wait for the next one, so one fsync
 * carries every proposal of that window (group commit).
 *
 * Every command carries a request id chosen here; the waiter for it is resolved when that entry
 * is applied, on whichever node proposed it (followers forward proposals to the leader inside the
 * core). A proposal whose fate is unknown (leader lost, timeout) is rejected with
 * CONSENSUS_ERR_TIMEOUT: the write may or may not have happened, and the state machine's
 * request-id deduplication makes a retry with the same id safe.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { decodeCommand, encodeCommand } from '../meta/codec.ts';
import type { IndexedCommand, MetaReader, MetaStore } from '../meta/level-meta-store.ts';
import type { ApplyResult, MetaCommand, MetaOp } from '../meta/types.ts';
import {
  type ConfChange,
  type ConfState,
  ConfChangeType,
  DEFAULT_LEASE_DRIFT_TICKS,
  decodeConfChange,
  type Entry,
  EntryType,
  isRaftError,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  RaftErrorCode,
  RawNode,
  ReadOnlyOption,
  type ReadState,
  StateType,
  type Status,
} from '../raft/index.ts';
import { assert } from '../util/assert.ts';
import { errorCode, StoreError } from '../util/errors.ts';
import { SeededRandom } from '../util/random.ts';
import type { DurableLogStorage } from './durable-log-storage.ts';
import type { ConsensusObserver } from './observer.ts';
import type { PeerAddress, Transport } from './transport.ts';
import { CONSENSUS_ERR_BAD_COMMAND, CONSENSUS_ERR_CLOSED, CONSENSUS_ERR_NO_LEADER, CONSENSUS_ERR_TIMEOUT, type Consensus } from './types.ts';


/** Timing and limits of the host. Raft time is in ticks; milliseconds only here. */
export interface RaftConsensusOptions {
  nodeId: NodeId;
  tickMs: number;
  electionTimeoutTicks: number;
  heartbeatTimeoutTicks: number;
  /** A proposal not applied within this is reported as CONSENSUS_ERR_TIMEOUT. */
  proposalTimeoutMs: number;
  /** A read barrier not satisfied within this is reported as CONSENSUS_ERR_TIMEOUT. */
  readTimeoutMs: number;
  /** Compact the log once this many entries were applied since the last snapshot. */
  snapshotEveryEntries: number;
  maxSizePerMsgBytes: number;
  maxInflightMsgs: number;
  /** Seed of the election-timeout randomness (a node id–derived seed is fine). */
  seed: number;
  /**
   * Lease reads: the leader answers ReadIndex without a heartbeat round while its lease holds
   * (see RaftConfig.leaseDriftTicks). Assumes clocks drift and timers run late by less than
   * leaseDriftTicks ticks per election timeout. Default off.
   */
  leaseReads?: boolean;
  leaseDriftTicks?: number;
}

/** Defaults for a LAN cluster: 100 ms ticks, 1 s election timeout, 100 ms heartbeats. */
export const DEFAULT_RAFT_TIMING = {
  tickMs: 100,
  electionTimeoutTicks: 10,
  heartbeatTimeoutTicks: 1,
  proposalTimeoutMs: 5_000,
  readTimeoutMs: 5_000,
  snapshotEveryEntries: 10_000,
  maxSizePerMsgBytes: 1024 * 1024,
  maxInflightMsgs: 256,
} as const;

/** A ReadIndex round unanswered for this long is sent again (the request or reply was lost). */
const READ_ROUND_RETRY_MS = 1_000;
/** Committed-but-unapplied entries beyond which the Ready loop waits for apply (backpressure). */
const APPLY_BACKLOG_ENTRIES_MAX = 8192;
/** Most entries applied in one LevelDB batch. */
const APPLY_BATCH_ENTRIES_MAX = 2048;

/** Collaborators of the host. */
export interface RaftConsensusDeps {
  log: DurableLogStorage;
  meta: MetaStore;
  transport: Transport;
  /** Structured logger (pino-compatible subset). */
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Called when a committed membership change names a peer's address. */
  onPeerAddress?(peer: PeerAddress): void;
  /** Called when a committed membership change removes a node. */
  onPeerRemoved?(id: NodeId): void;
  /** Metrics hooks (proposal latency, leader changes, fsync and snapshot timings). */
  observer?: ConsensusObserver;
}

interface ProposalWaiter {
  resolve(result: ApplyResult): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
  /**
   * The encoded metadata command, kept so it can be proposed again: a proposal forwarded to a
   * leader that then lost leadership (or a MsgProp lost on the wire) is dropped silently, and the
   * state machine's request-id deduplication makes a second copy in the log harmless.
   * Membership changes are never re-proposed (a stale AddNode could undo a later RemoveNode).
   */
  data?: Uint8Array;
  /** When it was last handed to the core (ms, monotonic). */
  proposedAtMs?: number;
}

interface ReadWaiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** Data carried in a membership change entry. */
interface ConfChangeContext {
  requestId: string;
  raftAddress?: string;
}

/** The Raft-backed Consensus. Construct with RaftConsensus.start(). */
export class RaftConsensus implements Consensus {
  readonly #options: RaftConsensusOptions;
  readonly #deps: RaftConsensusDeps;
  readonly #node: RawNode;
  #confState: ConfState;
  #lead: NodeId = NONE;
  #role: StateType = StateType.Follower;
  #appliedIndex: number;
  #snapshotIndex: number;
  #closed = false;
  #running = false;
  #again = false;
  #idle: Promise<void> = Promise.resolve();
  #ticker: NodeJS.Timeout | undefined;
  #tickEpochMs = 0;
  #ticksDone = 0;
  readonly #proposals = new Map<string, ProposalWaiter>();
  /** Commands already decoded from the exact bytes of their log entry (see #proposeCommand). */
  readonly #decoded = new WeakMap<Uint8Array, MetaCommand>();
  /** Proposals waiting for the next loop turn, to reach the core as one batch. */
  #proposalBuffer: { requestId: string; data: Uint8Array; retry?: boolean }[] = [];
  /** A follower's forwarding of proposals that arrived while the loop was busy is scheduled. */
  #forwardScheduled = false;
  /** Callers waiting for the next ReadIndex round. */
  #nextRead: ReadWaiter[] = [];
  /** The ReadIndex round in flight: its context and its callers. */
  #readRound: { ctx: string; waiters: ReadWaiter[]; timer: NodeJS.Timeout } | undefined;
  /** Callers whose read index is known, waiting for apply to reach it. */
  #awaitingApply: { index: number; waiters: ReadWaiter[] }[] = [];
  #leaderWaiters: (() => void)[] = [];
  /** Since when (monotonic ms) no leader is known; the host's start counts as leaderless. */
  #leaderlessSinceMs = performance.now();
  /** Fires once the leader has been gone for the leaderless bound (see #refuseWhileLeaderless). */
  #leaderlessTimer: NodeJS.Timeout | undefined;
  /**
   * Peers heard from (any Raft message) since the leader was lost: with this node, a quorum of
   * voters means an election in a majority is under way, however slowly a loaded machine runs it.
   */
  #heardSinceLeaderless = new Set<NodeId>();
  /** Those heard in the bound before the current one (a request arriving just after a re-check still counts them). */
  #heardBoundBefore = new Set<NodeId>();
  /** The leader (and its term) pending proposals were last re-proposed for. */
  #reproposedFor = '';
  /** The apply worker: resolves once every entry queued so far is applied. */
  #applyTail: Promise<void> = Promise.resolve();
  /** Committed entries queued for apply and not yet applied. */
  #applyBacklogEntries = 0;
  #applyQueue: Entry[] = [];
  #applyWorking = false;
  /** Serialises applies with snapshot installs (both write the state machine). */
  #stateMachineLock: Promise<void> = Promise.resolve();

  private constructor(options: RaftConsensusOptions, deps: RaftConsensusDeps) {
    this.#options = options;
    this.#deps = deps;
    const initial = deps.log.initialState();
    this.#confState = initial.confState;
    this.#snapshotIndex = deps.log.snapshot().metadata.index;
    // Replay everything after the log's snapshot point: conf changes must reach the core again;
    // metadata commands at or below the store's applied index are skipped by the store.
    this.#appliedIndex = this.#snapshotIndex;
    this.#node = new RawNode(
      {
        id: options.nodeId,
        electionTimeoutTicks: options.electionTimeoutTicks,
        heartbeatTimeoutTicks: options.heartbeatTimeoutTicks,
        appliedIndex: this.#appliedIndex,
        maxSizePerMsgBytes: options.maxSizePerMsgBytes,
        maxInflightMsgs: options.maxInflightMsgs,
        checkQuorum: true,
        preVote: true,
        ...(options.leaseReads ? { readOnlyOption: ReadOnlyOption.LeaseBased, leaseDriftTicks: options.leaseDriftTicks ?? DEFAULT_LEASE_DRIFT_TICKS } : {}),
        random: new SeededRandom(options.seed),
      },
      deps.log,
    );
  }

  /** Starts the host: transport, tick timer and (for a single voter) an immediate election. */
  static async start(options: RaftConsensusOptions, deps: RaftConsensusDeps): Promise<RaftConsensus> {
    const host = new RaftConsensus(options, deps);
    deps.transport.onUnreachable = (id) => {
      host.#node.reportUnreachable(id);
    };
    deps.transport.onPeerDown = (id) => host.#onPeerDown(id);
    await deps.transport.start({
      onMessages: (messages) => host.#onMessages(messages),
      onSnapshot: (message, data) => host.#onSnapshot(message, data),
      onPropose: (command) => host.#onPropose(command),
    });
    host.#tickEpochMs = performance.now();
    host.#ticker = setInterval(() => host.#tick(), options.tickMs);
    // A cluster of one need not wait an election timeout to serve.
    const voters = host.#confState.voters;
    if (voters.length === 1 && voters[0] === options.nodeId) host.#node.campaign();
    host.#kick();
    return host;
  }

  get reader(): MetaReader {
    return this.#deps.meta;
  }

  /** The known leader, or NONE. */
  get leader(): NodeId {
    return this.#lead;
  }

  /** Diagnostics: the core's status plus the host's applied index. */
  status(): Status & { role: StateType } {
    return { ...this.#node.status(), role: this.#role };
  }

  /** The membership as of the last applied entry. */
  confState(): ConfState {
    return { voters: [...this.#confState.voters], learners: [...this.#confState.learners] };
  }

  async propose(op: MetaOp, stampMs: number): Promise<ApplyResult> {
    const command: MetaCommand = { v: 1, requestId: randomUUID(), stampMs, op };
    return this.#proposeCommand(command);
  }

  /** The Propose RPC: an encoded command from a client, validated at its envelope, proposed. */
  async #onPropose(bytes: Uint8Array): Promise<Uint8Array> {
    let command: MetaCommand;
    try {
      command = decodeCommand(bytes);
    } catch (err) {
      throw new StoreError(CONSENSUS_ERR_BAD_COMMAND, (err as Error).message);
    }
    const { requestId, stampMs, op } = command;
    if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 128 || requestId.includes('\0')) {
      throw new StoreError(CONSENSUS_ERR_BAD_COMMAND, 'requestId must be a string of 1 to 128 characters');
    }
    if (!Number.isSafeInteger(stampMs) || typeof op !== 'object' || op === null || typeof op.type !== 'string') {
      throw new StoreError(CONSENSUS_ERR_BAD_COMMAND, 'command needs an integer stampMs and an op with a type');
    }
    // The op's own fields are checked by apply (a malformed op is answered META_ERR_BAD_COMMAND).
    return Buffer.from(JSON.stringify(await this.#proposeCommand(command, bytes)), 'utf8');
  }

  /** Proposes an encoded command and waits until it is applied here. */
  async #proposeCommand(command: MetaCommand, encoded?: Uint8Array): Promise<ApplyResult> {
    this.#checkOpen();
    const startedMs = performance.now();
    await this.#waitForLeader().catch((err: unknown) => {
      this.#deps.observer?.proposalDone?.((performance.now() - startedMs) / 1000, false);
      throw err;
    });
    const proposed = new Promise<ApplyResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#proposals.delete(command.requestId);
        reject(new StoreError(CONSENSUS_ERR_TIMEOUT, 'proposal not applied in time; its outcome is unknown', { requestId: command.requestId }));
      }, this.#options.proposalTimeoutMs);
      const data = encoded ?? encodeCommand(command);
      // Decoded from these very bytes (the Propose RPC): apply may reuse it instead of parsing
      // the entry again. An object built in-process is never reused, since JSON may not give
      // back exactly it, and every replica must apply exactly what the bytes say.
      if (encoded) this.#decoded.set(encoded, command);
      this.#proposals.set(command.requestId, { resolve, reject, timer, data, proposedAtMs: performance.now() });
      this.#proposalBuffer.push({ requestId: command.requestId, data });
      this.#kick();
    });
    const observer = this.#deps.observer;
    if (observer?.proposalDone) {
      const done = (ok: boolean) => observer.proposalDone?.((performance.now() - startedMs) / 1000, ok);
      proposed.then(
        () => done(true),
        () => done(false),
      );
    }
    return proposed;
  }

  /**
   * Linearizable read point (ReadIndex). Concurrent callers share one round: they wait for the
   * round after the one in flight, so a read never uses a read index obtained before it began.
   */
  async readBarrier(): Promise<void> {
    this.#checkOpen();
    await this.#waitForLeader();
    return new Promise<void>((resolve, reject) => {
      // One deadline per caller, whatever happens to the rounds it rides on (leader lost, round
      // retried): a strong read is answered or refused in bounded time, never left hanging.
      const timer = setTimeout(() => reject(new StoreError(CONSENSUS_ERR_TIMEOUT, 'read barrier not confirmed in time')), this.#options.readTimeoutMs);
      this.#nextRead.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      if (!this.#readRound) this.#startReadRound();
    });
  }

  /** Adds a node as a learner (it replicates but does not vote). */
  async addLearner(id: NodeId, raftAddress: string): Promise<void> {
    await this.#proposeConfChange(ConfChangeType.AddLearnerNode, id, raftAddress);
  }

  /** Promotes a learner (or adds a node) to voter. */
  async addVoter(id: NodeId, raftAddress?: string): Promise<void> {
    await this.#proposeConfChange(ConfChangeType.AddNode, id, raftAddress);
  }

  /** Removes a voter or learner. */
  async removeNode(id: NodeId): Promise<void> {
    await this.#proposeConfChange(ConfChangeType.RemoveNode, id, undefined);
  }

  /** Asks the leader to hand leadership to `id`. */
  transferLeadership(id: NodeId): void {
    this.#node.transferLeader(id);
    this.#kick();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ticker) clearInterval(this.#ticker);
    clearTimeout(this.#leaderlessTimer);
    await this.#idle;
    await this.#applyTail;
    await this.#stateMachineLock;
    const closed = new StoreError(CONSENSUS_ERR_CLOSED, 'consensus is closed');
    for (const w of this.#proposals.values()) {
      clearTimeout(w.timer);
      w.reject(closed);
    }
    this.#proposals.clear();
    this.#failReads(closed);
    await this.#deps.transport.close();
    await this.#deps.log.close();
  }

  async #proposeConfChange(type: ConfChangeType, nodeId: NodeId, raftAddress: string | undefined): Promise<void> {
    this.#checkOpen();
    await this.#waitForLeader();
    const requestId = randomUUID();
    const context: ConfChangeContext = { requestId, ...(raftAddress ? { raftAddress } : {}) };
    const result = await new Promise<ApplyResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#proposals.delete(requestId);
        reject(new StoreError(CONSENSUS_ERR_TIMEOUT, 'membership change not applied in time'));
      }, this.#options.proposalTimeoutMs);
      this.#proposals.set(requestId, { resolve, reject, timer });
      try {
        const cc: ConfChange = { type, nodeId, context: Buffer.from(JSON.stringify(context)) };
        this.#node.proposeConfChange(cc);
      } catch (err) {
        clearTimeout(timer);
        this.#proposals.delete(requestId);
        reject(isRaftError(err, RaftErrorCode.ProposalDropped) ? noLeader(err) : err);
        return;
      }
      this.#kick();
    });
    assert(result.ok, 'membership changes always apply');
  }

  /**
   * The transport saw the leader's process go away (its connection broke, a reconnect was
   * refused): forget it and campaign now rather than after an election timeout. The other
   * followers saw the same and forget it too, so they grant the vote (leader stickiness would
   * otherwise refuse it for an election timeout). Survivors take turns by node id, one tick
   * apart, so two of them do not split the vote; each goes only if no leader has appeared and
   * its term has not moved. Not with lease reads (the core ignores forgetLeader then).
   */
  #onPeerDown(id: NodeId): void {
    // Only our leader matters; forgetLeader() below refuses unless the core is its follower.
    if (this.#closed || this.#node.lead !== id) return;
    const voters = this.#confState.voters.filter((v) => v !== id).sort((a, b) => a - b);
    const rank = voters.indexOf(this.#options.nodeId);
    if (rank < 0 || !this.#node.forgetLeader()) return;
    const term = this.#node.term;
    // The grace lets the other survivors' own probes land first, so they grant the first ask.
    const delayMs = Math.ceil(this.#options.tickMs / 4) + rank * this.#options.tickMs;
    this.#deps.logger.info({ leader: id, campaignInMs: delayMs }, 'raft leader is gone (connection refused): forgetting it');
    const timer = setTimeout(() => {
      if (this.#closed || this.#node.term !== term || this.#node.lead !== NONE || this.#role !== StateType.Follower) return;
      this.#node.campaign();
      this.#kick();
    }, delayMs);
    timer.unref();
    this.#kick();
  }

  #tick(): void {
    if (this.#closed) return;
    // Ticks follow the monotonic clock, not the timer: a timer that fired late (a busy or paused
    // event loop) is made up for, so a leader never believes less time passed than did. Leases
    // depend on it; elections only get more prompt.
    const due = Math.floor((performance.now() - this.#tickEpochMs) / this.#options.tickMs);
    const behind = Math.min(due - this.#ticksDone, 10 * this.#options.electionTimeoutTicks);
    this.#ticksDone = due;
    for (let i = 0; i < behind; i++) this.#node.tick();
    this.#reproposeStalled();
    this.#kick();
  }

  /**
   * Proposes again the metadata commands still waiting: all of them when a new leader is known
   * (what was forwarded to the old one may be lost), or those waiting longer than twice the
   * election timeout (a lost MsgProp). Duplicates in the log apply once (request-id dedup).
   */
  #reproposeStalled(all = false): void {
    // The core's leader, not #lead: on a new leader this runs before the Ready that tells #lead.
    if (this.#node.lead === NONE || this.#proposals.size === 0) return;
    const now = performance.now();
    const stallMs = 2 * this.#options.electionTimeoutTicks * this.#options.tickMs;
    for (const [requestId, waiter] of this.#proposals) {
      if (!waiter.data || waiter.proposedAtMs === undefined) continue;
      if (!all && now - waiter.proposedAtMs < stallMs) continue;
      waiter.proposedAtMs = now;
      this.#proposalBuffer.push({ requestId, data: waiter.data, retry: true });
    }
  }

  /** Once per leader and term: what was forwarded to an earlier leader may be lost, so propose it again. */
  #reproposeOnNewLeader(lead: NodeId): boolean {
    const key = `${lead}@${this.#node.term}`;
    if (key === this.#reproposedFor) return false;
    this.#reproposedFor = key;
    this.#reproposeStalled(true);
    return true;
  }

  /**
   * Hands the buffered proposals to the core as one batch: one log append and one MsgApp per
   * follower for all of them (group commit starts here). A refused batch fails its first-time
   * proposals with NO_LEADER (nothing was appended); refused retries keep waiting for a leader.
   */
  #flushProposals(): void {
    if (this.#proposalBuffer.length === 0) return;
    const batch = this.#proposalBuffer;
    this.#proposalBuffer = [];
    try {
      this.#node.proposeBatch(batch.map((p) => p.data));
    } catch (err) {
      if (!isRaftError(err, RaftErrorCode.ProposalDropped)) throw err;
      for (const p of batch) {
        if (p.retry) continue;
        const waiter = this.#proposals.get(p.requestId);
        if (!waiter) continue;
        this.#proposals.delete(p.requestId);
        clearTimeout(waiter.timer);
        waiter.reject(noLeader(err));
      }
    }
  }

  #onMessages(messages: Message[]): void {
    if (this.#closed) return;
    for (const m of messages) {
      if (this.#lead === NONE) this.#heardSinceLeaderless.add(m.from);
      try {
        this.#node.step(m);
      } catch (err) {
        this.#deps.logger.warn({ err, type: m.type, from: m.from }, 'raft message rejected');
      }
    }
    this.#kick();
  }

  /** Installs a leader's snapshot into the state machine, then lets the core accept it. */
  async #onSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<boolean> {
    assert(message.type === MessageType.Snap && message.snapshot !== undefined, 'snapshot message expected');
    if (this.#closed) return false;
    await this.#applyTail;
    await this.#withStateMachine(async () => {
      const snapIndex = message.snapshot!.metadata.index;
      if (snapIndex > this.#deps.meta.appliedIndex()) {
        const startedMs = performance.now();
        let bytes = 0;
        await this.#deps.meta.installSnapshot(
          (async function* () {
            for await (const piece of data) {
              bytes += piece.byteLength;
              yield piece;
            }
          })(),
        );
        this.#deps.observer?.snapshotInstalled?.((performance.now() - startedMs) / 1000, bytes);
        this.#deps.logger.info({ snapIndex, applied: this.#deps.meta.appliedIndex() }, 'installed snapshot from leader');
      } else {
        for await (const _ of data) {
          // Drain: our state is already at or past this snapshot; the core decides what to do.
        }
      }
    });
    this.#onMessages([message]);
    return true;
  }

  /**
   * Schedules the Ready loop; at most one runs at a time. `#again` is set before the check and
   * `#running` is cleared in the same synchronous step that sees `#again` false, so a kick that
   * arrives while the loop is finishing is never lost.
   */
  #kick(): void {
    this.#again = true;
    if (this.#running) {
      this.#forwardSoon();
      return;
    }
    this.#running = true;
    this.#idle = this.#loop().catch(this.#fatal('raft host failed'));
  }

  /**
   * While the loop is busy (typically waiting for a persist), a follower hands proposals that
   * arrived meanwhile to the core and sends the resulting MsgProp to the leader at the end of
   * this event-loop turn, instead of after the persist and with the next Ready: the forwarded
   * proposal claims nothing about this node's log (RawNode.takeForwardedProposals), and in a
   * cluster most writes arrive at followers, each otherwise queued behind a follower's fsync
   * before the leader even sees it. One turn's arrivals leave in one message.
   */
  #forwardSoon(): void {
    if (this.#forwardScheduled || this.#proposalBuffer.length === 0 || this.#role !== StateType.Follower || this.#node.lead === NONE) return;
    this.#forwardScheduled = true;
    setImmediate(() => {
      this.#forwardScheduled = false;
      if (this.#closed || !this.#running || this.#role !== StateType.Follower) return;
      this.#flushProposals();
      const forwarded = this.#node.takeForwardedProposals();
      if (forwarded.length > 0) this.#deps.transport.send(forwarded);
    });
  }

  /** A failed fsync or apply leaves state we cannot reason about: log it and stop the process. */
  #fatal(what: string): (err: unknown) => void {
    return (err) => {
      this.#deps.logger.error({ err }, `${what}; exiting`);
      process.nextTick(() => {
        throw err;
      });
    };
  }

  async #loop(): Promise<void> {
    try {
      while (this.#again && !this.#closed) {
        this.#again = false;
        this.#flushProposals();
        while (!this.#closed && this.#node.hasReady()) {
          await this.#handleReady();
          this.#flushProposals();
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #handleReady(): Promise<void> {
    // A new leader: re-propose what was forwarded to the old one before taking this Ready, so it
    // leaves in the new leader's first MsgApp (a follower in probe state takes one at a time).
    if (this.#node.lead !== NONE && this.#reproposeOnNewLeader(this.#node.lead)) this.#flushProposals();
    const rd = this.#node.ready();
    if (rd.softState) this.#onSoftState(rd.softState.lead, rd.softState.raftState);
    // A snapshot replaces the state: everything committed before it is applied first.
    if (rd.snapshot) await this.#applyTail;
    // 1. Durable before anything leaves this node, except a leader's messages: it counts its own
    //    entries only once persisted, so its fsync overlaps the followers' (thesis §10.2.1).
    if (rd.sendBeforePersist) this.#send(rd.messages);
    // Committed entries the log already holds durably (those below the first entry this Ready
    // appends) go to the apply worker now, so applying a batch overlaps the fsync of the next
    // one instead of waiting behind it (etcd's server hands committed entries to its apply loop
    // before saving the Ready, too). Entries being written by this very Ready wait for it.
    const committed = this.#applyDurableFirst(rd.committedEntries, rd.entries, rd.snapshot !== undefined);
    const persistStartedMs = performance.now();
    await this.#deps.log.persist({ ...(rd.hardState ? { hardState: rd.hardState } : {}), entries: rd.entries, ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) }, rd.mustSync);
    if (rd.entries.length > 0 || rd.hardState) this.#deps.observer?.persisted?.((performance.now() - persistStartedMs) / 1000, rd.mustSync);
    if (rd.snapshot) {
      this.#confState = rd.snapshot.metadata.confState;
      this.#snapshotIndex = rd.snapshot.metadata.index;
      this.#appliedIndex = Math.max(this.#appliedIndex, rd.snapshot.metadata.index);
    }
    // 2. Send.
    if (!rd.sendBeforePersist) this.#send(rd.messages);
    // 3. Apply, off the loop: the next round of appends and sends need not wait for LevelDB.
    //    Membership changes are applied before advance(), as the core expects.
    if (committed.length > 0) this.#enqueueApply(committed);
    if (rd.committedEntries.length > 0) {
      const hasConfChange = rd.committedEntries.some((e) => e.type === EntryType.ConfChange);
      if (hasConfChange || this.#applyBacklogEntries > APPLY_BACKLOG_ENTRIES_MAX) await this.#applyTail;
    }
    for (const rs of rd.readStates) this.#onReadState(rs);
    this.#releaseReads();
    // 4. Advance.
    this.#node.advance(rd);
    await this.#maybeCompact();
  }

  /**
   * Enqueues the committed entries below the first of `appended` (durable already: every entry
   * outside the Ready's own appends was written and fsynced by an earlier persist) and returns
   * the rest, to be applied after this Ready is persisted. With a snapshot, or a membership change
   * among them (the core expects it applied in Ready order), everything waits, as before.
   */
  #applyDurableFirst(committedEntries: Entry[], appended: Entry[], hasSnapshot: boolean): Entry[] {
    if (hasSnapshot || committedEntries.length === 0) return committedEntries;
    const firstAppended = appended[0]?.index ?? Number.POSITIVE_INFINITY;
    let durable = 0;
    while (durable < committedEntries.length && committedEntries[durable]!.index < firstAppended) {
      if (committedEntries[durable]!.type === EntryType.ConfChange) return committedEntries;
      durable++;
    }
    if (durable === 0) return committedEntries;
    assert(durable === committedEntries.length || committedEntries[durable]!.index === firstAppended, 'committed entries run on into the appended ones');
    this.#enqueueApply(durable === committedEntries.length ? committedEntries : committedEntries.slice(0, durable));
    return committedEntries.slice(durable);
  }

  #send(messages: Message[]): void {
    const plain: Message[] = [];
    for (const m of messages) {
      if (m.type === MessageType.Snap) this.#sendSnapshot(m);
      else plain.push(m);
    }
    if (plain.length > 0) this.#deps.transport.send(plain);
  }

  #onSoftState(lead: NodeId, role: StateType): void {
    const leaderChanged = lead !== this.#lead;
    this.#lead = lead;
    this.#role = role;
    if (leaderChanged) {
      clearTimeout(this.#leaderlessTimer);
      if (lead === NONE) {
        this.#leaderlessSinceMs = performance.now();
        this.#heardSinceLeaderless.clear();
        this.#heardBoundBefore.clear();
        this.#leaderlessTimer = setTimeout(() => this.#refuseWhileLeaderless(), this.#leaderlessBoundMs());
        this.#leaderlessTimer.unref();
      }
      this.#deps.logger.info({ lead, role }, 'raft leader changed');
      this.#deps.observer?.leaderChanged?.(lead);
      // A read round addressed to the old leader will never be answered: fail it now, retry on
      // the next round with the new leader.
      if (this.#readRound) {
        clearTimeout(this.#readRound.timer);
        this.#nextRead.unshift(...this.#readRound.waiters);
        this.#readRound = undefined;
      }
      if (lead !== NONE) {
        for (const wake of this.#leaderWaiters.splice(0)) wake();
        this.#reproposeOnNewLeader(lead);
        if (this.#nextRead.length > 0) queueMicrotask(() => this.#startReadRound());
      }
    }
  }

  /**
   * Queues committed entries for the apply worker. The worker applies everything queued when it
   * starts a batch (up to APPLY_BATCH_ENTRIES_MAX), so under load several Readys' entries share
   * one LevelDB batch; `#applyTail` resolves once the queue is empty.
   */
  #enqueueApply(entries: Entry[]): void {
    this.#applyQueue.push(...entries);
    this.#applyBacklogEntries += entries.length;
    if (this.#applyWorking) return;
    this.#applyWorking = true;
    this.#applyTail = this.#applyWorker().catch(this.#fatal('raft apply failed'));
  }

  async #applyWorker(): Promise<void> {
    try {
      while (this.#applyQueue.length > 0) {
        const batch = this.#applyQueue.splice(0, APPLY_BATCH_ENTRIES_MAX);
        await this.#withStateMachine(() => this.#apply(batch));
        this.#applyBacklogEntries -= batch.length;
        this.#releaseReads();
      }
    } finally {
      this.#applyWorking = false;
    }
  }

  async #apply(entries: Entry[]): Promise<void> {
    const metaApplied = this.#deps.meta.appliedIndex();
    const batch: IndexedCommand[] = [];
    const confResults: { requestId: string }[] = [];
    for (const entry of entries) {
      assert(entry.index === this.#appliedIndex + 1 || entry.index <= this.#appliedIndex, `apply gap ${this.#appliedIndex} → ${entry.index}`);
      if (entry.index <= this.#appliedIndex) continue;
      this.#appliedIndex = entry.index;
      if (entry.type === EntryType.ConfChange) {
        const cc = decodeConfChange(entry.data);
        this.#confState = this.#node.applyConfChange(cc);
        const context = parseConfContext(cc.context);
        if (context?.raftAddress && cc.type !== ConfChangeType.RemoveNode) this.#deps.onPeerAddress?.({ id: cc.nodeId, raftAddress: context.raftAddress });
        if (cc.type === ConfChangeType.RemoveNode) this.#deps.onPeerRemoved?.(cc.nodeId);
        if (context) confResults.push({ requestId: context.requestId });
        this.#deps.logger.info({ type: cc.type, nodeId: cc.nodeId, confState: this.#confState }, 'membership changed');
        if (entry.index > metaApplied) batch.push({ index: entry.index, command: undefined });
        continue;
      }
      if (entry.index <= metaApplied) continue;
      batch.push({ index: entry.index, command: this.#decoded.get(entry.data) ?? decodeOrUndefined(entry.data) });
    }
    // Positions covered by the log's snapshot point that the store never saw (the founding
    // snapshot at index 1 holds only membership) advance its index without changing anything.
    const first = batch[0]?.index;
    if (first !== undefined && first > metaApplied + 1) {
      assert(first - 1 <= this.#snapshotIndex, `state machine at ${metaApplied} cannot apply ${first}`);
      const padding: IndexedCommand[] = [];
      for (let i = metaApplied + 1; i < first; i++) padding.push({ index: i, command: undefined });
      batch.unshift(...padding);
    }
    // Proposers are answered as soon as the results are known, which may be before LevelDB has
    // written them: the entries are durable in the log already, and the store shows the batch to
    // every read meanwhile (see LevelMetaStore.applyBatch).
    if (batch.length > 0) {
      await this.#deps.meta.applyBatch(batch, (results) => {
        for (const [i, { command }] of batch.entries()) {
          if (!command) continue;
          const waiter = this.#proposals.get(command.requestId);
          if (!waiter) continue;
          this.#proposals.delete(command.requestId);
          clearTimeout(waiter.timer);
          waiter.resolve(results[i]!);
        }
      });
    }
    for (const { requestId } of confResults) {
      const waiter = this.#proposals.get(requestId);
      if (!waiter) continue;
      this.#proposals.delete(requestId);
      clearTimeout(waiter.timer);
      waiter.resolve({ ok: true });
    }
  }

  #startReadRound(): void {
    if (this.#readRound || this.#nextRead.length === 0 || this.#closed) return;
    const waiters = this.#nextRead;
    this.#nextRead = [];
    const ctx = randomBytes(8).toString('hex');
    try {
      this.#node.readIndex(Buffer.from(ctx));
    } catch (err) {
      const e = isRaftError(err, RaftErrorCode.ProposalDropped) ? noLeader(err) : err;
      for (const w of waiters) w.reject(e);
      return;
    }
    // A round whose answer never comes (its request or reply lost) is retried; each caller's own
    // deadline bounds the total wait.
    const timer = setTimeout(() => {
      if (this.#readRound?.ctx !== ctx) return;
      this.#readRound = undefined;
      this.#nextRead.unshift(...waiters);
      this.#startReadRound();
    }, READ_ROUND_RETRY_MS);
    this.#readRound = { ctx, waiters, timer };
    this.#kick();
  }

  #onReadState(rs: ReadState): void {
    const ctx = Buffer.from(rs.requestCtx).toString();
    const round = this.#readRound;
    if (!round || round.ctx !== ctx) return;
    clearTimeout(round.timer);
    this.#readRound = undefined;
    this.#awaitingApply.push({ index: rs.index, waiters: round.waiters });
    this.#startReadRound();
  }

  /** Resolves reads whose read index has been applied. */
  #releaseReads(): void {
    // The store's own index: #appliedIndex runs ahead while a batch is being applied.
    const applied = this.#deps.meta.appliedIndex();
    const ready = this.#awaitingApply.filter((r) => r.index <= applied);
    if (ready.length === 0) return;
    this.#awaitingApply = this.#awaitingApply.filter((r) => r.index > applied);
    for (const r of ready) for (const w of r.waiters) w.resolve();
  }

  #failReads(err: unknown): void {
    if (this.#readRound) {
      clearTimeout(this.#readRound.timer);
      for (const w of this.#readRound.waiters) w.reject(err);
      this.#readRound = undefined;
    }
    for (const w of this.#nextRead.splice(0)) w.reject(err);
    for (const r of this.#awaitingApply.splice(0)) for (const w of r.waiters) w.reject(err);
  }

  #sendSnapshot(m: Message): void {
    this.#deps.transport
      .sendSnapshot(m, () => this.#deps.meta.exportSnapshot())
      .then(
        (ok) => {
          if (!this.#closed) this.#node.reportSnapshot(m.to, ok);
        },
        (err: unknown) => {
          this.#deps.logger.warn({ err, to: m.to }, 'snapshot send failed');
          if (!this.#closed) this.#node.reportSnapshot(m.to, false);
        },
      )
      .finally(() => this.#kick());
  }

  async #maybeCompact(): Promise<void> {
    if (this.#appliedIndex - this.#snapshotIndex < this.#options.snapshotEveryEntries) return;
    // Under the state-machine lock: the apply worker must not move the store's applied index
    // between reading it and making it durable.
    await this.#withStateMachine(async () => {
      const index = Math.min(this.#appliedIndex, this.#deps.meta.appliedIndex());
      if (index <= this.#snapshotIndex) return;
      // The state must be durable up to the snapshot point before the log entries behind it go.
      const startedMs = performance.now();
      await this.#deps.meta.flush();
      await this.#deps.log.compact(index, this.#confState);
      this.#deps.observer?.compacted?.((performance.now() - startedMs) / 1000, this.#deps.log.sizeBytes);
      this.#snapshotIndex = index;
      this.#deps.logger.info({ index, logBytes: this.#deps.log.sizeBytes }, 'raft log compacted');
    });
  }

  async #withStateMachine<T>(fn: () => Promise<T>): Promise<T> {
    const prior = this.#stateMachineLock;
    let release!: () => void;
    this.#stateMachineLock = new Promise((r) => {
      release = r;
    });
    await prior;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Waits (bounded) until some leader is known, so requests during an election need not fail.
   * The bound counts from when the leader was lost, not from the request (but is one election
   * timeout at least): a node in a minority partition stays leaderless, and each request waiting
   * the whole bound again outlived clients' timeouts (the chaos suite saw every request to a
   * minority time out after 2.5 s and none get a 503, contract 4).
   */
  async #waitForLeader(): Promise<void> {
    if (this.#lead !== NONE) return;
    // Still one election timeout at least: a node that just started, or whose peers just did,
    // hears the leader within a heartbeat once there is one.
    // Past the bound, a node that hears a quorum is in an election of the majority: it waits a
    // whole bound again, as a node that does not (a minority) refuses at once.
    const sinceLoss = this.#leaderlessSinceMs + this.#leaderlessBoundMs() - performance.now();
    const waitMs = Math.max(this.#options.electionTimeoutTicks * this.#options.tickMs, this.#hearsQuorum() ? this.#leaderlessBoundMs() : sinceLoss);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#leaderWaiters = this.#leaderWaiters.filter((w) => w !== wake);
        reject(new StoreError(CONSENSUS_ERR_NO_LEADER, 'no Raft leader is reachable (minority partition or election in progress)'));
      }, waitMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#leaderWaiters.push(wake);
    });
  }

  /** How long requests wait for a leader after the last one was lost: three election timeouts. */
  #leaderlessBoundMs(): number {
    return this.#options.electionTimeoutTicks * this.#options.tickMs * 3;
  }

  /**
   * The leader has been gone for the leaderless bound (a minority partition, most likely): the
   * requests still waiting are answered now instead of at their own deadlines, which are longer
   * than clients wait (contract 4: a minority answers 503 quickly). Reads waiting for a round
   * got no read index, so they are refused; proposals get the timeout they would have got later
   * (their outcome is unknown: one may have reached the old leader and commit yet).
   */
  #refuseWhileLeaderless(): void {
    if (this.#closed || this.#lead !== NONE) return;
    if (this.#hearsQuorum()) {
      // An election in the majority, slow (a loaded machine, split votes): not a minority. The
      // waiting requests keep their own deadlines; look again after another bound.
      this.#heardBoundBefore = this.#heardSinceLeaderless;
      this.#heardSinceLeaderless = new Set();
      this.#leaderlessTimer = setTimeout(() => this.#refuseWhileLeaderless(), this.#leaderlessBoundMs());
      this.#leaderlessTimer.unref();
      return;
    }
    const reads = this.#nextRead.splice(0);
    for (const w of reads) w.reject(new StoreError(CONSENSUS_ERR_NO_LEADER, 'no Raft leader is reachable (minority partition or election in progress)'));
    const proposals = [...this.#proposals];
    for (const [requestId, w] of proposals) {
      this.#proposals.delete(requestId);
      clearTimeout(w.timer);
      w.reject(new StoreError(CONSENSUS_ERR_TIMEOUT, 'no Raft leader is reachable; the proposal\'s outcome is unknown', { requestId }));
    }
    if (reads.length + proposals.length > 0) this.#deps.logger.warn({ reads: reads.length, proposals: proposals.length, leaderlessMs: Math.round(performance.now() - this.#leaderlessSinceMs) }, 'no raft leader: refusing waiting requests');
  }

  /** True when this node and the peers heard from since the leader was lost are a quorum of voters. */
  #hearsQuorum(): boolean {
    const voters = this.#confState.voters;
    let heard = 0;
    for (const v of voters) if (v === this.#options.nodeId || this.#heardSinceLeaderless.has(v) || this.#heardBoundBefore.has(v)) heard++;
    return heard > voters.length / 2;
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError(CONSENSUS_ERR_CLOSED, 'consensus is closed');
  }
}

function noLeader(cause: unknown): StoreError {
  return new StoreError(CONSENSUS_ERR_NO_LEADER, 'no Raft leader accepted the request', {}, { cause });
}

function decodeOrUndefined(data: Uint8Array): MetaCommand | undefined {
  // A new leader's empty entry carries no command.
  if (data.byteLength === 0) return undefined;
  try {
    return decodeCommand(data);
  } catch (err) {
    // Every node sees the same bytes and makes the same choice: the entry changes nothing.
    if (errorCode(err) === 'META_ERR_BAD_COMMAND') return undefined;
    throw err;
  }
}

function parseConfContext(bytes: Uint8Array): ConfChangeContext | undefined {
  if (bytes.byteLength === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as ConfChangeContext;
  } catch {
    return undefined;
  }
}
