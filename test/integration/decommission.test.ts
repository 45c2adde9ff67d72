/**
 * Goal: `ts3ctl decommission` takes a node out without losing a copy, and the workflow survives
 * the leader's death. On 4 nodes (R = 3): the node is unsafe to remove before its drain; the
 * drain starts, the leader is killed (kill -9) and restarted mid-way, and `ts3ctl decommission
 * --wait` follows the resumed workflow to its end with a progress line. Afterwards the node is
 * out of Raft and the ring, every chunk has 3 copies on the others, objects read back after its
 * data directory is deleted, and removing another node (3 left for R = 3) is refused with the
 * reason. Method: real processes (test/helpers/cluster.ts) and the real ts3ctl as a child
 * process; chunk files on disk are the truth; conditions are polled with deadlines.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { admin, chunkInventory, clusterStatus, eventually, startCluster, waitForLeader } from '../helpers/cluster.ts';
import { chunkIds, MEMBERSHIP_CHUNK_BYTES as CHUNK, sha, ts3ctl } from '../helpers/membership.ts';
import { s3Client } from '../helpers/server.ts';

const ENV = { TS3GW_CHUNK_SIZE_BYTES: String(CHUNK), TS3GW_INLINE_MAX_BYTES: '1024', TS3GW_MAINTENANCE_INTERVAL_MS: '300', TS3GW_GOSSIP_PERIOD_MS: '200', TS3GW_LOG_LEVEL: 'info' };
const WAIT_MS = 90_000;

test('decommission drains a node through a leader kill, then removes it; removing below R is refused', async (t) => {
  t.timeout(300_000);
  const cluster = await startCluster(4, ENV);
  try {
    const leader = await waitForLeader(cluster, [1, 2, 3, 4], 30_000);
    const endpoint = cluster.nodes.get(leader === 1 ? 2 : 1)!.server.url;
    const s3 = s3Client(cluster.nodes.get(1)!.server);
    await s3.send(new CreateBucketCommand({ Bucket: 'drain' }));
    // Wait until every node is in every ring, so node 4 holds a share of what is written next.
    await eventually(async () => ((await admin(endpoint, 'GET', '/nodes')).body as { nodes: Array<{ ringSharePercent: number }> }).nodes.every((n) => n.ringSharePercent > 0) || undefined, WAIT_MS, 'four nodes in the ring');
    const bodies = Array.from({ length: 6 }, () => randomBytes(6 * CHUNK + 11));
    for (const [i, body] of bodies.entries()) await s3.send(new PutObjectCommand({ Bucket: 'drain', Key: `k${i}`, Body: body }));
    const wanted = bodies.flatMap((b) => chunkIds(b));
    await eventually(async () => ((await chunkInventory(cluster.nodes.get(4)!.dataDir)).size > 0 ? true : undefined), WAIT_MS, 'node 4 holding chunks');

    const unsafe = await ts3ctl(endpoint, 'is-safe-to-remove', '4');
    t.is(unsafe.code, 1, unsafe.stdout + unsafe.stderr);
    t.regex(unsafe.stdout, /NOT safe to remove[\s\S]*still holds chunks/);

    // Start the drain, then kill the leader mid-way and bring it back.
    const begun = await ts3ctl(endpoint, 'decommission', '4');
    t.is(begun.code, 0, begun.stderr);
    t.regex(begun.stdout, /node 4: draining/);
    const victim = await waitForLeader(cluster, [1, 2, 3, 4]);
    // Mid-way: the drain waits out DRAIN_SETTLE_MS before it may even count, so it cannot be over.
    const midway = (await admin(endpoint, 'GET', '/decommission', 'id=4')).body as { state: string };
    t.is(midway.state, 'draining', 'the leader dies in the middle of the drain');
    await cluster.nodes.get(victim)!.server.kill();
    await cluster.restart(victim);

    const follow = cluster.nodes.get(victim === 1 ? 2 : 1)!.server.url;
    const waited = await ts3ctl(follow, 'decommission', '4', '--wait', '--timeout', '150');
    t.log(waited.stdout.trim());
    t.is(waited.code, 0, waited.stdout + waited.stderr);
    t.regex(waited.stdout, /node 4: removed/);
    t.regex(waited.stdout, /node 4 is removed from the cluster/);

    const status = await clusterStatus(follow);
    t.false([...status.voters, ...status.learners].includes(4), `node 4 out of Raft: ${JSON.stringify(status)}`);
    const remaining = [1, 2, 3];
    await eventually(
      async () => {
        const sets = await Promise.all(remaining.map((id) => chunkInventory(cluster.nodes.get(id)!.dataDir)));
        return wanted.every((c) => sets.filter((s) => s.has(c)).length === 3) ? true : undefined;
      },
      WAIT_MS,
      'three copies of every chunk on nodes 1-3',
    );
    // Node 4 can go, data and all.
    await cluster.nodes.get(4)!.server.kill();
    await rm(join(cluster.nodes.get(4)!.dataDir, 'chunks'), { recursive: true, force: true });
    for (const [i, body] of bodies.entries()) {
      const res = await s3Client(cluster.nodes.get(remaining[i % 3]!)!.server).send(new GetObjectCommand({ Bucket: 'drain', Key: `k${i}` }));
      t.is(sha(await res.Body!.transformToByteArray()), sha(body), `k${i} after node 4 is gone`);
    }
    const nodes = await ts3ctl(follow, 'nodes');
    t.is(nodes.code, 0, nodes.stderr);
    t.notRegex(nodes.stdout, /^4\*?\s/m, 'node 4 no longer listed');

    // Three nodes left for R = 3: refused, with the reason, and nothing changes.
    const refused = await ts3ctl(follow, 'decommission', '3');
    t.is(refused.code, 1);
    t.regex(refused.stderr, /leaves 2 node\(s\) to hold 3 copies/);
    const after = (await admin(follow, 'GET', '/decommission')).body as { decommissions: Array<{ nodeId: number }> };
    t.deepEqual(after.decommissions.map((d) => d.nodeId), [4], 'no decommission of node 3 recorded');
  } finally {
    await cluster.stop();
  }
});
