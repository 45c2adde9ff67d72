/**
 * Goal: a node whose data directory was wiped is refused by its peers instead of silently
 * rejoining with an empty log (which could let it vote a stale leader in), and a node of another
 * cluster cannot talk to this one. Method: 3 real processes; wipe node 3's directory and restart
 * it on the same id and address; it must never learn a leader, while the others keep serving.
 */
import { rm } from 'node:fs/promises';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { clusterStatus, eventually, startCluster, waitForLeader } from '../helpers/cluster.ts';
import { s3Client } from '../helpers/server.ts';

test('a wiped node is refused by its peers; the cluster keeps serving', async (t) => {
  const cluster = await startCluster(3);
  try {
    await waitForLeader(cluster);
    await s3Client(cluster.nodes.get(1)!.server).send(new CreateBucketCommand({ Bucket: 'identity' }));
    const wiped = cluster.nodes.get(3)!;
    await wiped.server.kill();
    await rm(wiped.dataDir, { recursive: true, force: true });
    const restarted = await cluster.restart(3);
    // The survivors log the refusal as soon as the wiped node calls them.
    const refused = await eventually(
      async () => ([1, 2].some((id) => cluster.nodes.get(id)!.server.output.some((l) => l.includes('data directory was reset'))) ? true : undefined),
      10_000,
      'peers to refuse the wiped node',
    );
    t.true(refused);
    // It learned nothing of the cluster's log: its empty log never takes the leader's commits.
    const status = await clusterStatus(restarted.server.url);
    t.true(status.appliedIndex <= 1, `wiped node applied ${status.appliedIndex}`);
    t.true(status.commitIndex <= 1, `wiped node committed ${status.commitIndex}`);
    // The majority is unaffected.
    await s3Client(cluster.nodes.get(1)!.server).send(new PutObjectCommand({ Bucket: 'identity', Key: 'k', Body: 'v' }));
  } finally {
    await cluster.stop();
  }
});
