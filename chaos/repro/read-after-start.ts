/**
 * Reproduces a bug the chaos suite found (seed 42, 5 nodes): right after a cluster reports ready
 * (every node knows a leader), a GET of a chunked object just acknowledged through another node
 * can fail with 500 InternalError "chunk … has no readable copy", although 2–4 nodes hold the
 * chunk. The reading node's placement ring does not list its peers yet (its log shows "placement
 * ring rebuilt" only after the errors), so ClusterChunkStore.get asks nobody but itself.
 *
 * `node chaos/repro/read-after-start.ts [--source DIR] [--attempts N]`: a fresh 5-node cluster,
 * every node PUTs 8 objects of 44 KiB (one chunk each; the inline limit is 4 KiB) and each is
 * read back from every node at once; up to N fresh clusters (default 5) until a read fails. It is
 * a race: it showed in 2 of 7 fresh clusters on a busy 2-core machine. Exit 1 and one line
 * per failed read when the bug shows; 0 when every read was right.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalCluster, stopLocalCluster, waitUntil } from '../../cluster/local-cluster.ts';
import { bodyOf, s3Client, valueOfBody } from '../workload.ts';

const { values } = parseArgs({
  options: { source: { type: 'string' }, attempts: { type: 'string', default: '5' }, dir: { type: 'string', default: '.ts3gw-chaos/repro-read-after-start' } },
});

/** One fresh cluster; the reads that came back wrong. */
async function attempt(): Promise<{ reads: number; bad: string[] }> {
  rmSync(values.dir, { recursive: true, force: true });
  const { state } = await startLocalCluster({
    nodes: 5,
    dir: values.dir,
    net: 202,
    env: { TS3GW_RAFT_TICK_MS: '50', TS3GW_RAFT_ELECTION_TICKS: '20', TS3GW_INLINE_MAX_BYTES: '4096', TS3GW_CHUNK_SIZE_BYTES: '65536', TS3GW_LOG_LEVEL: 'info' },
    ...(values.source ? { source: values.source } : {}),
    readyTimeoutMs: 30_000,
  });
  const clients = state.nodes.map((n) => s3Client(n.s3Url, state.accessKey, state.secretKey));
  const bad: string[] = [];
  let reads = 0;
  try {
    await waitUntil(
      async () => {
        try {
          await clients[0]!.send(new CreateBucketCommand({ Bucket: 'chaos' }));
          return true;
        } catch (err) {
          return (err as Error).name === 'BucketAlreadyOwnedByYou';
        }
      },
      20_000,
      'the bucket',
      100,
    );
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (writer, wi) => {
        for (let i = 0; i < 8; i++) {
          const key = `k${wi}-${i}`;
          const value = `w${wi}.${i}.44835`;
          await writer.send(new PutObjectCommand({ Bucket: 'chaos', Key: key, Body: bodyOf(value) }));
          const acked = performance.now() - t0;
          await Promise.all(
            clients.map(async (reader, ri) => {
              reads++;
              const got = await reader.send(new GetObjectCommand({ Bucket: 'chaos', Key: key })).then(
                async (res) => valueOfBody(await res.Body!.transformToByteArray()),
                (err: { name?: string; $metadata?: { httpStatusCode?: number } }) => `${err.$metadata?.httpStatusCode} ${err.name}`,
              );
              if (got !== value) bad.push(`${acked.toFixed(0)} ms: ${key} acknowledged through node ${wi + 1}, GET through node ${ri + 1}: ${got}`);
            }),
          );
        }
      }),
    );
  } finally {
    for (const c of clients) c.destroy();
    await stopLocalCluster(state.dir);
  }
  return { reads, bad };
}

for (let i = 1; i <= Number(values.attempts); i++) {
  const { reads, bad } = await attempt();
  process.stdout.write(`attempt ${i}: ${reads} reads after acknowledged writes, ${bad.length} wrong\n${bad.map((b) => `  ${b}\n`).join('')}`);
  if (bad.length > 0) process.exit(1);
}
process.exit(0);
