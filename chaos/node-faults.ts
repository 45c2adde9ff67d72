/**
 * Nemesis actions that act inside one node rather than on its process or its network:
 *
 *   - clock: the node's wall clock shifted and drifting, written to its fault file (the node's
 *     TS3GW_FAULTS_FILE, see src/faults/fault-control.ts; local clusters always set one);
 *   - disk: durable writes slowed down or failing with EIO (the same file);
 *   - chunk rot: chunk files on the node's disk flipped or deleted behind its back, which
 *     scrub and repair must find and mend from the other copies.
 *
 * The node reads its fault file every 100 ms, so a change is in force at most that long after
 * the file is written (a paused node picks it up when it resumes). Actions return a one-line
 * description, like those of chaos/faults.ts.
 */
import { readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ClusterState, nodeOf, readState } from '../cluster/local-cluster.ts';
import type { FaultState } from '../src/faults/fault-control.ts';
import type { SeededRandom } from '../src/util/random.ts';

/** How long until a running node has read a changed fault file (its poll is 100 ms). */
const FAULT_FILE_SETTLE_MS = 250;

/** The fault file of node `id`. */
export function faultFileOf(state: ClusterState, id: number): string {
  const path = nodeOf(state, id).env['TS3GW_FAULTS_FILE'];
  if (path === undefined) throw new Error(`node ${id} runs without a fault file (TS3GW_FAULTS_FILE): restart the cluster with this version`);
  return path;
}

/** Merges `patch` into node `id`'s fault file (fields at their no-fault value are dropped). */
async function writeFaults(dir: string, id: number, patch: Partial<FaultState>): Promise<Partial<FaultState>> {
  const state = await readState(dir);
  const path = faultFileOf(state, id);
  let current: Partial<FaultState> = {};
  try {
    current = JSON.parse(readFileSync(path, 'utf8')) as Partial<FaultState>;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
  const next: Partial<FaultState> = { ...current, ...patch };
  if (next.clockOffsetMs === 0) delete next.clockOffsetMs;
  if (next.clockRate === 1) delete next.clockRate;
  if (next.diskDelayMs === 0) delete next.diskDelayMs;
  if (next.fsyncFail === 'none') delete next.fsyncFail;
  // Whole-file replace: the node never reads a half-written file as JSON (it would keep the old faults anyway).
  writeFileSync(`${path}.tmp`, `${JSON.stringify(next)}\n`);
  renameSync(`${path}.tmp`, path);
  await new Promise((r) => setTimeout(r, FAULT_FILE_SETTLE_MS));
  return next;
}

/** Shifts node `id`'s wall clock by `offsetMs` and lets it run at `rate` (1: no drift). */
export async function skewClock(dir: string, id: number, offsetMs: number, rate = 1): Promise<string> {
  if (!Number.isFinite(offsetMs) || !Number.isFinite(rate) || rate <= 0) throw new Error(`clock: bad offset ${offsetMs} or rate ${rate}`);
  await writeFaults(dir, id, { clockOffsetMs: Math.round(offsetMs), clockRate: rate });
  return `clock of node ${id} ${offsetMs >= 0 ? '+' : ''}${(offsetMs / 1000).toFixed(1)} s${rate === 1 ? '' : `, rate ${rate}`}`;
}

/** Node `id`'s clock correct again. */
export async function fixClock(dir: string, id: number): Promise<string> {
  await writeFaults(dir, id, { clockOffsetMs: 0, clockRate: 1 });
  return `clock of node ${id} correct`;
}

/** Every durable write of node `id` (WAL appends, chunk fsyncs) waits `delayMs` first. */
export async function slowDisk(dir: string, id: number, delayMs: number): Promise<string> {
  await writeFaults(dir, id, { diskDelayMs: Math.round(delayMs) });
  return `disk of node ${id} slow (${Math.round(delayMs)} ms per sync)`;
}

/**
 * Durable writes of `what` on node `id` fail with EIO. For the WAL that crashes the node on its
 * next append (the raft host must not go on after a failed sync: fsyncgate); for chunks, puts to
 * the node fail and writers count the other copies.
 */
export async function failFsync(dir: string, id: number, what: 'chunk' | 'wal' | 'all'): Promise<string> {
  await writeFaults(dir, id, { fsyncFail: what });
  return `fsync of ${what} on node ${id} failing`;
}

/** Removes every disk fault of node `id`. */
export async function fixDisk(dir: string, id: number): Promise<string> {
  await writeFaults(dir, id, { diskDelayMs: 0, fsyncFail: 'none' });
  return `disk of node ${id} healthy`;
}

/** The chunk files on node `id`'s disk (content-addressed: chunks/<2 hex>/<id>). */
export function chunkFiles(state: ClusterState, id: number): string[] {
  const root = join(nodeOf(state, id).dataDir, 'chunks');
  const out: string[] = [];
  let shards: string[];
  try {
    shards = readdirSync(root);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return out;
    throw err;
  }
  for (const shard of shards.sort()) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue; // tmp/ and the like
    for (const f of readdirSync(join(root, shard)).sort()) if (/^[0-9a-f]{64}$/.test(f)) out.push(join(root, shard, f));
  }
  return out;
}

/**
 * Damages up to `count` chunk files of node `id`, chosen by `rng`: `flip` inverts one byte in
 * the middle (the size stays, only the hash can tell), `delete` removes the file.
 */
export async function rotChunks(dir: string, id: number, how: 'flip' | 'delete', count: number, rng: SeededRandom): Promise<string> {
  const state = await readState(dir);
  const files = chunkFiles(state, id);
  const chosen: string[] = [];
  for (let i = 0; i < count && files.length > 0; i++) chosen.push(files.splice(rng.intBelow(files.length), 1)[0]!);
  for (const f of chosen) {
    if (how === 'delete') {
      rmSync(f, { force: true });
      continue;
    }
    const bytes = readFileSync(f);
    if (bytes.length === 0) continue;
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    // Same size and (roughly) the same mtime: only a hash check can tell.
    const { mtime } = statSync(f);
    writeFileSync(f, bytes);
    utimesSync(f, mtime, mtime);
  }
  return `${how === 'flip' ? 'corrupted' : 'deleted'} ${chosen.length} chunk file(s) on node ${id}`;
}
