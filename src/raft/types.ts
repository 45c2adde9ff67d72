/**
 * Plain data types of the Raft core: entries, messages, hard/soft state, snapshots, Ready.
 *
 * Every type here is a plain object (no classes, no methods) so the host can map it field by field
 * onto protobuf for the wire and for the durable log. Raft words follow the paper and etcd-io/raft.
 */

/**
 * Identifier of a Raft peer. Must be a positive safe integer; 0 (NONE) means "no node".
 * Plain numbers (not bigint) keep the wire mapping simple; uint53 is plenty for node ids.
 */
export type NodeId = number;

/** The absent node id: "no leader", "voted for nobody". */
export const NONE: NodeId = 0;

/** Kinds of log entries. */
export const EntryType = {
  /** Application command (or the empty entry a new leader appends, data.length === 0). */
  Normal: 'normal',
  /** A membership change; data is `encodeConfChange(cc)`. */
  ConfChange: 'confChange',
} as const;
/** Kind of a log entry. */
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. Immutable once created: the core shares entry objects between log and messages. */
export interface Entry {
  /** Term of the leader that created the entry. */
  term: number;
  /** Position in the log, starting at 1. */
  index: number;
  /** Normal command or membership change. */
  type: EntryType;
  /** Opaque payload (the core never looks inside normal entries). */
  data: Uint8Array;
}

/** All message types. Local ones (never on the wire) are marked. */
export const MessageType = {
  /** Local: start an election (or pre-election). */
  Hup: 'MsgHup',
  /** Local: tell the leader to send heartbeats. */
  Beat: 'MsgBeat',
  /** Proposal of entries; local on the leader, forwarded by followers to the leader. */
  Prop: 'MsgProp',
  /** AppendEntries: entries after (index, logTerm), plus the leader's commit index. */
  App: 'MsgApp',
  /** Reply to MsgApp or MsgSnap: accepted up to `index`, or rejected with a hint. */
  AppResp: 'MsgAppResp',
  /** RequestVote. */
  Vote: 'MsgVote',
  /** Reply to MsgVote. */
  VoteResp: 'MsgVoteResp',
  /** Pre-vote request (Raft thesis §9.6): would you vote for me at term `term`? */
  PreVote: 'MsgPreVote',
  /** Reply to MsgPreVote. */
  PreVoteResp: 'MsgPreVoteResp',
  /** InstallSnapshot (the host streams `snapshot.data` in chunks; the core sees one message). */
  Snap: 'MsgSnap',
  /** Heartbeat from the leader; `commit` is min(follower match, leader commit); may carry a read ctx. */
  Heartbeat: 'MsgHeartbeat',
  /** Reply to MsgHeartbeat, echoing `context`. */
  HeartbeatResp: 'MsgHeartbeatResp',
  /** Local: the host reports that a peer could not be reached. */
  Unreachable: 'MsgUnreachable',
  /** Local: the host reports the outcome of sending a snapshot (`reject` = failure). */
  SnapStatus: 'MsgSnapStatus',
  /** Local: the leader checks that a quorum was active within the last election timeout. */
  CheckQuorum: 'MsgCheckQuorum',
  /** Ask the leader to hand leadership to `from` (the transferee). */
  TransferLeader: 'MsgTransferLeader',
  /** Leader tells the transferee to campaign now, bypassing pre-vote and leases. */
  TimeoutNow: 'MsgTimeoutNow',
  /** ReadIndex request (local on the leader, forwarded by followers); `context` identifies it. */
  ReadIndex: 'MsgReadIndex',
  /** Leader's answer to a forwarded ReadIndex: `index` is the read index, `context` echoes the request. */
  ReadIndexResp: 'MsgReadIndexResp',
} as const;
/** Type of a message. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Message types that only exist inside one node and must never be stepped in from the wire. */
export const LOCAL_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
]);

/** Returns true for requests whose reply type is a response (used to drop replies from strangers). */
export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.PreVoteResp ||
    type === MessageType.ReadIndexResp
  );
}

/**
 * A Raft message. All fields are always present (zero values when unused) except `snapshot`, so
 * the protobuf mapping is 1:1. Field meanings by type:
 * - `type`, `to`, `from`: what it is, recipient, sender.
 * - `term`: sender's term; 0 for local messages and for MsgProp/MsgReadIndex (which are forwarded
 *   "as if local"). For MsgPreVote it is the term the sender *would* campaign at.
 * - `logTerm`, `index`: MsgApp: term/index of the entry preceding `entries`. MsgVote/MsgPreVote:
 *   sender's last log term/index. MsgAppResp: highest index accepted, or the rejected probe index
 *   (with `logTerm` = term of the hint entry when rejecting). MsgReadIndexResp: the read index.
 * - `entries`: MsgApp/MsgProp payload.
 * - `commit`: leader commit index (MsgApp), or min(match, commit) (MsgHeartbeat).
 * - `snapshot`: only on MsgSnap.
 * - `reject`, `rejectHint`: negative responses; `rejectHint` is the follower's suggested probe index.
 * - `context`: opaque bytes: ReadIndex request id (MsgReadIndex, MsgReadIndexResp, MsgHeartbeat,
 *   MsgHeartbeatResp), or CAMPAIGN_TRANSFER on MsgVote/MsgPreVote of a leadership transfer.
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
}

/** The empty byte array, shared (never mutate it). */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Builds a message with zero values for every field not given. */
export function makeMessage(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  const m: Message = {
    type: fields.type,
    to: fields.to ?? NONE,
    from: fields.from ?? NONE,
    term: fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? [],
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? EMPTY_BYTES,
  };
  if (fields.snapshot !== undefined) m.snapshot = fields.snapshot;
  return m;
}

/** Context bytes marking the vote requests of a leadership transfer ("CampaignTransfer"). */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode('CampaignTransfer');

/** State that must be durable before any message of the same Ready is sent (Raft Figure 2). */
export interface HardState {
  /** Latest term this node has seen. */
  term: number;
  /** Candidate voted for in `term`, or NONE. */
  vote: NodeId;
  /** Highest index known committed (persisting it is an optimisation; it may lag). */
  commit: number;
}

/** Volatile role information, reported in Ready when it changes. Never persisted. */
export interface SoftState {
  /** Known leader of the current term, or NONE. */
  lead: NodeId;
  /** Role of this node. */
  raftState: StateType;
}

/** Roles of a Raft node. */
export const StateType = {
  Follower: 'follower',
  Candidate: 'candidate',
  Leader: 'leader',
  PreCandidate: 'preCandidate',
} as const;
/** Role of a Raft node. */
export type StateType = (typeof StateType)[keyof typeof StateType];

/** Membership: who votes and who only replicates. The two lists are disjoint and sorted. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Which log prefix a snapshot replaces, and the membership at that point. */
export interface SnapshotMetadata {
  /** Index of the last entry covered by the snapshot. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Membership as of `index`. */
  confState: ConfState;
}

/** A state machine snapshot. `data` is opaque to the core; the host chunks it on the wire. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/** Kinds of single-server membership changes. */
export const ConfChangeType = {
  /** Add a voter, or promote an existing learner to voter. */
  AddNode: 'addNode',
  /** Add a learner, or demote an existing voter to learner. */
  AddLearnerNode: 'addLearnerNode',
  /** Remove a voter or learner. */
  RemoveNode: 'removeNode',
} as const;
/** Kind of a single-server membership change. */
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** One single-server membership change, carried in a `confChange` entry. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque host data (e.g. the new node's address). */
  context: Uint8Array;
}

/** Outcome of a ReadIndex request: reads are linearizable once appliedIndex >= `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/** How the leader confirms it is still leader before answering a ReadIndex. */
export const ReadOnlyOption = {
  /** A heartbeat round acknowledged by a quorum (Raft thesis §6.4). Always safe. */
  Safe: 'safe',
  /**
   * Trust the leader lease that check-quorum maintains (thesis §6.4.1). Depends on bounded clock
   * drift between nodes; only allowed together with checkQuorum.
   */
  LeaseBased: 'leaseBased',
} as const;
/** How the leader confirms it is still leader before answering a ReadIndex. */
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

/**
 * Everything the host must do after some input. Obtain with `RawNode.ready()`, act, then call
 * `RawNode.advance(rd)`. The ordering contract (etcd's), which the host MUST obey:
 *
 *   1. Persist `hardState`, `entries` (appending; an entry at an existing index truncates the log
 *      from there) and `snapshot` to durable storage, fsyncing if `mustSync`.
 *   2. Only then send `messages` (a vote or an append ack must never outrun the disk).
 *   3. Install `snapshot` into the state machine (if present), then apply `committedEntries` in
 *      order (conf changes via `RawNode.applyConfChange`), and serve `readStates` once applied.
 *   4. Call `advance(rd)`.
 *
 * `committedEntries` may include entries that are in `entries` of the same Ready; step 1 makes them
 * durable before step 3 applies them.
 */
export interface Ready {
  /** Present when lead or role changed since the last Ready. Volatile; do not persist. */
  softState?: SoftState;
  /** Present when term, vote or commit changed since the last Ready. Persist before sending. */
  hardState?: HardState;
  /** New log entries to append to durable storage before sending messages. */
  entries: Entry[];
  /** Snapshot received from the leader, to persist and install. */
  snapshot?: Snapshot;
  /** Entries to apply to the state machine, in order; already committed. */
  committedEntries: Entry[];
  /** Outbound messages, to send only after the persistence in step 1. */
  messages: Message[];
  /** Completed ReadIndex requests from this node. */
  readStates: ReadState[];
  /** True when hardState term/vote or entries changed: the write must be fsynced. */
  mustSync: boolean;
  /**
   * True when `messages` may be sent before step 1's write completes (a leader whose term and
   * vote did not change); otherwise they go only after it.
   */
  sendBeforePersist: boolean;
}

/** Replication state of one peer as seen by the leader. */
export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  isLearner: boolean;
  recentActive: boolean;
  pendingSnapshot: number;
  inflight: number;
}

/** A snapshot of the node's state for diagnostics and tests. */
export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  appliedIndex: number;
  lastIndex: number;
  confState: ConfState;
  /** Only on the leader: per-peer replication progress. */
  progress: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
}

/** The source of randomness for election timeouts (SeededRandom in util/random.ts fits). */
export interface RaftRandom {
  /** Returns an integer in [0, n). */
  intBelow(n: number): number;
}

/** Configuration of one Raft node. Times are in ticks; the host decides how long a tick is. */
export interface RaftConfig {
  /** This node's id (> 0). */
  id: NodeId;
  /**
   * Ticks without hearing from a leader before a follower campaigns. The actual timeout is drawn
   * uniformly from [electionTimeoutTicks, 2*electionTimeoutTicks) at every role change (§5.2).
   */
  electionTimeoutTicks: number;
  /** Ticks between leader heartbeats. Must be < electionTimeoutTicks. */
  heartbeatTimeoutTicks: number;
  /** Index already applied to the state machine when restarting (entries after it are replayed). */
  appliedIndex?: number;
  /** Soft limit on the entry bytes in one MsgApp (at least one entry is always sent). */
  maxSizePerMsgBytes: number;
  /** Maximum number of MsgApp in flight to one follower in replicate state. */
  maxInflightMsgs: number;
  /** Soft limit on the bytes of committedEntries in one Ready (at least one entry). 0 = no limit. */
  maxCommittedSizePerReadyBytes?: number;
  /**
   * Leader-side backpressure: proposals are dropped (RAFT_PROPOSAL_DROPPED) while the payload bytes
   * of appended-but-unapplied entries exceed this. A proposal is always accepted when nothing is
   * outstanding, so one oversized entry still gets through. 0 or absent = no limit.
   */
  maxUncommittedEntriesSizeBytes?: number;
  /** Leader steps down when a quorum was not heard from in an election timeout; enables leases. */
  checkQuorum?: boolean;
  /** Run a pre-vote round before bumping the term (thesis §9.6). */
  preVote?: boolean;
  /**
   * How ReadIndex confirms leadership. Default Safe. LeaseBased requires checkQuorum: the leader
   * answers at once while it holds a lease (a quorum acknowledged a heartbeat it sent within the
   * last electionTimeoutTicks - leaseDriftTicks ticks), and falls back to Safe otherwise.
   */
  readOnlyOption?: ReadOnlyOption;
  /**
   * Ticks of clock drift (and timer lateness) a lease allows for: followers refuse votes for
   * electionTimeoutTicks of their own ticks after a heartbeat, the leader trusts them for this
   * many ticks less. Default 2; must be in [1, electionTimeoutTicks).
   */
  leaseDriftTicks?: number;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Seeded randomness for election timeouts (required: the core draws no randomness of its own). */
  random: RaftRandom;
}
