/**
 * Goal: ACLs are cluster state: an ACL set through one node governs anonymous requests on every
 * other node — object ACLs at once (object reads pass a read barrier), bucket ACLs as soon as a
 * node applied them (authorization reads the local bucket record, as S3 ACL changes are
 * eventually consistent). Method: a real 3-node cluster of processes; the root key writes through
 * node 1 and 2, unsigned requests go to the others.
 */
import { CreateBucketCommand, PutBucketAclCommand, PutObjectAclCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { eventually, startCluster, waitForLeader } from '../helpers/cluster.ts';
import { s3Client } from '../helpers/server.ts';
import { RawS3 } from '../helpers/signer.ts';

test('an ACL set through one node decides anonymous access on the others', async (t) => {
  const cluster = await startCluster(3);
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
    for (const [i, raw] of anon.entries()) {
      const listed = await eventually(async () => ((await raw.send('GET', `/${bucket}?list-type=2`)).status === 200 ? true : undefined), 15_000, `node ${i + 1} lists`);
      t.true(listed);
    }
  } finally {
    for (const raw of raws) await raw.close();
    await cluster.stop();
  }
});
