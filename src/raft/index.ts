/**
 * Public surface of the pure Raft core (etcd-io/raft's RawNode model). Hosts import from here.
 *
 * Quick start for a host (see raw-node.ts for the full Ready contract):
 *
 *   const storage = founding ? MemoryStorage.bootstrap({ voters: [1, 2, 3], learners: [] })
 *                            : new MemoryStorage();          // or the host's durable RaftStorage
 *   const node = new RawNode({ id, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 1,
 *     maxSizePerMsgBytes: 1 << 20, maxInflightMsgs: 256, checkQuorum: true, preVote: true,
 *     random: new SeededRandom(seed) }, storage);
 *   // every tick: node.tick(); on message: node.step(m); on command: node.propose(bytes)
 *   // then: while (node.hasReady()) { const rd = node.ready(); persist; send; apply; node.advance(rd) }
 *
 * Conventions the host must follow:
 * - Bootstrap: founding members start from a snapshot at index 1, term 1 holding the initial
 *   membership (MemoryStorage.bootstrap); a durable storage must do the same. Joining nodes start
 *   empty and are added with proposeConfChange (as learner first, then promoted).
 * - Conf changes are single-server and take effect when applied: decode with decodeConfChange and
 *   call applyConfChange before advance(). Node ids are never reused after removal.
 * - MsgSnap: stream `snapshot.data`, then call reportSnapshot(to, ok) — the leader sends nothing
 *   else to that peer until it hears the outcome or the follower acknowledges.
 * - Report unreachable peers with reportUnreachable(id) so pipelining falls back to probing.
 * - Proposals and local ReadIndex requests may throw RaftError RAFT_PROPOSAL_DROPPED (definitely
 *   not appended). A proposal that did not throw may still be lost on leader change: the host
 *   learns its fate only when its entry is applied, so commands carry a client request id that
 *   the state machine deduplicates.
 */
export { decodeConfChange, encodeConfChange, isValidNodeId } from './conf-change.ts';
export { isRaftError, RaftError, RaftErrorCode } from './errors.ts';
export { DEFAULT_LEASE_DRIFT_TICKS, validateConfig } from './raft.ts';
export { RawNode } from './raw-node.ts';
export { type InitialState, MemoryStorage, type RaftStorage } from './storage.ts';
export * from './types.ts';
export { entrySizeBytes, isEmptySnapshot } from './util.ts';
