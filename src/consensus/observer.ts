/**
 * ConsensusObserver: what the Raft host reports for metrics, as plain callbacks (consensus/ may
 * not import metrics/; node/ connects the two). Every method is optional and called inline on the
 * host's own path, so each must be cheap and must not throw.
 */
export interface ConsensusObserver {
  /** A proposal made on this node was applied (ok) or failed (timeout, no leader, closed), after `seconds`. */
  proposalDone?(seconds: number, ok: boolean): void;
  /** This node learned of a new leader (0: none known). */
  leaderChanged?(lead: number): void;
  /** One Ready's entries and HardState were written, fsynced when `synced`, in `seconds`. */
  persisted?(seconds: number, synced: boolean): void;
  /** The log was compacted behind a snapshot point in `seconds`; the log file now holds `logBytes`. */
  compacted?(seconds: number, logBytes: number): void;
  /** A leader's snapshot of `bytes` was installed into the state machine in `seconds`. */
  snapshotInstalled?(seconds: number, bytes: number): void;
}
