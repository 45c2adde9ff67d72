/**
 * Goal: ACLs and bucket policies are cluster state, and authorization reads them linearizably:
 * an object ACL, a bucket ACL or a bucket policy Deny acknowledged through one node decides the
 * very next request on every other node (each authorized request passes one read barrier before
 * it reads the bucket). Method: a real 3-node cluster of processes; the root key writes through
 * node 1 and 2, unsigned requests go to the others at once, with no waiting for replication;
 * for the policy rounds node 3's log writes are slowed (its fault file), so it applies every
 * change late, the case where a local bucket read would still see the old policy.
 */
import { CreateBucketCommand, DeleteBucketPolicyCommand, PutBucketAclCommand, PutBucketPolicyCommand, PutObjectAclCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startCluster, waitForLeader } from '../helpers/cluster.ts';
import { removeDir, s3Client } from '../helpers/server.ts';
import { RawS3 } from '../helpers/signer.ts';

test('an ACL set through one node decides anonymous access on the others', async (t) => {
  const faultDir = await mkdtemp(join(tmpdir(), 'ts3gw-acl-faults-'));
  const faultFile = (id: number) => join(faultDir, `node${id}.json`);
  const cluster = await startCluster(3, {}, (id) => ({ TS3GW_FAULTS_FILE: faultFile(id) }));
  const raws: RawS3[] = [];
  try {
    await waitForLeader(cluster);
    const url = (id: number) => cluster.nodes.get(id)!.server.url;
    const node1 = s3Client({ url: url(1) });
    const node2 = s3Client({ url: url(2) });
    const anon = [1, 2, 3].map((id) => new RawS3(url(id)));
    raws.push(...anon);
    const bucket = `acl-cluster-${process.pid}`;
    await node1.send(new CreateBucketCommand({ Bucket: bucket, ObjectOwnership: 'ObjectWriter' }));
    await node1.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'shared', ACL: 'public-read' }));
    for (const [i, raw] of anon.entries()) t.is((await raw.send('GET', `/${bucket}/k`)).text, 'shared', `node ${i + 1} serves the public object`);

    await node2.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', ACL: 'private' }));
    for (const [i, raw] of anon.entries()) t.is((await raw.send('GET', `/${bucket}/k`)).status, 403, `node ${i + 1} refuses it once private`);

    await node1.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read' }));
    for (const [i, raw] of anon.entries()) t.is((await raw.send('GET', `/${bucket}?list-type=2`)).status, 200, `node ${i + 1} lists at once`);

    // A Deny put through node 1 binds the next request through the others, without waiting,
    // even through node 3 whose slowed disk makes it apply each change late.
    await node1.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', ACL: 'public-read' }));
    await writeFile(faultFile(3), JSON.stringify({ diskDelayMs: 800 }));
    const deny = { Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` };
    for (let round = 1; round <= 3; round++) {
      await node1.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [deny] }) }));
      for (const id of [2, 3]) t.is((await anon[id - 1]!.send('GET', `/${bucket}/k`)).status, 403, `round ${round}: node ${id} enforces the Deny at once`);
      await node1.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
      for (const id of [2, 3]) t.is((await anon[id - 1]!.send('GET', `/${bucket}/k`)).text, 'shared', `round ${round}: node ${id} serves it again once the policy is gone`);
    }
  } finally {
    for (const raw of raws) await raw.close();
    await cluster.stop();
    await removeDir(faultDir);
  }
});
