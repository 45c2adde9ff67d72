/**
 * Goal: the replacement workflow's state (src/membership/replace.ts) moves only forward and only
 * by the process that may move it. The meta store applies SetReplacement as a compare-and-set
 * (a step proposed from a stale view changes nothing); the new node's worker records `joined`
 * when the leader could not, and `done` only after a maintenance pass that began with it in the
 * ring, with what that pass fetched. Method: a real classic-level store in a temp dir; the worker
 * over fakes (no timers: pass() is called by hand).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ReplaceWorker, type ReplaceDeps } from '../../../src/membership/replace.ts';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaOp, ReplacementRecord } from '../../../src/meta/types.ts';

const waiting: ReplacementRecord = { nodeId: 2, state: 'waiting', startedMs: 1, updatedMs: 1, wasVoter: true };

test('SetReplacement is a compare-and-set on the node\'s current state, and the records are listed by id', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-replace-'));
  try {
    const s = await openLevelMetaStore({ location: dir, syncWrites: false });
    const cmd = (i: number, op: MetaOp) => ({ index: i, command: { v: 1 as const, requestId: `r${i}`, stampMs: 1, op } });
    const r = await s.applyBatch([
      cmd(1, { type: 'SetReplacement', nodeId: 2, record: waiting, expected: null }),
      cmd(2, { type: 'SetReplacement', nodeId: 2, record: waiting, expected: null }),
      cmd(3, { type: 'SetReplacement', nodeId: 2, record: { ...waiting, state: 'joined', incarnation: 'ab' }, expected: 'waiting' }),
      cmd(4, { type: 'SetReplacement', nodeId: 2, record: null, expected: 'waiting' }),
      cmd(5, { type: 'SetReplacement', nodeId: 5, record: { ...waiting, nodeId: 5 }, expected: null }),
      cmd(6, { type: 'SetReplacement', nodeId: 0, record: null, expected: null }),
    ]);
    t.deepEqual(
      r.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'META_ERR_PRECONDITION_FAILED', 'ok', 'META_ERR_PRECONDITION_FAILED', 'ok', 'META_ERR_BAD_COMMAND'],
    );
    t.deepEqual((await s.listReplacements()).map((x) => [x.nodeId, x.state]), [
      [2, 'joined'],
      [5, 'waiting'],
    ]);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A worker over a fake record book and fake maintenance counters. */
function worker(initial: ReplacementRecord | undefined, admittedAsReplacement: boolean) {
  let record = initial;
  const m = { lastPassStartMs: 0, ts3gw_repair_fetched_chunks_total: 10, ts3gw_repair_fetched_bytes_total: 1000, ts3gw_repair_unavailable_chunks_total: 0 };
  const clock = { now: 100 };
  const ring = { hasSelf: false };
  const deps: ReplaceDeps = {
    selfId: 2,
    incarnation: 'cafe',
    admittedAsReplacement,
    listReplacements: async () => (record ? [record] : []),
    propose: async (op) => {
      if (op.type !== 'SetReplacement') throw new Error('unexpected op');
      if ((record?.state ?? null) !== op.expected) return { ok: false, code: 'META_ERR_PRECONDITION_FAILED', message: 'moved' };
      record = op.record ?? undefined;
      return { ok: true };
    },
    maintenance: () => ({ ...m }),
    ringHasSelf: () => ring.hasSelf,
    nowMs: () => clock.now,
    logger: { info: () => {}, warn: () => {} },
  };
  return { w: new ReplaceWorker(deps, 1000), get: () => record, m, clock, ring };
}

test('the new node records joined when the leader did not, then done after a pass that began with it in the ring', async (t) => {
  const { w, get, m, clock, ring } = worker(waiting, true);
  await w.pass();
  t.like(get(), { state: 'joined', incarnation: 'cafe' });
  await w.pass();
  t.is(get()?.state, 'joined', 'not in its ring yet');
  ring.hasSelf = true;
  await w.pass();
  m.lastPassStartMs = 50;
  m.ts3gw_repair_fetched_chunks_total = 14;
  clock.now = 200;
  await w.pass();
  t.is(get()?.state, 'joined', 'the last pass began before the ring held this node');
  m.lastPassStartMs = 150;
  m.ts3gw_repair_fetched_chunks_total = 40;
  m.ts3gw_repair_fetched_bytes_total = 5000;
  await w.pass();
  t.like(get(), { state: 'done', refilledChunks: 30, refilledBytes: 4000, unavailableChunks: 0 });
});

test('a node that was not admitted as the replacement, or another incarnation, moves nothing', async (t) => {
  const notMe = worker(waiting, false);
  await notMe.w.pass();
  t.is(notMe.get()?.state, 'waiting');
  const other = worker({ ...waiting, state: 'joined', incarnation: 'beef' }, true);
  other.ring.hasSelf = true;
  await other.w.pass();
  other.m.lastPassStartMs = 1_000;
  other.clock.now = 2_000;
  await other.w.pass();
  t.is(other.get()?.state, 'joined', 'the joined record belongs to another data directory');
});
