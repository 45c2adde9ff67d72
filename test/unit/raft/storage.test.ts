/**
 * Goal: MemoryStorage and RaftLog honour the storage contract the core relies on (etcd
 * storage_test.go / log_test.go): bounds and errors of term/entries, compaction, snapshots,
 * truncating appends, size-limited slices, and the unstable/stable hand-off.
 * Method: direct calls with small hand-built logs.
 */
import test from 'ava';
import { RaftLog } from '../../../src/raft/log.ts';
import {
  type Entry,
  EntryType,
  isRaftError,
  MemoryStorage,
  RaftErrorCode,
} from '../../../src/raft/index.ts';
import { ENTRY_OVERHEAD_BYTES } from '../../../src/raft/util.ts';

function ent(index: number, term: number, bytes = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(bytes) };
}

/** Storage with a snapshot at 3 (term 3) and entries 4..5 (terms 4, 5). */
function storage(): MemoryStorage {
  const s = new MemoryStorage({ voters: [1], learners: [] });
  s.applySnapshot({ metadata: { index: 3, term: 3, confState: { voters: [1], learners: [] } }, data: new Uint8Array() });
  s.append([ent(4, 4), ent(5, 5)]);
  return s;
}

test('MemoryStorage.term answers from the snapshot index to the last index, else throws', (t) => {
  const s = storage();
  t.is(s.term(3), 3);
  t.is(s.term(5), 5);
  t.true(isRaftError(t.throws(() => s.term(2)), RaftErrorCode.Compacted));
  t.true(isRaftError(t.throws(() => s.term(6)), RaftErrorCode.Unavailable));
  t.is(s.firstIndex(), 4);
  t.is(s.lastIndex(), 5);
});

test('MemoryStorage.entries respects bounds and the byte limit (always at least one entry)', (t) => {
  const s = storage();
  t.true(isRaftError(t.throws(() => s.entries(3, 5, Infinity)), RaftErrorCode.Compacted));
  t.deepEqual(s.entries(4, 6, Infinity).map((e) => e.index), [4, 5]);
  t.deepEqual(s.entries(4, 6, 0).map((e) => e.index), [4], 'limit 0 still returns one entry');
  t.deepEqual(s.entries(4, 6, 2 * ENTRY_OVERHEAD_BYTES).map((e) => e.index), [4, 5]);
});

test('MemoryStorage.append truncates a conflicting suffix and ignores compacted entries', (t) => {
  const s = storage();
  s.append([ent(2, 2), ent(3, 3), ent(4, 6)]);
  t.deepEqual(s.entries(4, s.lastIndex() + 1, Infinity).map((e) => [e.index, e.term]), [[4, 6]]);
  s.append([ent(5, 6), ent(6, 6)]);
  t.is(s.lastIndex(), 6);
  t.throws(() => s.append([ent(9, 6)]), undefined, 'a gap is a programmer error');
});

test('MemoryStorage.compact drops entries and keeps the term of the compaction point', (t) => {
  const s = storage();
  s.compact(4);
  t.is(s.firstIndex(), 5);
  t.is(s.term(4), 4);
  t.true(isRaftError(t.throws(() => s.compact(4)), RaftErrorCode.Compacted));
});

test('MemoryStorage.createSnapshot and applySnapshot refuse older snapshots', (t) => {
  const s = storage();
  const snap = s.createSnapshot(5, { voters: [1], learners: [] }, new Uint8Array([1]));
  t.is(snap.metadata.term, 5);
  t.true(isRaftError(t.throws(() => s.createSnapshot(4, { voters: [1], learners: [] }, new Uint8Array())), RaftErrorCode.SnapshotOutOfDate));
  t.true(
    isRaftError(
      t.throws(() => s.applySnapshot({ metadata: { index: 4, term: 4, confState: { voters: [1], learners: [] } }, data: new Uint8Array() })),
      RaftErrorCode.SnapshotOutOfDate,
    ),
  );
});

test('RaftLog: unstable entries override storage, stableTo hands them off, slices span both', (t) => {
  const s = storage();
  const log = new RaftLog(s, Infinity);
  t.is(log.committed, 3, 'a restarted log starts committed at the snapshot');
  log.append([ent(5, 6), ent(6, 6)]); // replaces storage's entry 5 (term 5)
  t.is(log.term(5), 6);
  t.deepEqual(log.slice(4, 7, Infinity).map((e) => [e.index, e.term]), [[4, 4], [5, 6], [6, 6]]);
  s.append(log.unstableEntries());
  log.stableTo(6, 6);
  t.deepEqual(log.unstableEntries(), []);
  t.is(log.lastIndex(), 6);
});

test('RaftLog.findConflictByTerm returns the last index whose term is <= the given term', (t) => {
  const s = storage();
  s.append([ent(6, 5), ent(7, 7), ent(8, 7)]);
  const log = new RaftLog(s, Infinity);
  t.deepEqual(log.findConflictByTerm(8, 6), [6, 5]);
  t.deepEqual(log.findConflictByTerm(8, 7), [8, 7]);
  t.deepEqual(log.findConflictByTerm(8, 2), [2, 0], 'below the snapshot the term is unknown (0)');
});

test('RaftLog.maybeAppend refuses to truncate committed entries (assert)', (t) => {
  const s = storage();
  const log = new RaftLog(s, Infinity);
  log.commitTo(5);
  t.throws(() => log.maybeAppend(3, 3, 5, [ent(4, 9)]));
});
