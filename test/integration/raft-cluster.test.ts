/**
 * Goal: three real ts3gw processes agree on metadata through Raft over gRPC. A write through any
 * node is readable through every other node at once (ReadIndex); killing the leader with kill -9
 * during a write load loses no acknowledged write and the logs converge after it restarts;
 * membership grows (learner → voter) and shrinks through the operator API.
 * Method: real processes on loopback (test/helpers/cluster.ts), the AWS SDK at default settings,
 * small objects (stored inline in the replicated metadata; chunk placement is a later issue).
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import anyTest, { type TestFn } from 'ava';
import { PROPOSE_STREAM_IN_FLIGHT_MAX } from '../../src/rpc/grpc-transport.ts';
import { ProposeClient } from '../../src/rpc/propose-client.ts';
import { admin, clusterStatus, eventually, startCluster, TEST_CLUSTER_SECRET, type TestCluster, waitForLeader } from '../helpers/cluster.ts';
import { s3Client } from '../helpers/server.ts';

const test = anyTest as TestFn<{ cluster: TestCluster }>;

test.before(async (t) => {
  // Compact often so restarts and the joining node exercise snapshot install, not just log replay.
  t.context = { cluster: await startCluster(3, { TS3GW_RAFT_SNAPSHOT_ENTRIES: '25' }) };
});
test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

const client = (cluster: TestCluster, id: number): S3Client => s3Client(cluster.nodes.get(id)!.server, { maxAttempts: 1 });
const body = (key: string) => `value of ${key} `.repeat(8);

async function read(s3: S3Client, bucket: string, key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString();
}

test.serial('a write through one node is immediately readable and listable through the others', async (t) => {
  const { cluster } = t.context;
  await waitForLeader(cluster);
  await client(cluster, 1).send(new CreateBucketCommand({ Bucket: 'raft-rw' }));
  for (let i = 0; i < 10; i++) {
    const writer = client(cluster, (i % 3) + 1);
    const key = `k${i}`;
    await writer.send(new PutObjectCommand({ Bucket: 'raft-rw', Key: key, Body: body(key) }));
    for (const reader of [1, 2, 3]) t.is(await read(client(cluster, reader), 'raft-rw', key), body(key), `read ${key} via node ${reader}`);
  }
  for (const id of [1, 2, 3]) {
    const list = await client(cluster, id).send(new ListObjectsV2Command({ Bucket: 'raft-rw' }));
    t.is(list.KeyCount, 10, `list via node ${id}`);
  }
});

test.serial('the Propose RPC puts commands in the log through a follower; bad secrets and malformed commands change nothing', async (t) => {
  const { cluster } = t.context;
  const leader = await waitForLeader(cluster);
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const { clusterId } = await clusterStatus(cluster.nodes.get(leader)!.server.url);
  const address = `127.0.0.1:${cluster.nodes.get(follower)!.raftPort}`;
  const proposer = new ProposeClient({ address, clusterId, clusterSecret: TEST_CLUSTER_SECRET });
  const intruder = new ProposeClient({ address, clusterId, clusterSecret: 'not-the-secret-but-just-as-long-xxxxx' });
  try {
    const bucket = { name: 'raft-propose', createdMs: Date.now(), region: 'us-east-1', owner: 'root' };
    t.deepEqual(await proposer.propose({ type: 'CreateBucket', bucket }), { ok: true });
    const object = {
      sizeBytes: 5, etag: createHash('md5').update('hello').digest('hex'), lastModifiedMs: Date.now(), writeId: 'w1', owner: 'root',
      contentType: 'text/plain', headers: {}, userMeta: {}, data: { kind: 'inline' as const, base64: Buffer.from('hello').toString('base64') },
    };
    // The same request id twice: applied once, the second answer is the first one's.
    const first = await proposer.propose({ type: 'PutObject', bucket: 'raft-propose', key: 'k', object }, { requestId: 'propose-1' });
    const again = await proposer.propose({ type: 'DeleteObject', bucket: 'raft-propose', key: 'k' }, { requestId: 'propose-1' });
    t.deepEqual(again, first);
    for (const id of [1, 2, 3]) t.is(await read(client(cluster, id), 'raft-propose', 'k'), 'hello', `via node ${id}`);

    const refused = await t.throwsAsync(intruder.propose({ type: 'DeleteObject', bucket: 'raft-propose', key: 'k' }));
    t.is((refused as { code?: number }).code, grpc.status.UNAUTHENTICATED);
    const garbage = await t.throwsAsync(proposer.proposeEncoded(Buffer.from('{not json')));
    t.is((garbage as { code?: number }).code, grpc.status.INVALID_ARGUMENT);
    const noOp = await t.throwsAsync(proposer.proposeEncoded(Buffer.from(JSON.stringify({ v: 1, requestId: 'x', stampMs: 1 }))));
    t.is((noOp as { code?: number }).code, grpc.status.INVALID_ARGUMENT);
    // Well-formed envelope, malformed op: committed, answered META_ERR_BAD_COMMAND by every replica.
    const bad = await proposer.proposeEncoded(Buffer.from(JSON.stringify({ v: 1, requestId: 'propose-bad', stampMs: 1, op: { type: 'DeleteObjects', bucket: 'raft-propose', keys: [7] } })));
    t.like(bad, { ok: false, code: 'META_ERR_BAD_COMMAND' });
    for (const id of [1, 2, 3]) t.is(await read(client(cluster, id), 'raft-propose', 'k'), 'hello', `still there via node ${id}`);

    // ProposeStream: many commands in flight on one stream, answered by id; a bad one fails alone.
    const stream = proposer.openStream();
    try {
      const puts = Array.from({ length: 20 }, (_, i) =>
        stream.propose({ type: 'PutObject', bucket: 'raft-propose', key: `s${i}`, object: { ...object, writeId: `s${i}` } }),
      );
      const badOne = stream.proposeEncoded(Buffer.from('nope'));
      t.true((await Promise.all(puts)).every((r) => r.ok));
      const err = await t.throwsAsync(badOne);
      t.is((err as { code?: number }).code, grpc.status.INVALID_ARGUMENT);
      t.true((await stream.propose({ type: 'DeleteObject', bucket: 'raft-propose', key: 's0' })).ok, 'the stream still works');
      // More commands in flight than the node reads at once (PROPOSE_STREAM_IN_FLIGHT_MAX): the
      // stream is paused and resumed, and every command is answered.
      const bulk = Array.from({ length: PROPOSE_STREAM_IN_FLIGHT_MAX + 300 }, (_, i) =>
        stream.propose({ type: 'PutObject', bucket: 'raft-propose', key: `bulk/${i}`, object: { ...object, writeId: `b${i}` } }, { timeoutMs: 60_000 }),
      );
      t.true((await Promise.all(bulk)).every((r) => r.ok));
    } finally {
      stream.close();
    }
    const listed = await client(cluster, leader).send(new ListObjectsV2Command({ Bucket: 'raft-propose', Prefix: 's' }));
    t.is(listed.KeyCount, 19);
  } finally {
    proposer.close();
    intruder.close();
  }
});

test.serial('kill -9 of the leader during writes loses no acknowledged write; logs converge', async (t) => {
  const { cluster } = t.context;
  const leader = await waitForLeader(cluster);
  await client(cluster, 1).send(new CreateBucketCommand({ Bucket: 'raft-kill' }));
  const acked: string[] = [];
  const survivors = [1, 2, 3].filter((id) => id !== leader);
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; !stop && i < 400; i++) {
      const key = `w${w}-${i}`;
      // Writers use every node, the leader included, so some requests die with it.
      const via = [1, 2, 3][i % 3]!;
      try {
        await client(cluster, via).send(new PutObjectCommand({ Bucket: 'raft-kill', Key: key, Body: body(key) }));
        acked.push(key);
      } catch {
        // Not acknowledged: it may or may not exist afterwards, but must never be torn.
      }
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  await eventually(async () => (acked.length >= 40 ? true : undefined), 20_000, '40 acknowledged writes');
  await cluster.nodes.get(leader)!.server.kill();
  const ackedAtKill = acked.length;
  await eventually(async () => (acked.length >= ackedAtKill + 40 ? true : undefined), 30_000, 'writes to continue on the majority');
  stop = true;
  await Promise.all(writers);

  const newLeader = await waitForLeader(cluster, survivors);
  t.not(newLeader, leader);
  await cluster.restart(leader);
  await waitForLeader(cluster);
  for (const key of acked) {
    for (const id of [1, 2, 3]) t.is(await read(client(cluster, id), 'raft-kill', key), body(key), `${key} via node ${id}`);
  }
  const list = await client(cluster, leader).send(new ListObjectsV2Command({ Bucket: 'raft-kill', MaxKeys: 1000 }));
  for (const o of list.Contents ?? []) t.is(await read(client(cluster, leader), 'raft-kill', o.Key!), body(o.Key!), 'never torn');
  const statuses = await eventually(async () => {
    const all = await Promise.all([1, 2, 3].map((id) => clusterStatus(cluster.nodes.get(id)!.server.url)));
    return all.every((s) => s.appliedIndex === all[0]!.appliedIndex && s.commitIndex === all[0]!.commitIndex) ? all : undefined;
  }, 15_000, 'logs to converge');
  t.true(statuses[0]!.appliedIndex > ackedAtKill);
  t.log(`acknowledged ${acked.length} writes; leader ${leader} killed after ${ackedAtKill}; converged at index ${statuses[0]!.appliedIndex}`);
});

test.serial('a 4th node joins as a learner, is promoted to voter, and a node is removed', async (t) => {
  const { cluster } = t.context;
  const leader = await waitForLeader(cluster);
  const leaderUrl = cluster.nodes.get(leader)!.server.url;
  const { clusterId } = await clusterStatus(leaderUrl);
  await client(cluster, leader).send(new CreateBucketCommand({ Bucket: 'raft-members' }));
  await client(cluster, leader).send(new PutObjectCommand({ Bucket: 'raft-members', Key: 'before', Body: 'b' }));

  const joiner = await cluster.startJoiner(4, clusterId);
  const added = await admin(leaderUrl, 'POST', '/members', `address=127.0.0.1%3A${joiner.raftPort}&id=4&role=learner`);
  t.is(added.status, 200, JSON.stringify(added.body));
  t.deepEqual((added.body as { learners: number[] }).learners, [4]);
  // The learner catches up (from a snapshot or the log) and serves linearizable reads.
  t.is(await eventually(async () => read(client(cluster, 4), 'raft-members', 'before'), 15_000, 'learner to catch up'), 'b');

  const promoted = await admin(leaderUrl, 'POST', '/members', 'id=4&role=voter');
  t.is(promoted.status, 200, JSON.stringify(promoted.body));
  t.deepEqual((promoted.body as { voters: number[] }).voters, [1, 2, 3, 4]);

  const victim = [1, 2, 3].find((id) => id !== leader)!;
  const removed = await admin(leaderUrl, 'DELETE', '/members', `id=${victim}`);
  t.is(removed.status, 200, JSON.stringify(removed.body));
  t.false((removed.body as { voters: number[] }).voters.includes(victim));
  await cluster.nodes.get(victim)!.server.kill();

  await client(cluster, 4).send(new PutObjectCommand({ Bucket: 'raft-members', Key: 'after', Body: 'a' }));
  for (const id of [1, 2, 3, 4].filter((i) => i !== victim)) t.is(await read(client(cluster, id), 'raft-members', 'after'), 'a', `node ${id}`);
});
