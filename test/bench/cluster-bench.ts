/**
 * `npm run bench:cluster`: a single ts3gw node against a 3-node ts3gw cluster (R=3, W=2, the
 * default) on this machine, and chunk transfer between nodes against plain loopback TCP.
 *
 *   s3      4 KiB PUT/GET ops/s at c=16, c=64; 64 MiB PUT/GET MiB/s at c=1, c=4. Single node and
 *           cluster alternate first/second per row; the cluster's requests go round-robin to its
 *           three nodes, as a load balancer would. Rows, warm-up, bounds and verification are the
 *           ones of `npm run bench` (test/bench/s3-bench.ts), imported from there.
 *   chunks  raw loopback TCP MiB/s (this process -> a sink process, 4 MiB writes, up to
 *           BENCH_TCP_MIB MiB or BENCH_SECONDS), then 4 MiB chunks (distinct content, sha256 ids)
 *           PUT to one cluster node's internal endpoint /_ts3gw/chunks/<id> with the production
 *           HttpChunkClient (undici), c=1 and c=4, then GET back; plus the same HTTP transfers to
 *           the sink's plain node:http server (no store) to split HTTP cost from store cost.
 *           A node's chunk PUT includes the receiver's sha256 verification, file write and fsync;
 *           its GET includes reading the file and verifying the sha256 again.
 *   local   the store's own costs measured in this process: sha256 of 4 MiB buffers and writing +
 *           fsyncing 4 MiB files on the nodes' file system (what a chunk PUT adds to HTTP).
 *
 * Environment: everything of s3-bench (BENCH_SECONDS 5, BENCH_WARMUP_SECONDS, BENCH_MAX_OPS,
 * BENCH_VERIFY_EVERY), and BENCH_ROWS (comma list of row ids), BENCH_PARTS (s3,chunks),
 * BENCH_TCP_MIB (1024), BENCH_CHUNK_POOL (chunks generated per PUT phase, 96).
 * Output: tables on stdout and bench-results/cluster-bench-<timestamp>.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { HttpChunkClient } from '../../src/forward/chunk-client.ts';
import { admin, clusterStatus, eventually, freePort, TEST_CLUSTER_SECRET } from '../helpers/cluster.ts';
import { startServer, TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../helpers/server.ts';
import {
  BUCKET,
  type BenchServer,
  cleanups,
  fmt,
  getRow,
  git,
  KiB,
  type Measured,
  MiB,
  makeClient,
  measure,
  processCpuSeconds,
  putRow,
  type RowSpec,
  runCleanups,
  SECONDS,
  startTs3gw,
  stopProcess,
  table,
  WARMUP_SECONDS,
} from './s3-bench.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return n;
}

const ONLY_ROWS = process.env['BENCH_ROWS']?.split(',').filter(Boolean);
const PARTS = (process.env['BENCH_PARTS'] ?? 's3,chunks').split(',').filter(Boolean);
const TCP_BYTES = envNumber('BENCH_TCP_MIB', 1024) * MiB;
const CHUNK_POOL = Math.floor(envNumber('BENCH_CHUNK_POOL', 96));
const VERIFY_EVERY = Math.floor(envNumber('BENCH_VERIFY_EVERY', 8));
const CHUNK_BYTES = 4 * MiB;
const NODES = 3;
/** The node the chunk transfers go to. */
const CHUNK_TARGET_NODE = 2;
/** Node id under which the HttpChunkClient reaches the sink's HTTP server. */
const SINK_NODE = 100;
const TARGET_RATIO = 1 / 3;
const TARGET_FRACTION = 0.5;

// ---------------------------------------------------------------------------------- cluster

interface BenchNode {
  id: number;
  url: string;
  pid: number;
  proc: ChildProcess;
  dataDir: string;
}

interface BenchCluster {
  server: BenchServer;
  nodes: BenchNode[];
  clusterId: string;
  leader: number;
  replication: unknown;
}

/** Three founding nodes on loopback (default Raft timing), each stopped by PID on the way out. */
async function startBenchCluster(tempRoot: string): Promise<BenchCluster> {
  const ids = Array.from({ length: NODES }, (_, i) => i + 1);
  const raftPorts = new Map<number, number>();
  for (const id of ids) raftPorts.set(id, await freePort());
  const peers = ids.map((id) => `${id}@127.0.0.1:${raftPorts.get(id)}`).join(',');
  const settled = await Promise.allSettled(
    ids.map(async (id) => {
      const dataDir = join(tempRoot, `node${id}`);
      await mkdir(dataDir, { recursive: true });
      const server = await startServer({
        dataDir,
        env: {
          TS3GW_NODE_ID: String(id),
          TS3GW_PEERS: peers,
          TS3GW_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
          TS3GW_RAFT_PORT: String(raftPorts.get(id)),
          TS3GW_LOG_LEVEL: 'warn',
        },
      });
      cleanups.push(() => stopProcess(server.proc));
      return { id, url: server.url, pid: server.proc.pid!, proc: server.proc, dataDir } satisfies BenchNode;
    }),
  );
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const nodes = settled.map((s) => (s as PromiseFulfilledResult<BenchNode>).value);
  const leader = await eventually(
    async () => {
      const statuses = await Promise.all(nodes.map((n) => clusterStatus(n.url)));
      const leaders = new Set(statuses.map((s) => s.leader));
      const [l] = leaders;
      return leaders.size === 1 && l !== undefined && l !== 0 ? l : undefined;
    },
    60_000,
    'one agreed leader',
  );
  const status = await clusterStatus(nodes[0]!.url);
  const replication = (await admin(nodes[0]!.url, 'GET', '/replication')).body;
  const server: BenchServer = {
    name: 'ts3gw',
    url: nodes[0]!.url,
    pid: nodes[0]!.pid,
    pids: nodes.map((n) => n.pid),
    dataDir: tempRoot,
    accessKeyId: TEST_ACCESS_KEY,
    secretAccessKey: TEST_SECRET_KEY,
    stop: async () => {
      await Promise.all(nodes.map((n) => stopProcess(n.proc)));
    },
  };
  return { server, nodes, clusterId: status.clusterId, leader, replication };
}

/** Spreads requests over the clients in turn (what a round-robin load balancer does). */
function roundRobin(clients: S3Client[], counts: number[]): S3Client {
  let next = 0;
  return {
    send(...args: unknown[]) {
      const i = next++ % clients.length;
      counts[i]!++;
      const client = clients[i]!;
      return Reflect.apply(client.send, client, args);
    },
    destroy() {
      for (const c of clients) c.destroy();
    },
  } as unknown as S3Client;
}

// ---------------------------------------------------------------------------------- s3 rows

interface RowDef {
  id: string;
  label: string;
  make(): RowSpec;
}

function rowDefs(): RowDef[] {
  const defs: RowDef[] = [];
  for (const c of [16, 64]) {
    defs.push({ id: `put4k-c${c}`, label: `PUT 4 KiB   c=${c}`, make: () => putRow(`put4k-c${c}`, `PUT 4 KiB   c=${c}`, 4 * KiB, c, (w, i) => `put4k/c${c}/w${w}/${i}`) });
  }
  for (const c of [16, 64]) defs.push({ id: `get4k-c${c}`, label: `GET 4 KiB   c=${c}`, make: () => getRow(`get4k-c${c}`, `GET 4 KiB   c=${c}`, 4 * KiB, c, 256) });
  // 64 MiB PUTs overwrite a few keys per worker so disk use stays bounded.
  for (const c of [1, 4]) {
    defs.push({ id: `put64m-c${c}`, label: `PUT 64 MiB  c=${c}`, make: () => putRow(`put64m-c${c}`, `PUT 64 MiB  c=${c}`, 64 * MiB, c, (w, i) => `put64m/c${c}/w${w}/${i % 4}`) });
  }
  for (const c of [1, 4]) defs.push({ id: `get64m-c${c}`, label: `GET 64 MiB  c=${c}`, make: () => getRow(`get64m-c${c}`, `GET 64 MiB  c=${c}`, 64 * MiB, c, 4) });
  return ONLY_ROWS ? defs.filter((d) => ONLY_ROWS.includes(d.id)) : defs;
}

interface RowResult {
  id: string;
  label: string;
  unit: string;
  order: string[];
  single?: Measured;
  cluster?: Measured;
  /** Requests each cluster node received in this row (round-robin). */
  clusterRequestsPerNode?: number[];
  ratio?: number;
}

const value = (unit: string, m: Measured) => (unit === 'ops/s' ? m.opsPerSec : m.mibPerSec);

// ---------------------------------------------------------------------------------- chunks

interface Sink {
  tcpPort: number;
  httpUrl: string;
  pid: number;
}

async function startSink(): Promise<Sink> {
  const proc = spawn(process.execPath, [join(ROOT, 'test/bench/cluster-sink.ts')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  cleanups.push(() => stopProcess(proc));
  const output: string[] = [];
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sink did not start:\n${output.join('\n')}`)), 30_000);
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      output.push(l);
      if (l.startsWith('sink ')) {
        clearTimeout(timer);
        resolve(l);
      }
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => output.push(l));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sink exited with ${code}:\n${output.join('\n')}`));
    });
  });
  const m = /tcp=(\d+) http=(\d+)/.exec(line)!;
  return { tcpPort: Number(m[1]), httpUrl: `http://127.0.0.1:${m[2]}`, pid: proc.pid! };
}

interface Transfer {
  name: string;
  kind: 'tcp' | 'put' | 'get' | 'local';
  target: string;
  concurrency: number;
  bytes: number;
  seconds: number;
  mibPerSec: number;
  ops?: number;
  p50Ms?: number;
  p99Ms?: number;
  errors?: number;
  firstError?: string;
  verified?: number;
  stoppedBy: 'time' | 'count' | 'errors' | 'bytes';
  receiverCpuSeconds: number;
  receiverCpuMsPerMiB: number;
  includes: string;
  fractionOfTcp?: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: over ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Raw loopback TCP: `connections` sockets each write 4 MiB pieces until their share of
 *  TCP_BYTES or the deadline; done when the sink has acknowledged every byte. */
async function rawTcp(sink: Sink, connections: number): Promise<Transfer> {
  const piece = randomBytes(CHUNK_BYTES);
  const cpu0 = processCpuSeconds(sink.pid);
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  let stoppedBy: Transfer['stoppedBy'] = 'bytes';
  const counts = await Promise.all(
    Array.from({ length: connections }, async () => {
      const socket = net.connect(sink.tcpPort, '127.0.0.1');
      try {
        await once(socket, 'connect');
        const reply = new Promise<number>((resolve, reject) => {
          const parts: Buffer[] = [];
          socket.on('data', (p: Buffer) => parts.push(p));
          socket.on('end', () => resolve(Number(Buffer.concat(parts).readBigUInt64BE(0))));
          socket.on('error', reject);
        });
        let sent = 0;
        while (sent < TCP_BYTES / connections) {
          if (performance.now() >= deadline) {
            stoppedBy = 'time';
            break;
          }
          sent += piece.length;
          if (!socket.write(piece)) await once(socket, 'drain');
        }
        socket.end();
        const received = await withTimeout(reply, 60_000, 'tcp sink reply');
        if (received !== sent) throw new Error(`tcp sink received ${received} of ${sent} bytes`);
        return received;
      } finally {
        socket.destroy();
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const bytes = counts.reduce((a, b) => a + b, 0);
  const receiverCpuSeconds = processCpuSeconds(sink.pid) - cpu0;
  return {
    name: `raw TCP, ${connections} connection${connections > 1 ? 's' : ''}`,
    kind: 'tcp',
    target: 'sink (net)',
    concurrency: connections,
    bytes,
    seconds,
    mibPerSec: bytes / MiB / seconds,
    stoppedBy,
    receiverCpuSeconds,
    receiverCpuMsPerMiB: (receiverCpuSeconds * 1000) / (bytes / MiB),
    includes: '4 MiB socket writes, receiver counts bytes',
  };
}

interface Chunk {
  id: string;
  data: Buffer;
}

/** `n` distinct 4 MiB chunks: random bytes, a unique 16-byte prefix, their sha256 as id. */
const CHUNK_NONCE = randomBytes(8);
let chunkCounter = 0n;
function makeChunks(n: number): Chunk[] {
  const base = randomBytes(CHUNK_BYTES);
  return Array.from({ length: n }, () => {
    const data = Buffer.from(base);
    CHUNK_NONCE.copy(data, 0);
    data.writeBigUInt64BE(chunkCounter++, 8);
    return { id: createHash('sha256').update(data).digest('hex'), data };
  });
}

/** Time- and count-bounded transfer of 4 MiB chunks with the production chunk client. */
async function chunkTransfer(
  name: string,
  kind: 'put' | 'get',
  client: HttpChunkClient,
  nodeId: number,
  receiverPid: number,
  concurrency: number,
  chunks: Chunk[],
  includes: string,
  target: string,
): Promise<Transfer> {
  const maxOps = kind === 'put' ? chunks.length : 100_000;
  // Warm-up: open the connections (a GET of a chunk that is not there for PUT phases).
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      if (kind === 'get') await client.get(nodeId, chunks[0]!.id);
      else await client.has(nodeId, '0'.repeat(64)).catch(() => undefined);
    }),
  );
  const latencies: number[] = [];
  let next = 0;
  let ops = 0;
  let errors = 0;
  let verified = 0;
  let firstError: string | undefined;
  let stoppedBy: Transfer['stoppedBy'] = 'time';
  const cpu0 = processCpuSeconds(receiverPid);
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        if (performance.now() >= deadline) return;
        if (next >= maxOps) {
          stoppedBy = 'count';
          return;
        }
        if (errors >= 20) {
          stoppedBy = 'errors';
          return;
        }
        const i = next++;
        const chunk = chunks[i % chunks.length]!;
        const start = performance.now();
        try {
          if (kind === 'put') await client.put(nodeId, chunk.id, chunk.data);
          else {
            const got = await client.get(nodeId, chunk.id);
            if (!got || got.length !== CHUNK_BYTES) throw new Error(`GET ${chunk.id}: ${got ? `${got.length} bytes` : 'missing'}`);
            if (i % VERIFY_EVERY === 0 && nodeId !== SINK_NODE) {
              if (!got.equals(chunk.data)) throw new Error(`GET ${chunk.id}: bytes differ`);
              verified++;
            }
          }
          latencies.push(performance.now() - start);
          ops++;
        } catch (err) {
          errors++;
          firstError ??= String(err);
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const receiverCpuSeconds = processCpuSeconds(receiverPid) - cpu0;
  latencies.sort((a, b) => a - b);
  const bytes = ops * CHUNK_BYTES;
  const t: Transfer = {
    name,
    kind,
    target,
    concurrency,
    bytes,
    seconds,
    mibPerSec: bytes / MiB / seconds,
    ops,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    verified,
    stoppedBy,
    receiverCpuSeconds,
    receiverCpuMsPerMiB: bytes > 0 ? (receiverCpuSeconds * 1000) / (bytes / MiB) : Number.NaN,
    includes,
  };
  if (firstError) t.firstError = firstError;
  return t;
}

function logTransfer(t: Transfer): void {
  console.log(
    `${t.name.padEnd(34)} ${fmt(t.mibPerSec).padStart(8)} MiB/s  ${fmt(t.bytes / MiB, 0)} MiB in ${t.seconds.toFixed(2)} s` +
      (t.p50Ms !== undefined ? `  p50 ${fmt(t.p50Ms, 1)} ms  p99 ${fmt(t.p99Ms ?? Number.NaN, 1)} ms  errors ${t.errors}` : '') +
      `  receiver cpu ${fmt(t.receiverCpuMsPerMiB, 2)} ms/MiB  stopped by ${t.stoppedBy}${t.firstError ? `  first error: ${t.firstError}` : ''}`,
  );
}

async function runChunks(cluster: BenchCluster, sink: Sink): Promise<Transfer[]> {
  const out: Transfer[] = [];
  const record = (t: Transfer) => {
    logTransfer(t);
    out.push(t);
  };
  const target = cluster.nodes.find((n) => n.id === CHUNK_TARGET_NODE)!;
  const client = new HttpChunkClient({
    clusterId: cluster.clusterId,
    clusterSecret: TEST_CLUSTER_SECRET,
    urlOf: (id) => (id === SINK_NODE ? sink.httpUrl : cluster.nodes.find((n) => n.id === id)?.url),
  });
  const nodeIncludesPut = 'HTTP + receiver sha256 verify + file write + fsync';
  const nodeIncludesGet = 'HTTP + receiver file read + sha256 verify';
  try {
    for (const c of [1, 4]) record(await rawTcp(sink, c));
    for (const c of [1, 4]) {
      record(await chunkTransfer(`HTTP PUT 4 MiB to sink c=${c}`, 'put', client, SINK_NODE, sink.pid, c, makeChunks(CHUNK_POOL), 'HTTP only (undici -> node:http, body collected)', 'sink (node:http)'));
    }
    for (const c of [1, 4]) {
      record(await chunkTransfer(`HTTP GET 4 MiB from sink c=${c}`, 'get', client, SINK_NODE, sink.pid, c, makeChunks(1), 'HTTP only (node:http fixed body -> undici)', 'sink (node:http)'));
    }
    let stored: Chunk[] = [];
    for (const c of [1, 4]) {
      const chunks = makeChunks(CHUNK_POOL);
      const t = await chunkTransfer(`chunk PUT to node ${target.id} c=${c}`, 'put', client, target.id, target.pid, c, chunks, nodeIncludesPut, `node ${target.id} /_ts3gw/chunks`);
      record(t);
      if (c === 1) stored = chunks.slice(0, t.ops ?? 0);
    }
    if (stored.length === 0) throw new Error('no chunk was stored; cannot measure chunk GETs');
    for (const c of [1, 4]) {
      record(await chunkTransfer(`chunk GET from node ${target.id} c=${c}`, 'get', client, target.id, target.pid, c, stored, nodeIncludesGet, `node ${target.id} /_ts3gw/chunks`));
    }
    // Raw TCP again at the end: the machine is shared, so take the better of the two as the base.
    for (const c of [1, 4]) {
      const t = await rawTcp(sink, c);
      t.name += ' (again)';
      record(t);
    }
  } finally {
    await client.close();
  }
  for (const t of out) {
    if (t.kind === 'tcp') continue;
    const base = Math.max(...out.filter((x) => x.kind === 'tcp' && x.concurrency === t.concurrency).map((x) => x.mibPerSec));
    t.fractionOfTcp = t.mibPerSec / base;
  }
  return out;
}

/** What the receiving node's chunk PUT does besides HTTP, measured here in one process on one
 *  core: sha256 of 4 MiB buffers, and writing + fsyncing 4 MiB files (file, then its directory,
 *  as the disk chunk store does) in `dir`, on the file system the nodes use. Time-bounded. */
export async function localCosts(dir: string): Promise<Transfer[]> {
  const chunks = makeChunks(4);
  const out: Transfer[] = [];
  const bounded = async (name: string, includes: string, op: (i: number) => Promise<void> | void): Promise<void> => {
    const deadline = performance.now() + Math.min(SECONDS, 3) * 1000;
    const t0 = performance.now();
    let ops = 0;
    while (performance.now() < deadline && ops < 500) await op(ops++);
    const seconds = (performance.now() - t0) / 1000;
    out.push({
      name,
      kind: 'local',
      target: 'this process',
      concurrency: 1,
      bytes: ops * CHUNK_BYTES,
      seconds,
      mibPerSec: (ops * CHUNK_BYTES) / MiB / seconds,
      ops,
      stoppedBy: 'time',
      receiverCpuSeconds: Number.NaN,
      receiverCpuMsPerMiB: Number.NaN,
      includes,
    });
  };
  await bounded('local sha256 of 4 MiB', 'sha256 only (the store verifies every put and get)', (i) => {
    createHash('sha256').update(chunks[i % chunks.length]!.data).digest('hex');
  });
  await mkdir(dir, { recursive: true });
  try {
    await bounded('local write+fsync 4 MiB files', 'open, write, fsync file, close, fsync dir', async (i) => {
      const handle = await open(join(dir, `c${i}`), 'w');
      try {
        await handle.write(chunks[i % chunks.length]!.data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadavgAtStart = os.loadavg();
  const defs = PARTS.includes('s3') ? rowDefs() : [];
  const budgetMs = defs.length * 2 * ((WARMUP_SECONDS + SECONDS) * 1000 + 90_000) + (PARTS.includes('chunks') ? 14 * (SECONDS * 1000 + 60_000) : 0) + 180_000;
  const watchdog = setTimeout(() => {
    console.error(`bench:cluster: over its time budget of ${Math.round(budgetMs / 1000)} s; stopping`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`bench:cluster: ${signal}; stopping servers`);
      void runCleanups().finally(() => process.exit(130));
    });
  }

  const tempRoot = await mkdtemp(join(os.tmpdir(), 'ts3gw-cluster-bench-'));
  cleanups.push(() => rm(tempRoot, { recursive: true, force: true }));
  const rows: RowResult[] = [];
  let transfers: Transfer[] = [];
  let clusterInfo: Record<string, unknown> = {};
  try {
    console.log(
      `bench:cluster: ${SECONDS} s per row after ${WARMUP_SECONDS} s warm-up; ${os.cpus().length} CPUs, node ${process.version}, ` +
        `load average ${loadavgAtStart.map((l) => l.toFixed(2)).join(' ')}, temp ${tempRoot}`,
    );
    const single = defs.length > 0 ? await startTs3gw(join(tempRoot, 'single')) : undefined;
    const cluster = await startBenchCluster(join(tempRoot, 'cluster'));
    clusterInfo = { clusterId: cluster.clusterId, leader: cluster.leader, replication: cluster.replication, nodes: cluster.nodes.map((n) => ({ id: n.id, url: n.url, pid: n.pid })) };
    console.log(`cluster: nodes ${cluster.nodes.map((n) => `${n.id}@${n.url}`).join(' ')}, leader ${cluster.leader}, replication ${JSON.stringify(cluster.replication)}`);

    if (single && defs.length > 0) {
      const singleClient = makeClient(single);
      const nodeClients = cluster.nodes.map((n) => makeClient({ ...cluster.server, url: n.url }));
      const perNode = new Array<number>(NODES).fill(0);
      const clusterClient = roundRobin(nodeClients, perNode);
      await singleClient.send(new CreateBucketCommand({ Bucket: BUCKET }));
      await eventually(
        async () => {
          await nodeClients[0]!.send(new CreateBucketCommand({ Bucket: BUCKET })).catch((err: Error) => {
            if (err.name !== 'BucketAlreadyOwnedByYou') throw err;
          });
          return true;
        },
        30_000,
        'bucket on the cluster',
      );
      // Every node must see the bucket before requests spread over them.
      for (const c of nodeClients) {
        await eventually(
          async () => {
            await c.send(new HeadBucketCommand({ Bucket: BUCKET }));
            return true;
          },
          30_000,
          'bucket on every node',
        );
      }

      for (const [index, def] of defs.entries()) {
        const targets = [
          { key: 'single' as const, server: single, client: singleClient, spec: def.make() },
          { key: 'cluster' as const, server: cluster.server, client: clusterClient, spec: def.make() },
        ];
        if (index % 2 === 1) targets.reverse();
        const row: RowResult = { id: def.id, label: def.label, unit: targets[0]!.spec.unit, order: targets.map((t) => t.key) };
        for (const t of targets) {
          const before = [...perNode];
          const m = await measure(t.spec, t.server, t.client);
          row[t.key] = m;
          if (t.key === 'cluster') row.clusterRequestsPerNode = perNode.map((n, i) => n - before[i]!);
          console.log(
            `${def.label.padEnd(16)} ${t.key.padEnd(7)} ${fmt(value(row.unit, m)).padStart(8)} ${row.unit}` +
              `  p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms  ops ${m.ops}  errors ${m.errors}  verified ${m.verified}` +
              `  server cpu ${fmt(m.serverCpuMsPerOp, 3)} ms/op  others ${fmt(100 * m.otherCpuShare, 0)}% of machine${m.firstError ? `  first error: ${m.firstError}` : ''}`,
          );
        }
        if (row.single && row.cluster) row.ratio = value(row.unit, row.cluster) / value(row.unit, row.single);
        rows.push(row);
      }
      singleClient.destroy();
      clusterClient.destroy();
      await single.stop();
      await rm(single.dataDir, { recursive: true, force: true });
    }

    if (PARTS.includes('chunks')) {
      const sink = await startSink();
      transfers = await runChunks(cluster, sink);
      for (const t of await localCosts(join(tempRoot, 'local-costs'))) {
        logTransfer(t);
        transfers.push(t);
      }
    }
  } finally {
    await runCleanups();
    clearTimeout(watchdog);
  }

  // ------------------------------------------------------------------ report
  console.log('');
  if (rows.length > 0) {
    const lat = (m?: Measured) => (m ? `${fmt(m.p50Ms, 2)} / ${fmt(m.p99Ms, 2)}` : '-');
    console.log(
      table(
        ['row', 'unit', 'single', 'cluster', 'cluster/single', 'single p50/p99 ms', 'cluster p50/p99 ms', 'cpu ms/op single/cluster(3)', 'others cpu %', 'err', 'verified'],
        rows.map((r) => [
          r.label,
          r.unit,
          r.single ? fmt(value(r.unit, r.single)) : '-',
          r.cluster ? fmt(value(r.unit, r.cluster)) : '-',
          r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
          lat(r.single),
          lat(r.cluster),
          `${fmt(r.single?.serverCpuMsPerOp ?? Number.NaN, 3)} / ${fmt(r.cluster?.serverCpuMsPerOp ?? Number.NaN, 3)}`,
          `${fmt(100 * (r.single?.otherCpuShare ?? Number.NaN), 0)} / ${fmt(100 * (r.cluster?.otherCpuShare ?? Number.NaN), 0)}`,
          `${r.single?.errors ?? '-'}/${r.cluster?.errors ?? '-'}`,
          `${r.single?.verified ?? '-'}/${r.cluster?.verified ?? '-'}`,
        ]),
      ),
    );
    for (const r of rows.filter((x) => x.id.startsWith('put64m') && x.ratio !== undefined)) {
      console.log(`target: ${r.label.trim()} cluster/single ${r.ratio!.toFixed(2)} >= ${TARGET_RATIO.toFixed(2)}: ${r.ratio! >= TARGET_RATIO ? 'met' : 'NOT met'}`);
    }
    console.log('');
  }
  if (transfers.length > 0) {
    console.log(
      table(
        ['transfer (4 MiB units)', 'MiB/s', 'of raw TCP', 'p50/p99 ms', 'MiB', 'receiver cpu ms/MiB', 'stopped', 'err', 'includes'],
        transfers.map((t) => [
          t.name,
          fmt(t.mibPerSec),
          t.fractionOfTcp === undefined ? '-' : `${(100 * t.fractionOfTcp).toFixed(0)}%`,
          t.p50Ms === undefined ? '-' : `${fmt(t.p50Ms, 1)} / ${fmt(t.p99Ms ?? Number.NaN, 1)}`,
          fmt(t.bytes / MiB, 0),
          fmt(t.receiverCpuMsPerMiB, 2),
          t.stoppedBy,
          t.errors === undefined ? '-' : String(t.errors),
          t.includes,
        ]),
      ),
    );
    for (const t of transfers.filter((x) => x.kind !== 'tcp' && x.kind !== 'local' && x.target.startsWith('node'))) {
      console.log(`target: ${t.name} at ${(100 * (t.fractionOfTcp ?? 0)).toFixed(0)}% of raw TCP (same connection count) >= 50%: ${(t.fractionOfTcp ?? 0) >= TARGET_FRACTION ? 'met' : 'NOT met'}`);
    }
    console.log('note: raw TCP base = the better of the runs before and after the HTTP phases; no switch turns the node\'s fsync off, so chunk PUTs always include it.');
  }
  const loadavgAtEnd = os.loadavg();
  console.log(`load average at start ${loadavgAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadavgAtEnd.map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`);

  const cpus = os.cpus();
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model,
      totalMemBytes: os.totalmem(),
      loadavgAtStart,
      loadavgAtEnd,
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
    },
    commit: git(['rev-parse', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    settings: {
      seconds: SECONDS,
      warmupSeconds: WARMUP_SECONDS,
      verifyEvery: VERIFY_EVERY,
      tcpBytes: TCP_BYTES,
      chunkPool: CHUNK_POOL,
      chunkBytes: CHUNK_BYTES,
      parts: PARTS,
      single: 'node src/main.ts, fsync on (default), log level warn',
      cluster: `${NODES} founding nodes (static TS3GW_PEERS, default Raft timing), replication as reported; S3 requests round-robin over the nodes`,
      client: 'as npm run bench (AWS SDK v3, keep-alive, maxAttempts 1); chunks: src/forward/chunk-client.ts HttpChunkClient (undici Pool)',
    },
    cluster: clusterInfo,
    rows,
    transfers,
  };
  const outDir = join(ROOT, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const outFile = join(outDir, `cluster-bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${outFile}`);
  const failed =
    rows.some((r) => (r.single?.verifyFailures ?? 0) + (r.cluster?.verifyFailures ?? 0) > 0) || transfers.some((t) => (t.errors ?? 0) > 0 && (t.ops ?? 0) === 0);
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.main) await main();
