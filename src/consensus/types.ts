/**
 * The seam between the object layer and whatever orders metadata commands. On one node the
 * commands are applied locally (LocalConsensus); with peers, Raft orders them first. The object
 * layer sees only this interface.
 */
import type { MetaReader } from '../meta/level-meta-store.ts';
import type { ApplyResult, MetaOp } from '../meta/types.ts';

/** Orders metadata commands and gives linearizable reads of the resulting state. */
export interface Consensus {
  /**
   * Proposes one operation. Resolves with its deterministic apply result once the command is
   * durable (committed) and applied to the local store. Rejects with RAFT_* / CONSENSUS_* codes
   * when its fate is unknown or no quorum is reachable.
   */
  propose(op: MetaOp, stampMs: number): Promise<ApplyResult>;
  /**
   * Resolves once the local store reflects every command committed before this call, so a read
   * that follows sees every write acknowledged before it (ReadIndex).
   */
  readBarrier(): Promise<void>;
  /** The local state machine's read side; call readBarrier() first for a linearizable read. */
  readonly reader: MetaReader;
  close(): Promise<void>;
}

/** Consensus is closed or closing. */
export const CONSENSUS_ERR_CLOSED = 'CONSENSUS_ERR_CLOSED';

/** A proposal or read could not be completed in time; its outcome is unknown. */
export const CONSENSUS_ERR_TIMEOUT = 'CONSENSUS_ERR_TIMEOUT';
/** No leader is reachable: the node is in a minority or an election is running. */
export const CONSENSUS_ERR_NO_LEADER = 'CONSENSUS_ERR_NO_LEADER';
/** An encoded command from outside (the Propose RPC) that is not a valid command. */
export const CONSENSUS_ERR_BAD_COMMAND = 'CONSENSUS_ERR_BAD_COMMAND';
