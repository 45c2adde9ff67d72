/**
 * metaDigest: two real metadata stores that applied the same commands have equal digests at the
 * same applied index, also when one of them got its state as a snapshot; one more command, or a
 * different value, changes the digest. Method: real
 * classic-level stores in temp dirs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaCommand, MetaOp } from '../../../src/meta/types.ts';
import { metaDigest } from '../../../src/node/meta-digest.ts';

const cmd = (requestId: string, op: MetaOp): MetaCommand => ({ v: 1, requestId, stampMs: 1, op });
const bucket = (name: string, createdMs = 1) => cmd(`b-${name}-${createdMs}`, { type: 'CreateBucket', bucket: { name, createdMs, region: 'us-east-1', owner: 'o' } });

test('equal state, equal digest; any difference shows', async (t) => {
  const dirs = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), 'ts3gw-digest-'))));
  try {
    const [a, b, c] = await Promise.all(dirs.map((location) => openLevelMetaStore({ location, syncWrites: false })));
    const log = [bucket('one'), bucket('two')];
    for (const s of [a!, b!]) await s.applyBatch(log.map((command, i) => ({ index: i + 1, command })));
    await c!.applyBatch([bucket('one'), bucket('two', 2)].map((command, i) => ({ index: i + 1, command })));
    const [da, db, dc] = await Promise.all([a!, b!, c!].map((s) => metaDigest(s)));
    t.deepEqual(da, db);
    t.is(da!.appliedIndex, 2);
    t.true(da!.stable);
    t.not(dc!.digest, da!.digest, 'a different value at the same index');
    // A node that installed the state as a snapshot (it carries a local marker) digests the same.
    await c!.installSnapshot(a!.exportSnapshot());
    t.deepEqual(await metaDigest(c!), da);
    await b!.applyBatch([{ index: 3, command: bucket('three') }]);
    t.not((await metaDigest(b!)).digest, da!.digest, 'one more entry');
    await Promise.all([a!, b!, c!].map((s) => s.close()));
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
});
