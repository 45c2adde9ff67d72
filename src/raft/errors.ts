/**
 * Operating errors of the Raft core. Callers branch on `err.code` (stable), never on the message.
 */

/** Stable codes of RaftError. */
export const RaftErrorCode = {
  /**
   * A proposal (or conf change) was not appended: no known leader, a leadership transfer is in
   * progress, forwarding is disabled, this node was removed, or a conf change is still pending.
   * The command was NOT added to the log; the host may retry or report failure to its client.
   */
  ProposalDropped: 'RAFT_PROPOSAL_DROPPED',
  /** Storage: the requested index is older than the first retained entry (it was compacted). */
  Compacted: 'RAFT_COMPACTED',
  /** Storage: the requested index is beyond the last entry. */
  Unavailable: 'RAFT_UNAVAILABLE',
  /** Storage: a snapshot older than the current one was offered. */
  SnapshotOutOfDate: 'RAFT_SNAPSHOT_OUT_OF_DATE',
  /** Storage: the snapshot is being built; the leader retries later. */
  SnapshotTemporarilyUnavailable: 'RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE',
  /** RawNode.step was given a local-only message type. */
  StepLocalMsg: 'RAFT_STEP_LOCAL_MSG',
  /** RawNode.step was given a response from a peer that is not in the configuration. */
  StepPeerNotFound: 'RAFT_STEP_PEER_NOT_FOUND',
} as const;
/** Stable code of a RaftError. */
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

/** An operating error of the Raft core, with a stable `code`. */
export class RaftError extends Error {
  override name = 'RaftError';
  readonly code: RaftErrorCode;

  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Returns true when `err` is a RaftError-like value carrying `code`. */
export function isRaftError(err: unknown, code: RaftErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
