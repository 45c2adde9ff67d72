/**
 * Goal: membership changes online, under load, lose nothing. Three nodes formed by joining
 * grow to five (TS3GW_VOTERS=5: each joiner is added as a learner and promoted) while clients
 * write and read through every node; then a node is killed and its disk lost, and a new process
 * takes its place (TS3GW_REPLACE with its id). Every acknowledged write stays readable, the only
 * client errors allowed are 503s (bounded), and every chunk ends with R = 3 copies.
 * Method: real processes on loopback; a bounded writer/reader loop with one attempt per request;
 * chunk files on disk are the truth; conditions are polled with deadlines.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { chunkInventory, clusterStatus, eventually, FAST_RAFT_ENV, freePort, TEST_CLUSTER_SECRET } from '../helpers/cluster.ts';
import { removeDir, s3Client, startServer, type TestServer } from '../helpers/server.ts';

const CHUNK = 64 * 1024;
const ENV = {
  ...FAST_RAFT_ENV,
  TS3GW_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
  TS3GW_CHUNK_SIZE_BYTES: String(CHUNK),
  TS3GW_INLINE_MAX_BYTES: '1024',
  TS3GW_MAINTENANCE_INTERVAL_MS: '300',
  TS3GW_GC_GRACE_SECONDS: '3600',
  TS3GW_GOSSIP_PERIOD_MS: '200',
  TS3GW_GOSSIP_SUSPICION_MS: '1000',
  TS3GW_VOTERS: '5',
};
const WAIT_MS = 90_000;
/** Bounds of the load loop: it stops at whichever comes first. */
const OPS_MAX = 4_000;
const LOAD_MS_MAX = 240_000;

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

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const chunkIds = (body: Buffer) => Array.from({ length: Math.ceil(body.length / CHUNK) }, (_, i) => sha(body.subarray(i * CHUNK, (i + 1) * CHUNK)));

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    return err instanceof S3ServiceException ? (err.$metadata.httpStatusCode ?? 0) : 0;
  }
}

test.serial('3 joined nodes grow to 5 voters under load, then a killed node with a lost disk is replaced; nothing acknowledged is lost', async (t) => {
  t.timeout(420_000);
  const servers = t.context.servers;
  const seedPort = await freePort();
  const seed = `127.0.0.1:${seedPort}`;
  const start = async (extra: Record<string, string>) => {
    const s = await startServer({ env: { ...ENV, TS3GW_RAFT_PORT: String(await freePort()), ...extra } });
    servers.push(s);
    return s;
  };
  servers.push(await startServer({ env: { ...ENV, TS3GW_RAFT_PORT: String(seedPort) } }));
  await Promise.all([1, 2].map(() => start({ TS3GW_JOIN: seed })));
  const voters = (n: number) =>
    eventually(
      async () => {
        const live = servers.filter((s) => s.proc.exitCode === null && s.proc.signalCode === null);
        const all = await Promise.all(live.map((s) => clusterStatus(s.url)));
        return all.every((s) => s.voters.length === n && s.learners.length === 0 && s.leader !== 0 && s.leader === all[0]!.leader) ? all : undefined;
      },
      WAIT_MS,
      `${n} voters agreed on by every node`,
    );
  await voters(3);
  await s3Client(servers[0]!).send(new CreateBucketCommand({ Bucket: 'grow' }));

  // The load: writes and reads round-robin over the nodes serving at the time.
  const acked = new Map<string, string>();
  const statuses = new Map<number, number>();
  let serving = [...servers];
  let stop = false;
  const clients = new Map<TestServer, S3Client>();
  const clientOf = (s: TestServer) => clients.get(s) ?? clients.set(s, s3Client(s, { maxAttempts: 1 })).get(s)!;
  const loadStarted = Date.now();
  const load = (async () => {
    for (let n = 0; n < OPS_MAX && !stop && Date.now() - loadStarted < LOAD_MS_MAX; n++) {
      const via = serving[n % serving.length]!;
      const key = `k${n}`;
      // Every fifth object spans chunks; the rest are inline.
      const body = n % 5 === 0 ? randomBytes(2 * CHUNK + 100) : randomBytes(200);
      const code = await statusOf(clientOf(via).send(new PutObjectCommand({ Bucket: 'grow', Key: key, Body: body }), { abortSignal: AbortSignal.timeout(10_000) }));
      statuses.set(code, (statuses.get(code) ?? 0) + 1);
      if (code === 200) acked.set(key, sha(body));
      if (n % 3 === 0 && acked.size > 0) {
        const readKey = [...acked.keys()][n % acked.size]!;
        const reader = serving[(n + 1) % serving.length]!;
        try {
          const res = await clientOf(reader).send(new GetObjectCommand({ Bucket: 'grow', Key: readKey }), { abortSignal: AbortSignal.timeout(10_000) });
          const got = sha(await res.Body!.transformToByteArray());
          if (got !== acked.get(readKey)) statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
        } catch (err) {
          const c = err instanceof S3ServiceException ? (err.$metadata.httpStatusCode ?? 0) : 0;
          statuses.set(c, (statuses.get(c) ?? 0) + 1);
        }
      }
    }
  })();

  // Grow to five while the load runs.
  await eventually(async () => (acked.size >= 20 ? true : undefined), WAIT_MS, 'the load under way');
  const joiners = await Promise.all([1, 2].map(() => start({ TS3GW_JOIN: seed })));
  serving = [...servers];
  const five = await voters(5);
  t.deepEqual(five.map((s) => s.nodeId).sort(), [1, 2, 3, 4, 5]);
  const ackedAtFive = acked.size;
  await eventually(async () => (acked.size >= ackedAtFive + 20 ? true : undefined), WAIT_MS, 'writes after the growth');

  // Node 2 dies and its disk is lost; a new process takes its place under its id.
  const victim = servers[1]!;
  t.is((await clusterStatus(victim.url)).nodeId, 2);
  serving = servers.filter((s) => s !== victim);
  await victim.kill();
  await removeDir(victim.dataDir);
  const replacement = await start({ TS3GW_JOIN: seed, TS3GW_NODE_ID: '2', TS3GW_REPLACE: 'true', TS3GW_LOG_LEVEL: 'info' });
  t.true(replacement.output.some((l) => l.includes('"replaced":true')), `admitted in place of the old node 2: ${replacement.output.filter((l) => l.includes('admitted')).join('\n')}`);
  serving = servers.filter((s) => s !== victim);
  await voters(5);
  const ackedAtReplace = acked.size;
  await eventually(async () => (acked.size >= ackedAtReplace + 20 ? true : undefined), WAIT_MS, 'writes after the replacement');
  stop = true;
  await load;

  const failures = [...statuses].filter(([code]) => code !== 200);
  t.log(`load: ${acked.size} writes acknowledged; answers ${JSON.stringify(Object.fromEntries(statuses))}; joiners ${joiners.length}, one replaced`);
  t.false(statuses.has(-1), 'no read returned wrong bytes');
  for (const [code] of failures) t.is(code, 503, `only 503s are allowed during membership changes, saw ${code}`);
  const total = [...statuses.values()].reduce((a, b) => a + b, 0);
  t.true((statuses.get(503) ?? 0) <= total * 0.05, `503s stay bounded: ${statuses.get(503) ?? 0} of ${total}`);

  // Every acknowledged write reads back through the replacement; chunks have R = 3 copies.
  for (const [key, digest] of acked) {
    const res = await s3Client(replacement).send(new GetObjectCommand({ Bucket: 'grow', Key: key }));
    t.is(sha(await res.Body!.transformToByteArray()), digest, key);
  }
  const live = servers.filter((s) => s !== victim);
  const chunked = [...acked.keys()].filter((k) => Number(k.slice(1)) % 5 === 0);
  const wanted = new Set<string>();
  for (const key of chunked) {
    const res = await s3Client(live[0]!).send(new GetObjectCommand({ Bucket: 'grow', Key: key }));
    for (const c of chunkIds(Buffer.from(await res.Body!.transformToByteArray()))) wanted.add(c);
  }
  await eventually(
    async () => {
      const sets = await Promise.all(live.map((s) => chunkInventory(s.dataDir)));
      return [...wanted].every((c) => sets.filter((s) => s.has(c)).length >= 3) ? true : undefined;
    },
    WAIT_MS,
    'every chunk with 3 copies after the growth and the replacement',
  );
});
