/**
 * Small helpers shared by the Raft core: entry sizes, size-limited slices, checked indexing.
 */
import { assert } from '../util/assert.ts';
import type { ConfState, Entry, HardState, Snapshot } from './types.ts';

/** Approximate per-entry framing overhead (term, index, type, length) on the wire, in bytes. */
export const ENTRY_OVERHEAD_BYTES = 16;

/** Size of an entry for batching limits: payload plus a fixed framing overhead. */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Total size of entries for batching limits. */
export function entriesSizeBytes(ents: readonly Entry[]): number {
  let total = 0;
  for (const e of ents) total += entrySizeBytes(e);
  return total;
}

/**
 * Returns the longest prefix of `ents` whose total size is <= maxBytes, but always at least one
 * entry (so a single oversized entry still makes progress). maxBytes = Infinity means no limit.
 */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = entrySizeBytes(at(ents, 0));
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySizeBytes(at(ents, n));
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** Checked array read: asserts that `i` is in bounds (noUncheckedIndexedAccess-friendly). */
export function at<T>(arr: readonly T[], i: number): T {
  const v = arr[i];
  assert(v !== undefined, `index ${i} out of bounds (length ${arr.length})`);
  return v;
}

/** Returns the last element of a non-empty array. */
export function last<T>(arr: readonly T[]): T {
  return at(arr, arr.length - 1);
}

/** The all-zero HardState of a brand-new node. */
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });

/** Returns true when two HardStates are equal field by field. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Returns true for the zero HardState. */
export function isEmptyHardState(h: HardState): boolean {
  return hardStateEqual(h, EMPTY_HARD_STATE);
}

/** Returns true for the "no snapshot" value (index 0). */
export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/** Returns a sorted, de-duplicated copy of a ConfState. */
export function normalizeConfState(cs: ConfState): ConfState {
  return {
    voters: [...new Set(cs.voters)].sort((a, b) => a - b),
    learners: [...new Set(cs.learners)].sort((a, b) => a - b),
  };
}

/** Returns a short, deterministic hex rendering of bytes (map keys, debug output). */
export function bytesKey(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
