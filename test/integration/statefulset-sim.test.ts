/**
 * Goal: `helm install` of the chart's 3 replicas forms one 3-voter cluster with no manual step,
 * and a rolling restart (the StatefulSet controller's: highest ordinal first, one pod at a time,
 * each waited for on its readiness probe) keeps S3 serving with no lost acknowledged write.
 *
 * Method: test/helpers/statefulset.ts renders helm/ts3gw with a real helm and starts pods 0, 1
 * and 2 as the image's start command (`node src/main.ts`, read from the Dockerfile) with exactly
 * the environment the kubelet would give them (node id "ordinal", peers from the headless
 * Service's DNS names, the advertise URL, the Secret, the settings ConfigMap); each pod's DNS name
 * is a loopback address of its own. Values set only ports (free ones), faster Raft ticks and the
 * test's root credentials. A writer goes through the "Service" (the ready pods, round robin) the
 * whole time; every write it got a 200 for must be listed and readable afterwards from every pod.
 *
 * Then pod 1 loses its PVC (kill -9, data directory deleted) and starts again: it must take its
 * old place back by itself (TS3GW_REPLACE: removed and added again as node 2, promoted once caught
 * up) and be refilled with metadata and chunks.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { chunkInventory, clusterStatus, eventually } from '../helpers/cluster.ts';
import { s3Client, TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../helpers/server.ts';
import {
  createPod,
  podAddress,
  portFreeOn,
  probe,
  type RenderedStatefulSet,
  renderStatefulSet,
  type SimPod,
  startPod,
  stopPod,
} from '../helpers/statefulset.ts';

const test = anyTest as TestFn<{ sts: RenderedStatefulSet; pods: SimPod[] }>;

/** Upper bound of writes in the rolling-restart test (it writes as fast as the cluster acks). */
const WRITES_MAX = 3_000;
/** One S3 request's bound; a request still unanswered then counts as not acknowledged. */
const REQUEST_TIMEOUT_MS = 5_000;
const BUCKET = 'sts-sim';

test.before(async (t) => {
  const addresses = [0, 1, 2].map(podAddress);
  const s3Port = await portFreeOn(addresses);
  let raftPort = await portFreeOn(addresses);
  while (raftPort === s3Port) raftPort = await portFreeOn(addresses);
  const sts = await renderStatefulSet({
    namespace: 'sim',
    set: [
      `ports.s3=${s3Port}`,
      `ports.raft=${raftPort}`,
      'config.raftTickMs=50',
      // Repair refills a wiped pod within a pass or two instead of a minute.
      'config.maintenanceIntervalMs=500',
      'config.logLevel=warn',
      `auth.rootAccessKey=${TEST_ACCESS_KEY}`,
      `auth.rootSecretKey=${TEST_SECRET_KEY}`,
    ],
  });
  t.is(sts.replicas, 3);
  const pods = await Promise.all([0, 1, 2].map((i) => createPod(sts, i)));
  t.context = { sts, pods };
  // podManagementPolicy Parallel: all pods start at once.
  await Promise.all(pods.map((p) => startPod(sts, p)));
});

test.after.always(async (t) => {
  const { sts, pods } = t.context;
  await Promise.all((pods ?? []).map(async (p) => {
    if (p.proc && p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
    await stopPod(sts, p);
    await rm(p.dataDir, { recursive: true, force: true });
  }));
});

const readinessPath = (sts: RenderedStatefulSet) => ((sts.container['readinessProbe'] as { httpGet: { path: string } }).httpGet.path);
const waitReady = (sts: RenderedStatefulSet, pod: SimPod) =>
  eventually(async () => ((await probe(pod, readinessPath(sts))) ? true : undefined), 30_000, `pod ${pod.ordinal} ready`);
const client = (pod: SimPod): S3Client => s3Client(pod, { maxAttempts: 1 });
const timeout = () => ({ abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });

async function read(s3: S3Client, key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }), timeout());
  return res.Body!.transformToString();
}

async function listAll(s3: S3Client): Promise<Set<string>> {
  const keys = new Set<string>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }), timeout());
    for (const o of page.Contents ?? []) keys.add(o.Key!);
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return keys;
}

test.serial('the rendered StatefulSet forms one 3-voter cluster by itself, node id = ordinal + 1', async (t) => {
  const { sts, pods } = t.context;
  for (const pod of pods) {
    t.is(pod.env['TS3GW_NODE_ID'], 'ordinal', 'the id comes from the pod name');
    t.is(pod.env['TS3GW_POD_NAME'], `ts3gw-${pod.ordinal}`);
    t.is(pod.env['TS3GW_ADVERTISE_URL'], pod.url, 'the advertise URL is the pod\'s own address');
    await waitReady(sts, pod);
  }
  const statuses = await eventually(
    async () => {
      const all = await Promise.all(pods.map((p) => clusterStatus(p.url)));
      return new Set(all.map((s) => s.leader)).size === 1 && all[0]!.leader !== 0 ? all : undefined;
    },
    15_000,
    'one agreed leader',
  );
  for (const [i, s] of statuses.entries()) {
    t.is(s.nodeId, i + 1, `pod ${i} is node ${i + 1}`);
    t.deepEqual([...s.voters].sort(), [1, 2, 3], `pod ${i} sees 3 voters`);
    t.is(s.clusterId, statuses[0]!.clusterId, 'one cluster');
  }
  await client(pods[0]!).send(new CreateBucketCommand({ Bucket: BUCKET }), timeout());
  await client(pods[1]!).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'hello', Body: 'from pod 1' }), timeout());
  t.is(await read(client(pods[2]!), 'hello'), 'from pod 1');
});

test.serial('a rolling restart, one pod at a time waiting for ready, keeps serving with no lost acknowledged write', async (t) => {
  const { sts, pods } = t.context;
  // The client Service's endpoints: the ready pods. A terminating pod leaves them before SIGTERM.
  const endpoints = new Set(pods.map((p) => p.ordinal));
  const clients = pods.map(client);
  const acked = new Map<string, string>();
  let failures = 0;
  let stopWriting = false;
  const writer = (async () => {
    for (let n = 0; n < WRITES_MAX && !stopWriting; n++) {
      const ready = [...endpoints];
      const via = ready[n % ready.length]!;
      const key = `k${String(n).padStart(5, '0')}`;
      const body = `${key} written through pod ${via}`;
      try {
        await clients[via]!.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }), timeout());
        acked.set(key, body);
      } catch {
        // Not acknowledged: it may or may not exist afterwards; only acknowledged writes must.
        failures++;
      }
    }
  })();

  // RollingUpdate: from the highest ordinal down, the next only once the previous is ready.
  for (const pod of [...pods].reverse()) {
    const before = acked.size;
    endpoints.delete(pod.ordinal);
    // The client keeps its kept-alive connection to the pod: the node's drain closes it.
    const started = Date.now();
    const code = await stopPod(sts, pod);
    t.is(code, 0, `pod ${pod.ordinal} drains and exits 0 on SIGTERM:\n${pod.output.slice(-20).join('\n')}`);
    t.log(`pod ${pod.ordinal} stopped in ${Date.now() - started} ms`);
    await startPod(sts, pod);
    await waitReady(sts, pod);
    endpoints.add(pod.ordinal);
    // The Service kept answering while this pod was down and coming back.
    await eventually(async () => (acked.size > before ? true : undefined), 15_000, `writes acknowledged around pod ${pod.ordinal}'s restart`);
  }
  stopWriting = true;
  await writer;
  t.true(acked.size > 0);
  t.log(`${acked.size} acknowledged writes, ${failures} not acknowledged`);

  // Every acknowledged write is listed by every pod and readable through each.
  for (const [i, c] of clients.entries()) {
    const listed = await listAll(c);
    const missing = [...acked.keys()].filter((k) => !listed.has(k));
    t.deepEqual(missing, [], `pod ${i} lists every acknowledged key`);
  }
  let n = 0;
  for (const [key, body] of acked) t.is(await read(clients[n++ % clients.length]!, key), body, `read ${key}`);
  const statuses = await Promise.all(pods.map((p) => clusterStatus(p.url)));
  t.deepEqual(statuses.map((s) => s.nodeId), [1, 2, 3], 'each pod kept its node id across the restart');
  t.is(new Set(statuses.map((s) => s.clusterId)).size, 1);
});

test.serial('a pod whose PVC was lost rejoins under its id by itself and is refilled', async (t) => {
  const { sts, pods } = t.context;
  const big = randomBytes(300 * 1024);
  await client(pods[0]!).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'big', Body: big }), timeout());
  const pod = pods[1]!;
  await eventually(async () => ((await chunkInventory(pod.dataDir)).size > 0 ? true : undefined), 30_000, 'pod 1 holding the chunk');
  const before = await clusterStatus(pods[0]!.url);
  // The PVC is gone: kill -9, an empty volume in its place.
  pod.proc!.kill('SIGKILL');
  await new Promise((r) => pod.proc!.once('exit', r));
  await rm(pod.dataDir, { recursive: true, force: true });
  await mkdir(pod.dataDir);
  await startPod(sts, pod);
  await waitReady(sts, pod);
  t.true(pod.output.some((l) => l.includes("taking this node's place back")), 'it saw the cluster formed and asked for its place');
  const statuses = await eventually(
    async () => {
      const all = await Promise.all(pods.map((p) => clusterStatus(p.url)));
      return all.every((s) => [...s.voters].sort().join() === '1,2,3' && s.learners.length === 0 && s.leader !== 0) ? all : undefined;
    },
    60_000,
    'pod 1 a voter again on every pod',
  );
  t.is(statuses[1]!.nodeId, 2, 'same node id');
  t.is(statuses[1]!.clusterId, before.clusterId, 'same cluster');
  // Refilled: metadata through Raft, chunks through repair.
  t.is(await read(client(pod), 'hello'), 'from pod 1');
  await eventually(async () => ((await chunkInventory(pod.dataDir)).size > 0 ? true : undefined), 60_000, 'pod 1 refilled with chunks');
  const res = await client(pod).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'big' }), timeout());
  t.true(Buffer.from(await res.Body!.transformToByteArray()).equals(big), 'the big object reads back through the refilled pod');
});
