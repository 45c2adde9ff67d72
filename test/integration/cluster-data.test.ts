/**
 * Goal: any node serves any object. Object bytes are chunks placed on R = 3 owners (W = 2); a
 * PUT through one node is readable through every other node, large (multi-chunk) objects
 * included, and stays readable and writable with one node killed. Multipart uploads span nodes
 * too: an upload created, fed, listed, completed or aborted through different nodes behaves as
 * through one, and the completed object reads back (whole, by range, by part) through any node.
 * Method: 3 real processes on loopback; the AWS SDK at default settings; bytes compared.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { admin, chunkInventory, eventually, startCluster, type TestCluster, waitForLeader } from '../helpers/cluster.ts';
import { s3Client, s3ErrorOf } from '../helpers/server.ts';

const test = anyTest as TestFn<{ cluster: TestCluster }>;

test.before(async (t) => {
  t.context = { cluster: await startCluster(3) };
  await waitForLeader(t.context.cluster);
});
test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

const client = (cluster: TestCluster, id: number): S3Client => s3Client(cluster.nodes.get(id)!.server);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
const md5Hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
/** The S3 multipart ETag: md5 of the concatenated binary part md5s, then "-<part count>". */
const mpEtag = (parts: Uint8Array[]) =>
  `"${createHash('md5').update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()))).digest('hex')}-${parts.length}"`;

async function get(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

test.serial('a multi-chunk object written through node 1 reads back through nodes 2 and 3, with 3 copies of every chunk', async (t) => {
  const { cluster } = t.context;
  await client(cluster, 1).send(new CreateBucketCommand({ Bucket: 'data' }));
  const small = randomBytes(1000);
  const large = randomBytes(9 * 1024 * 1024 + 77);
  // Node registration goes through the log; wait until every node's ring knows all three.
  await eventually(async () => {
    await client(cluster, 1).send(new PutObjectCommand({ Bucket: 'data', Key: 'probe', Body: randomBytes(100_000) }));
    const counts = await Promise.all([1, 2, 3].map(async (id) => (await chunkInventory(cluster.nodes.get(id)!.dataDir)).size));
    return counts.every((c) => c > 0) ? true : undefined;
  }, 15_000, 'chunks to reach every node');
  await client(cluster, 1).send(new PutObjectCommand({ Bucket: 'data', Key: 'small', Body: small }));
  await client(cluster, 1).send(new PutObjectCommand({ Bucket: 'data', Key: 'large', Body: large }));
  for (const id of [1, 2, 3]) {
    t.is(sha(await get(client(cluster, id), 'data', 'small')), sha(small), `small via ${id}`);
    t.is(sha(await get(client(cluster, id), 'data', 'large')), sha(large), `large via ${id}`);
  }
  // R = 3 on 3 nodes: every chunk of the large object lives on every node (W = 2 acks, the third
  // copy completes in the background). Chunks are 4 MiB pieces named by their sha256.
  const ids = [0, 1, 2].map((i) => sha(large.subarray(i * 4 * 1024 * 1024, (i + 1) * 4 * 1024 * 1024)));
  await eventually(async () => {
    const sets = await Promise.all([1, 2, 3].map((id) => chunkInventory(cluster.nodes.get(id)!.dataDir)));
    return sets.every((s) => ids.every((c) => s.has(c))) ? true : undefined;
  }, 10_000, 'three copies of every chunk');
  // The copies went over the chunk wire (node 1 sent the bytes to its peers), never the HTTP fallback.
  const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
  const m1 = await (await fetch(`${cluster.nodes.get(1)!.server.url}/metrics`)).text();
  t.true(metric(m1, 'ts3gw_chunk_wire_client_sent_bytes_total') >= 2 * large.length, 'node 1 sent two copies of the large object');
  t.is(metric(m1, 'ts3gw_chunk_wire_http_fallbacks_total'), 0);
  t.is(metric(m1, 'ts3gw_chunk_wire_client_failures_total'), 0);
});

// Runs before the leader is killed, so all three nodes are up.
test.serial('a multipart object uploaded through node 1 reads back through nodes 2 and 3: whole, by range across a part boundary, by part number, and listed', async (t) => {
  const { cluster } = t.context;
  const s3 = client(cluster, 1);
  const key = 'mp/object.bin';
  // Three 5 MiB parts and a small last one: part boundaries (5, 10, 15 MiB) fall inside 4 MiB chunks.
  const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(123_457)];
  const data = Buffer.concat(parts);
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key }));
  t.truthy(UploadId);
  const etags: string[] = [];
  for (const [i, body] of parts.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: i + 1, Body: body }));
    t.is(r.ETag, `"${md5Hex(body)}"`, `part ${i + 1} ETag`);
    etags.push(r.ETag!);
  }
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'data',
      Key: key,
      UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );
  t.is(done.ETag, mpEtag(parts));
  t.true(done.ETag!.endsWith('-4"'));
  for (const id of [2, 3]) {
    const other = client(cluster, id);
    const head = await other.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
    t.is(head.ContentLength, data.length, `HeadObject ContentLength via ${id}`);
    t.is(head.ETag, mpEtag(parts), `HeadObject ETag via ${id}`);
    t.is(sha(await get(other, 'data', key)), sha(data), `whole body via ${id}`);
    // 5 MiB - 1000 .. 5 MiB + 999 straddles the end of part 1 and the start of part 2.
    const [from, to] = [5 * MiB - 1000, 5 * MiB + 999];
    const ranged = await other.send(new GetObjectCommand({ Bucket: 'data', Key: key, Range: `bytes=${from}-${to}` }));
    t.is(ranged.ContentRange, `bytes ${from}-${to}/${data.length}`, `range via ${id}`);
    t.true(Buffer.from(await ranged.Body!.transformToByteArray()).equals(data.subarray(from, to + 1)), `range bytes via ${id}`);
    const p2 = await other.send(new GetObjectCommand({ Bucket: 'data', Key: key, PartNumber: 2 }));
    t.is(p2.PartsCount, 4, `PartsCount via ${id}`);
    t.is(p2.ContentRange, `bytes ${5 * MiB}-${10 * MiB - 1}/${data.length}`, `part 2 range via ${id}`);
    t.true(Buffer.from(await p2.Body!.transformToByteArray()).equals(parts[1]!), `part 2 bytes via ${id}`);
    const listed = await other.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'mp/' }));
    t.deepEqual(listed.Contents?.map((c) => [c.Key, c.Size, c.ETag]), [[key, data.length, mpEtag(parts)]], `listing via ${id}`);
  }
  // The completed upload is gone from every node's upload listing.
  t.is((await client(cluster, 3).send(new ListMultipartUploadsCommand({ Bucket: 'data' }))).Uploads, undefined);
});

test.serial('an in-progress upload created through node 3 and fed through node 1 is listed through node 2, and gone everywhere once aborted through node 3', async (t) => {
  const { cluster } = t.context;
  const key = 'mp/pending.bin';
  const { UploadId } = await client(cluster, 3).send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key }));
  t.truthy(UploadId);
  const body = randomBytes(5 * MiB + 11);
  const part = await client(cluster, 1).send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: 1, Body: body }));
  t.is(part.ETag, `"${md5Hex(body)}"`);
  const s3b = client(cluster, 2);
  const parts = await s3b.send(new ListPartsCommand({ Bucket: 'data', Key: key, UploadId }));
  t.deepEqual(parts.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag]), [[1, body.length, part.ETag]]);
  t.false(parts.IsTruncated);
  const uploads = await s3b.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
  t.deepEqual(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [[key, UploadId]]);
  await client(cluster, 3).send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: key, UploadId }));
  t.is((await client(cluster, 1).send(new ListMultipartUploadsCommand({ Bucket: 'data' }))).Uploads, undefined);
  t.deepEqual(await s3ErrorOf(s3b.send(new ListPartsCommand({ Bucket: 'data', Key: key, UploadId }))), { name: 'NoSuchUpload', status: 404 });
  // An aborted upload never becomes an object.
  t.deepEqual(await s3ErrorOf(s3b.send(new HeadObjectCommand({ Bucket: 'data', Key: key }))), { name: 'NotFound', status: 404 });
});

test.serial('with the leader killed, objects stay readable and writable through the others', async (t) => {
  const { cluster } = t.context;
  const victim = await waitForLeader(cluster);
  const [a, b] = [1, 2, 3].filter((id) => id !== victim) as [number, number];
  const before = randomBytes(5 * 1024 * 1024);
  await client(cluster, b).send(new PutObjectCommand({ Bucket: 'data', Key: 'before-kill', Body: before }));
  await cluster.nodes.get(victim)!.server.kill();
  // No waiting for the election: a write that reaches the survivors before they notice the
  // leader is gone must still succeed (its proposal is forwarded again to the new leader).
  const after = randomBytes(6 * 1024 * 1024);
  await client(cluster, a).send(new PutObjectCommand({ Bucket: 'data', Key: 'after-kill', Body: after }));
  for (const id of [a, b]) {
    t.is(sha(await get(client(cluster, id), 'data', 'before-kill')), sha(before), `before-kill via ${id}`);
    t.is(sha(await get(client(cluster, id), 'data', 'after-kill')), sha(after), `after-kill via ${id}`);
    t.is((await get(client(cluster, id), 'data', 'large')).length, 9 * 1024 * 1024 + 77);
  }
  await cluster.restart(victim);
  await waitForLeader(cluster);
  // The restarted node catches up on metadata and serves chunks it lacks from its peers.
  t.is(sha(await get(client(cluster, victim), 'data', 'after-kill')), sha(after));
});

test.serial('replication settings live in the log: R and W changed through one node apply on every node', async (t) => {
  const { cluster } = t.context;
  const leaderUrl = cluster.nodes.get(await waitForLeader(cluster))!.server.url;
  t.deepEqual((await admin(leaderUrl, 'GET', '/replication')).body, { replicationFactor: 3, writeQuorum: 2 });
  t.is((await admin(leaderUrl, 'PUT', '/replication', 'r=2&w=1')).status, 200);
  t.is((await admin(leaderUrl, 'PUT', '/replication', 'r=2&w=3')).status, 400);
  for (const id of [1, 2, 3]) {
    t.deepEqual((await admin(cluster.nodes.get(id)!.server.url, 'GET', '/replication')).body, { replicationFactor: 2, writeQuorum: 1 }, `node ${id}`);
  }
  t.is((await admin(leaderUrl, 'PUT', '/replication', 'r=3&w=2')).status, 200);
});
