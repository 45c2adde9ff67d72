/**
 * DiskFaultHook is what the storage layer calls right before each durable write (a Raft log
 * append with O_DSYNC, a chunk file's fsync). The real node has none; the chaos suite's fault
 * mode (src/faults/) installs one that delays the call (a slow disk) or throws an EIO error (a
 * failing fsync), so the code paths that must not acknowledge after a failed sync are exercised
 * by real processes. The hook sits in util/ so chunks/ and consensus/ can take it without
 * importing the fault machinery.
 */
export interface DiskFaultHook {
  /** Resolves when the durable write of `what` may go ahead; rejects (code EIO) to fail it. */
  beforeSync(what: 'wal' | 'chunk'): Promise<void>;
}
