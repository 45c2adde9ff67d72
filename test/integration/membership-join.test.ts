/**
 * Goal: a cluster grows by itself. One node starts alone; two more start with only
 * `TS3GW_JOIN=<its Raft address>` and the cluster secret (no node id, no peer list): gossip finds
 * the member, the cluster allocates each an id, adds it as a learner, and the leader promotes
 * caught-up learners until there are 3 voters. Objects written before the joins end up with
 * R = 3 copies. A joiner with the wrong secret, or one claiming the id of a member with another
 * data directory (a wiped disk), is refused with a reason and changes nothing.
 * Method: real processes on loopback (test/helpers/server.ts), the truth read from the admin API
 * and from each node's chunk files; conditions are polled with deadlines, never slept on.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { admin, chunkInventory, clusterStatus, eventually, freePort } from '../helpers/cluster.ts';
import { chunkIds, MEMBERSHIP_CHUNK_BYTES as CHUNK, MEMBERSHIP_ENV, sha } from '../helpers/membership.ts';
import { removeDir, s3Client, startServer, type TestServer } from '../helpers/server.ts';

const ENV = { ...MEMBERSHIP_ENV, TS3GW_LOG_LEVEL: 'info' };
/** Generous: a condition on a loaded 2-core CI, not a performance claim. */
const WAIT_MS = 60_000;

const test = anyTest as TestFn<{ servers: TestServer[] }>;
test.before((t) => {
  t.context = { servers: [] };
});
test.after.always(async (t) => {
  for (const s of t.context.servers) {
    await s.kill();
    await removeDir(s.dataDir);
  }
});

test.serial('one node, then two joiners with only a seed and the secret: three voters, and earlier objects get three copies', async (t) => {
  const seedPort = await freePort();
  const first = await startServer({ env: { ...ENV, TS3GW_RAFT_PORT: String(seedPort) } });
  t.context.servers.push(first);
  const s3 = s3Client(first);
  await s3.send(new CreateBucketCommand({ Bucket: 'grow' }));
  const bodies = [randomBytes(5 * CHUNK + 7), randomBytes(3 * CHUNK)];
  for (const [i, body] of bodies.entries()) await s3.send(new PutObjectCommand({ Bucket: 'grow', Key: `before-${i}`, Body: body }));

  const seed = `127.0.0.1:${seedPort}`;
  const joiners = await Promise.all([1, 2].map(async () => startServer({ env: { ...ENV, TS3GW_JOIN: seed, TS3GW_RAFT_PORT: String(await freePort()) } })));
  t.context.servers.push(...joiners);
  const all = [first, ...joiners];

  const ids = await eventually(
    async () => {
      const statuses = await Promise.all(all.map((s) => clusterStatus(s.url)));
      const agreed = statuses.every((s) => s.voters.length === 3 && s.learners.length === 0 && s.leader !== 0 && s.leader === statuses[0]!.leader);
      return agreed ? statuses.map((s) => s.nodeId) : undefined;
    },
    WAIT_MS,
    'three voters agreed on by every node',
  );
  t.deepEqual([...ids].sort(), [1, 2, 3], 'the joiners were given ids 2 and 3');
  for (const s of joiners) t.true(s.output.some((l) => l.includes('admitted to the cluster as a learner')), 'the joiner says how it got in');

  // Every chunk of the objects written by the lone node reaches all three (R = 3).
  const wanted = bodies.flatMap((b) => chunkIds(b));
  await eventually(
    async () => {
      const sets = await Promise.all(all.map((s) => chunkInventory(s.dataDir)));
      return sets.every((set) => wanted.every((c) => set.has(c))) ? true : undefined;
    },
    WAIT_MS,
    'three copies of every chunk written before the joins',
  );
  for (const [i, body] of bodies.entries()) {
    const res = await s3Client(joiners[1]!).send(new GetObjectCommand({ Bucket: 'grow', Key: `before-${i}` }));
    t.is(sha(await res.Body!.transformToByteArray()), sha(body), `before-${i} read through a joiner`);
  }

  // The admin API shows every member, its role and gossip's view of it.
  const report = (await admin(first.url, 'GET', '/nodes')).body as { nodes: Array<{ nodeId: number; role: string; gossip: string; ringSharePercent: number }> };
  t.deepEqual(report.nodes.map((n) => [n.nodeId, n.role]), [[1, 'voter'], [2, 'voter'], [3, 'voter']]);
  t.true(report.nodes.filter((n) => n.nodeId !== 1).every((n) => n.gossip === 'alive'), JSON.stringify(report.nodes));
  const shares = report.nodes.reduce((sum, n) => sum + n.ringSharePercent, 0);
  t.true(Math.abs(shares - 100) < 0.1, `ring shares sum to 100%: ${shares}`);

  // A wrong secret: gossip never answers (its messages are authenticated by the secret), so the
  // join gives up with a reason and the process exits.
  const before = await clusterStatus(first.url);
  const wrong = startServer({ env: { ...ENV, TS3GW_JOIN: seed, TS3GW_CLUSTER_SECRET: 'another-cluster-secret-0123456789', TS3GW_JOIN_TIMEOUT_SECONDS: '3', TS3GW_RAFT_PORT: String(await freePort()) } });
  await t.throwsAsync(wrong, { message: /could not join .*cluster secret differs/s });
  t.true(first.output.some((l) => l.includes('gossip message refused: wrong cluster secret')), 'the seed logged the refusal');

  // A wiped disk claiming node 2's identity: refused by the cluster, nothing changes.
  const impostor = startServer({ env: { ...ENV, TS3GW_JOIN: seed, TS3GW_NODE_ID: '2', TS3GW_RAFT_PORT: String(await freePort()) } });
  await t.throwsAsync(impostor, { message: /node 2 is already a member with another data directory/ });
  const after = await clusterStatus(first.url);
  t.deepEqual([after.voters, after.learners], [before.voters, before.learners], 'membership unchanged by the refused joins');
});
