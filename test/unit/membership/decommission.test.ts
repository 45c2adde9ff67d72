/**
 * Goal: a draining node reports the size of its drain early and truthfully, and declares itself
 * drained only after the settle time; ts3ctl's progress between reports comes from the node's
 * live counters. Method: DecommissionWorker over fakes (pass() called by hand, a fake clock and
 * fake maintenance counters); withLiveProgress and progressLine on plain records.
 */
import test from 'ava';
import { withLiveProgress, progressLine } from '../../../src/cli/decommission.ts';
import { EtaEstimator } from '../../../src/cli/format.ts';
import { DecommissionWorker, DRAIN_SETTLE_MS, type DecommissionDeps } from '../../../src/membership/decommission.ts';
import type { DecommissionRecord } from '../../../src/meta/types.ts';

function draining() {
  let record: DecommissionRecord | undefined = { nodeId: 4, state: 'draining', startedMs: 0, updatedMs: 0 };
  const clock = { now: 1_000 };
  const m = { lastPassStartMs: 0, ts3gw_rebalance_misplaced_chunks: 0, ts3gw_rebalance_misplaced_bytes: 0, ts3gw_rebalance_dropped_chunks_total: 7, ts3gw_rebalance_dropped_bytes_total: 700 };
  const deps: DecommissionDeps = {
    selfId: 4,
    status: () => ({ role: 'follower', confState: { voters: [1, 2, 3, 4], learners: [] }, progress: new Map() }),
    listDecommissions: async () => (record ? [record] : []),
    propose: async (op) => {
      if (op.type !== 'SetDecommission') throw new Error('unexpected op');
      if ((record?.state ?? null) !== op.expected) return { ok: false, code: 'META_ERR_PRECONDITION_FAILED', message: 'moved' };
      record = op.record ?? undefined;
      return { ok: true };
    },
    removeNode: async () => {},
    transferLeadership: () => {},
    maintenance: () => ({ ...m }),
    ringHasSelf: () => false,
    nowMs: () => clock.now,
    logger: { info: () => {}, warn: () => {} },
  };
  return { w: new DecommissionWorker(deps, 1_000), get: () => record!, clock, m };
}

test('the first pass with the new ring reports what is left and what moved; drained only after the settle time', async (t) => {
  const { w, get, clock, m } = draining();
  await w.pass();
  t.is(get().remainingChunks, undefined, 'no pass began with the new ring yet');
  // A pass that began after the ring left: it moved 30 chunks (3000 bytes), 10 are left.
  m.lastPassStartMs = 1_500;
  m.ts3gw_rebalance_dropped_chunks_total = 37;
  m.ts3gw_rebalance_dropped_bytes_total = 3_700;
  m.ts3gw_rebalance_misplaced_chunks = 10;
  m.ts3gw_rebalance_misplaced_bytes = 1_000;
  await w.pass();
  t.like(get(), { state: 'draining', remainingChunks: 10, remainingBytes: 1_000, totalChunks: 40, totalBytes: 4_000, droppedChunksAtReport: 37, droppedBytesAtReport: 3_700 });
  // Nothing left, but the pass began within the settle time: still draining.
  m.lastPassStartMs = 2_000;
  m.ts3gw_rebalance_dropped_chunks_total = 47;
  m.ts3gw_rebalance_dropped_bytes_total = 4_700;
  m.ts3gw_rebalance_misplaced_chunks = 0;
  m.ts3gw_rebalance_misplaced_bytes = 0;
  await w.pass();
  t.like(get(), { state: 'draining', remainingChunks: 0, totalChunks: 40 });
  clock.now = 1_000 + DRAIN_SETTLE_MS + 1_000;
  m.lastPassStartMs = 1_000 + DRAIN_SETTLE_MS + 500;
  await w.pass();
  t.like(get(), { state: 'drained', remainingChunks: 0, totalChunks: 40, totalBytes: 4_000 });
});

test('ts3ctl shows moves within a pass from the draining node\'s counters, never below zero', (t) => {
  const record: DecommissionRecord = { nodeId: 4, state: 'draining', startedMs: 0, updatedMs: 0, remainingChunks: 10, remainingBytes: 1_000, totalChunks: 40, totalBytes: 4_000, droppedChunksAtReport: 37, droppedBytesAtReport: 3_700 };
  const live = withLiveProgress(record, { ts3gw_rebalance_dropped_chunks_total: 41, ts3gw_rebalance_dropped_bytes_total: 4_100 });
  t.like(live, { remainingChunks: 6, remainingBytes: 600 });
  t.regex(progressLine(live, new EtaEstimator()), /node 4: draining .* 85% .*3\.3 KiB \/ 3\.9 KiB {2}34\/40 chunks/);
  t.like(withLiveProgress(record, { ts3gw_rebalance_dropped_chunks_total: 2, ts3gw_rebalance_dropped_bytes_total: 200 }), { remainingChunks: 10, remainingBytes: 1_000 }, 'a restarted node\'s counters say nothing');
  t.like(withLiveProgress(record, { ts3gw_rebalance_dropped_chunks_total: 99, ts3gw_rebalance_dropped_bytes_total: 9_900 }), { remainingChunks: 0, remainingBytes: 0 });
  t.is(withLiveProgress(record, undefined), record, 'the node does not answer: the record as it is');
});
