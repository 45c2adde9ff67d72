/**
 * The Raft log as the core sees it: a durable prefix in RaftStorage plus an "unstable" suffix of
 * entries (and maybe a snapshot) not yet handed to the host in a Ready (etcd log.go + log_unstable.go).
 *
 *   storage:   [ snapshot | firstIndex ............ storage.lastIndex ]
 *   unstable:                          [ offset ........... lastIndex ]   (overrides storage from offset)
 *   applied <= committed <= lastIndex
 */
import { assert } from '../util/assert.ts';
import { isRaftError, RaftError, RaftErrorCode } from './errors.ts';
import type { RaftStorage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';
import { at, last, limitSize } from './util.ts';

/** Entries and snapshot received but not yet persisted by the host. */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  /** Index of entries[0] (valid even when entries is empty: the next index to append). */
  offset: number;

  constructor(offset: number) {
    assert(offset >= 1, `unstable offset ${offset} < 1`);
    this.offset = offset;
  }

  /** First index if a snapshot is pending (snapshot index + 1). */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /** Last index held here, if any. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  /** Term of entry i, if held here. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const lastIndex = this.maybeLastIndex();
    if (lastIndex === undefined || i > lastIndex) return undefined;
    return at(this.entries, i - this.offset).term;
  }

  /** Forgets entries up to i once the host persisted them (only if (i, t) still matches). */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    // If (i, t) no longer matches, a newer leader overwrote the entry after that Ready was made:
    // the newer entries are still unstable and must stay.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  /** Forgets the pending snapshot once the host persisted it. */
  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  /** Replaces everything with a snapshot. */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends entries, truncating any held suffix they replace. */
  truncateAndAppend(ents: readonly Entry[]): void {
    assert(ents.length > 0, 'truncateAndAppend with no entries');
    const after = at(ents, 0).index;
    if (after === this.offset + this.entries.length) {
      this.entries = [...this.entries, ...ents];
    } else if (after <= this.offset) {
      // Replaces the whole unstable suffix; storage entries >= after are overridden by offset.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = [...this.entries.slice(0, after - this.offset), ...ents];
    }
    assert(at(this.entries, 0).index === this.offset, 'unstable entries not aligned with offset');
  }

  /** Entries in [lo, hi), which must lie within the unstable range. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo <= hi, `unstable slice ${lo} > ${hi}`);
    assert(this.offset <= lo && hi <= this.offset + this.entries.length, `unstable slice [${lo},${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The log: storage + unstable, with the commit and applied cursors. */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index the host has applied (reported through advance()). */
  applied: number;
  /** Soft limit on the bytes returned by nextCommittedEnts. */
  readonly maxApplyingBytes: number;

  constructor(storage: RaftStorage, maxApplyingBytes: number) {
    assert(maxApplyingBytes > 0, 'maxApplyingBytes must be positive');
    this.storage = storage;
    this.maxApplyingBytes = maxApplyingBytes;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    assert(firstIndex >= 1 && lastIndex >= firstIndex - 1, `bad storage bounds [${firstIndex}, ${lastIndex}]`);
    this.unstable = new Unstable(lastIndex + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i, or undefined when i is compacted (< firstIndex-1) or beyond lastIndex. */
  term(i: number): number | undefined {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (err) {
      if (isRaftError(err, RaftErrorCode.Compacted) || isRaftError(err, RaftErrorCode.Unavailable)) return undefined;
      throw err;
    }
  }

  /** Term of the last entry (always known). */
  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, `term of last index ${this.lastIndex()} unknown`);
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** §5.4.1: is a log ending at (lasti, term) at least as up-to-date as ours? */
  isUpToDate(lasti: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && lasti >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries: if our entry at `index` has `logTerm`, append `ents` (truncating
   * conflicts) and advance commit to min(committed, last new index). Returns the last new index, or
   * undefined when the consistency check fails (§5.3).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after any conflicting suffix; returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = at(ents, 0).index - 1;
    assert(after >= this.committed, `append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry in `ents` that is new or conflicts with ours (0 if all match). Entries
   * must be contiguous.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`, with that term
   * (etcd findConflictByTerm). Every entry above the returned index has a term > `term`, so none
   * of them can match a leader probe at term `term`.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    assert(index <= this.lastIndex(), `findConflictByTerm index ${index} beyond last ${this.lastIndex()}`);
    for (let i = index; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined) return [i, 0];
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  /** Entries not yet handed to the host for persistence. */
  unstableEntries(): Entry[] {
    return [...this.unstable.entries];
  }

  /** Committed entries not yet applied, limited to maxApplyingBytes (at least one). */
  nextCommittedEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    return this.slice(off, this.committed + 1, this.maxApplyingBytes);
  }

  hasNextCommittedEnts(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** The latest snapshot: the pending one, or storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (this.committed >= toCommit) return; // never decrease commit
    assert(toCommit <= this.lastIndex(), `commit ${toCommit} beyond last index ${this.lastIndex()}`);
    this.committed = toCommit;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(i <= this.committed, `applied ${i} beyond committed ${this.committed}`);
    assert(i >= this.applied, `applied went backwards ${this.applied} -> ${i}`);
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** §5.4.2-aware commit: only advance to maxIndex if that entry is from `term`. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Replaces the log with a snapshot. */
  restore(s: Snapshot): void {
    assert(s.metadata.index > this.committed, `restore ${s.metadata.index} <= committed ${this.committed}`);
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries from i to the end, at most maxBytes (at least one). Throws RAFT_COMPACTED. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** Entries in [lo, hi), at most maxBytes (at least one). Throws RAFT_COMPACTED if lo < firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo <= hi, `slice lo ${lo} > hi ${hi}`);
    if (lo < this.firstIndex()) throw new RaftError(RaftErrorCode.Compacted, `slice(${lo}) compacted`);
    assert(hi <= this.lastIndex() + 1, `slice hi ${hi} beyond last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      // Storage already applied the size limit and stopped early: do not add unstable entries.
      if (stored.length < Math.min(hi, off) - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const unst = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? [...ents, ...unst] : unst;
    }
    const out = limitSize(ents, maxBytes);
    assert(out.length === 0 || at(out, 0).index === lo, 'slice returned misaligned entries');
    assert(out.length === 0 || last(out).index < hi, 'slice returned entries beyond hi');
    return out;
  }
}
