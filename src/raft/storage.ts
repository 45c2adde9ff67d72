/**
 * The durable-log view the Raft core reads from (`RaftStorage`), and an in-memory implementation
 * (`MemoryStorage`) used by tests, the simulator and as the model for the host's durable one.
 *
 * Ownership: the core only READS storage. The host WRITES it while handling a Ready (append
 * entries, set HardState, apply a snapshot) and when compacting. Entries after the last snapshot
 * that have not yet been handed out in a Ready live in the core's "unstable" buffer, not here.
 */
import { assert } from '../util/assert.ts';
import { RaftError, RaftErrorCode } from './errors.ts';
import { type ConfState, type Entry, EntryType, EMPTY_BYTES, type HardState, type Snapshot } from './types.ts';
import { at, EMPTY_HARD_STATE, last, limitSize, normalizeConfState } from './util.ts';

/** Durable state needed to (re)start a node. */
export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

/**
 * Read-only view of the durable log. Indexes: `firstIndex()` is the first entry still stored
 * (snapshot index + 1); `lastIndex()` the last one; `term(firstIndex()-1)` must still answer (it is
 * the snapshot's term). Methods throw RaftError RAFT_COMPACTED / RAFT_UNAVAILABLE as documented.
 */
export interface RaftStorage {
  /** HardState and membership as of the last restart point. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at most `maxBytes` in total but at least one. Throws RAFT_COMPACTED when
   * lo <= snapshot index, RAFT_UNAVAILABLE when no entries are stored at all beyond the snapshot.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for i in [firstIndex()-1, lastIndex()]. Throws RAFT_COMPACTED / RAFT_UNAVAILABLE. */
  term(i: number): number;
  /** Index of the first stored entry (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last stored entry (snapshot index if none). */
  lastIndex(): number;
  /** The most recent snapshot. May throw RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE. */
  snapshot(): Snapshot;
}

/**
 * In-memory RaftStorage (etcd MemoryStorage). `ents[0]` is a dummy entry holding the snapshot's
 * index and term, so term(firstIndex()-1) answers without special cases:
 *
 *   ents:   [ dummy(snapIndex, snapTerm) | e(snapIndex+1) | ... | e(lastIndex) ]
 *   index:     firstIndex()-1              firstIndex()           lastIndex()
 */
export class MemoryStorage implements RaftStorage {
  #hardState: HardState = EMPTY_HARD_STATE;
  #snapshot: Snapshot;
  #ents: Entry[];

  /** Creates an empty storage, optionally with an initial membership (at index 0). */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.#snapshot = { metadata: { index: 0, term: 0, confState: normalizeConfState(confState) }, data: EMPTY_BYTES };
    this.#ents = [dummyEntry(0, 0)];
  }

  /**
   * Creates the storage of a founding member of a new cluster: a snapshot at index 1, term 1 holding
   * the initial membership, and HardState {term 1, commit 1}. Starting the log at 1 (not 0) means a
   * node that joins later with an empty log is sent that snapshot (the initial membership) instead
   * of replaying conf changes on top of an empty configuration (same trick as CockroachDB's
   * initial raft index).
   */
  static bootstrap(confState: ConfState, data: Uint8Array = EMPTY_BYTES): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot({ metadata: { index: 1, term: 1, confState: normalizeConfState(confState) }, data });
    s.setHardState({ term: 1, vote: 0, commit: 1 });
    return s;
  }

  initialState(): InitialState {
    return { hardState: { ...this.#hardState }, confState: normalizeConfState(this.#snapshot.metadata.confState) };
  }

  /** Records the HardState (the host calls this while handling a Ready). */
  setHardState(hs: HardState): void {
    assert(hs.term >= 0 && hs.commit >= 0, 'hard state fields must be non-negative');
    assert(hs.term >= this.#hardState.term, `hard state term went backwards ${this.#hardState.term} -> ${hs.term}`);
    this.#hardState = { ...hs };
  }

  /** Returns the current HardState (for tests and the simulator's disk model). */
  hardState(): HardState {
    return { ...this.#hardState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = at(this.#ents, 0).index;
    if (lo <= offset) throw new RaftError(RaftErrorCode.Compacted, `entries(${lo}) compacted (offset ${offset})`);
    assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
    assert(hi <= this.lastIndex() + 1, `entries: hi ${hi} beyond last index ${this.lastIndex()}`);
    if (this.#ents.length === 1) throw new RaftError(RaftErrorCode.Unavailable, 'no entries after the snapshot');
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = at(this.#ents, 0).index;
    if (i < offset) throw new RaftError(RaftErrorCode.Compacted, `term(${i}) compacted (offset ${offset})`);
    if (i - offset >= this.#ents.length) throw new RaftError(RaftErrorCode.Unavailable, `term(${i}) unavailable`);
    return at(this.#ents, i - offset).term;
  }

  lastIndex(): number {
    return at(this.#ents, 0).index + this.#ents.length - 1;
  }

  firstIndex(): number {
    return at(this.#ents, 0).index + 1;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** Replaces the whole log with a snapshot (received from the leader). */
  applySnapshot(snap: Snapshot): void {
    const cur = this.#snapshot.metadata.index;
    if (snap.metadata.index <= cur && cur !== 0) {
      throw new RaftError(RaftErrorCode.SnapshotOutOfDate, `snapshot ${snap.metadata.index} <= ${cur}`);
    }
    assert(snap.metadata.term > 0 || snap.metadata.index === 0, 'snapshot with index must have a term');
    this.#snapshot = snap;
    this.#ents = [dummyEntry(snap.metadata.index, snap.metadata.term)];
  }

  /**
   * Records a snapshot of the state machine at applied index `i` (does not drop entries; call
   * compact() for that). `confState` is the membership as of `i`.
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    const cur = this.#snapshot.metadata.index;
    if (i <= cur) throw new RaftError(RaftErrorCode.SnapshotOutOfDate, `snapshot ${i} <= ${cur}`);
    assert(i <= this.lastIndex(), `snapshot ${i} beyond last index ${this.lastIndex()}`);
    const offset = at(this.#ents, 0).index;
    this.#snapshot = {
      metadata: { index: i, term: at(this.#ents, i - offset).term, confState: normalizeConfState(confState) },
      data,
    };
    return this.#snapshot;
  }

  /** Drops entries up to and including `compactIndex` (which must be <= the applied index). */
  compact(compactIndex: number): void {
    const offset = at(this.#ents, 0).index;
    if (compactIndex <= offset) throw new RaftError(RaftErrorCode.Compacted, `compact(${compactIndex}) <= ${offset}`);
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} beyond last index ${this.lastIndex()}`);
    const i = compactIndex - offset;
    const kept = this.#ents.slice(i + 1);
    this.#ents = [dummyEntry(compactIndex, at(this.#ents, i).term), ...kept];
    assert(this.firstIndex() === compactIndex + 1, 'compact left a wrong first index');
  }

  /**
   * Appends entries, truncating any stored suffix they conflict with. Entries already covered by
   * the snapshot are ignored. The first new entry must be at most lastIndex()+1 (no gaps).
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const lastNew = last(entries).index;
    if (lastNew < first) return;
    let ents = entries;
    const head = at(ents, 0).index;
    if (first > head) ents = ents.slice(first - head);
    const offset = at(ents, 0).index - at(this.#ents, 0).index;
    assert(offset <= this.#ents.length, `missing log entry: last ${this.lastIndex()}, appending ${at(ents, 0).index}`);
    // In place: the array is never handed out (entries() and clone() copy), and rebuilding it
    // cost a copy of the whole uncompacted log (up to snapshotEveryEntries) on every persist.
    this.#ents.length = offset;
    for (const e of ents) this.#ents.push(e);
    assert(this.lastIndex() === lastNew, 'append left a wrong last index');
  }

  /** Returns a deep-enough copy (entries are immutable and shared). Used by the simulator's disk. */
  clone(): MemoryStorage {
    const c = new MemoryStorage();
    c.#hardState = { ...this.#hardState };
    c.#snapshot = this.#snapshot;
    c.#ents = [...this.#ents];
    return c;
  }
}

function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: EMPTY_BYTES };
}
