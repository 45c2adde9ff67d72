/**
 * `npm run bench:cluster`: a single ts3gw node against a 3-node ts3gw cluster (R=3, W=2, the
 * default) on this machine, and chunk transfer between two processes over three protocols.
 *
 *   s3      4 KiB PUT/GET ops/s at c=16, c=64; 64 MiB PUT/GET MiB/s at c=1, c=4. Single node and
 *           cluster alternate first/second per row; the cluster's requests go round-robin to its
 *           three nodes, as a load balancer would. Rows, warm-up, bounds and verification are the
 *           ones of `npm run bench` (test/bench/s3-bench.ts), imported from there.
 *   chunks  the same transfer for every protocol: distinct 4 MiB chunks (sha256 ids) moved one
 *           request per chunk, each acknowledged before the connection carries the next, back to
 *           back for BENCH_CHUNK_WARMUP_SECONDS (not counted), then for BENCH_CHUNK_SECONDS (rows
 *           that store stop early after BENCH_CHUNK_ROW_MIB_MAX), by c=1 or c=4 connections (gRPC: c concurrent calls on its one HTTP/2
 *           channel), from this process to another process (test/bench/cluster-sink.ts, or a
 *           cluster node). So every row moves the same bytes in the same units; only the
 *           protocol and the receiver's work differ:
 *             raw TCP       a plain net socket with a 42-byte header per chunk and a 1-byte ack
 *                           ("raw loopback": nothing between the bytes and the socket; one
 *                           write per request, reads into reused buffers, so it bounds the rest);
 *             chunk wire    the production ChunkWireClient to the production ChunkWireServer
 *                           on a plain node:http server (src/forward/chunk-wire*.ts: an
 *                           upgraded connection carrying binary frames);
 *             HTTP/undici   the production HttpChunkClient (undici Pool) to a plain node:http
 *                           server;
 *             gRPC/grpc-js  client-streaming Put / server-streaming Get of BENCH_GRPC_PIECE_KIB
 *                           messages, a throwaway service without .proto (identity serializers);
 *             node wire     the production path: ChunkWireClient to a cluster node's S3 port
 *                           (auth, DiskChunkStore behind it). GETs read into recycled buffers
 *                           as repair does; "node wire new buf" takes a new buffer per chunk,
 *                           as an S3 read through a node without a local copy does;
 *             node HTTP     HttpChunkClient to the node's fastify /_ts3gw/chunks/<id>.
 *           Receiver work: "discard" drops the bytes (PUT) or sends a fixed buffer (GET), which
 *           shows the protocol alone; "store" runs the production DiskChunkStore (fsync on) in the
 *           sink: putStream hashes while receiving, writes, fsyncs and renames; openRead streams
 *           the file and verifies it. "st/tmpfs" is the same store on tmpfs (/dev/shm, or
 *           BENCH_TMPFS_DIR; BENCH_TMPFS=0 or no tmpfs skips it): the sink's, and a standalone
 *           node's whose data dir is there, so the transfer machinery shows without the disk's
 *           fsync bound. The node rows always store. Each row's "of raw TCP" compares with
 *           raw TCP doing the same work on the same medium at the same concurrency; "of TCP
 *           discard" compares with the plain socket transfer (the issue's literal baseline).
 *           After each storing PUT row its store is emptied but for GET_CHUNKS chunks, which
 *           the GET rows read in turn (every BENCH_VERIFY_EVERY-th GET compared byte for byte).
 *   local   the store's own costs measured in this process: sha256 of 4 MiB buffers and writing +
 *           fsyncing 4 MiB files on the nodes' file system.
 *
 * Environment: everything of s3-bench (BENCH_SECONDS 5, BENCH_WARMUP_SECONDS, BENCH_MAX_OPS,
 * BENCH_VERIFY_EVERY), and BENCH_ROWS (comma list of row ids), BENCH_PARTS (s3,chunks),
 * BENCH_CHUNK_SECONDS (3), BENCH_CHUNK_WARMUP_SECONDS (1), BENCH_CHUNK_ROW_MIB_MAX (3072),
 * BENCH_CHUNK_ROWS (prefixes of row ids like put-store-node, get-tmpfs), BENCH_TMPFS,
 * BENCH_TMPFS_DIR, BENCH_GRPC_PIECE_KIB (256). Profile the nodes with
 * TS3GW_TEST_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" (written when the bench stops them).
 * Output: tables on stdout and bench-results/cluster-bench-<timestamp>.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import * as grpc from '@grpc/grpc-js';
import { HttpChunkClient } from '../../src/forward/chunk-client.ts';
import { ChunkWireClient } from '../../src/forward/chunk-wire.ts';
import { GRPC_OPTIONS, GRPC_PIECE_BYTES, GRPC_SERVICE, TCP_ANSWER_HEADER_BYTES, TCP_HEADER_BYTES } from './cluster-sink.ts';
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
/** Measured seconds of a chunk transfer row, after its warm-up. */
const CHUNK_SECONDS = envNumber('BENCH_CHUNK_SECONDS', 3);
const CHUNK_WARMUP_SECONDS = envNumber('BENCH_CHUNK_WARMUP_SECONDS', 1);
/** A row that stores stops after this many bytes (it bounds the disk and tmpfs space a row takes). */
const CHUNK_ROW_BYTES_MAX = envNumber('BENCH_CHUNK_ROW_MIB_MAX', 3072) * 1024 * 1024;
/** Prefixes of chunk row ids to run (`put-store-node`, `get-tmpfs`, …); all by default. */
const ONLY_CHUNK_ROWS = process.env['BENCH_CHUNK_ROWS']?.split(',').filter(Boolean);
/** Free tmpfs space the tmpfs rows need: a row's bytes, its warm-up, and slack. */
const TMPFS_BYTES_NEEDED = 2 * CHUNK_ROW_BYTES_MAX;
const VERIFY_EVERY = Math.floor(envNumber('BENCH_VERIFY_EVERY', 8));
const CHUNK_BYTES = 4 * MiB;
const NODES = 3;
/** The node the chunk transfers go to. */
const CHUNK_TARGET_NODE = 2;
/** Node ids under which the HttpChunkClient reaches the sink's HTTP servers. */
const SINK_DISCARD_NODE = 100;
const SINK_STORE_NODE = 101;
const SINK_TMPFS_NODE = 102;
/** Node id of the standalone node on tmpfs (a cluster of its own). */
const TMPFS_NODE = 200;
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
  httpDiscardUrl: string;
  httpStoreUrl: string;
  /** The sink's tmpfs store over HTTP, when there is one. */
  httpTmpfsUrl: string | undefined;
  grpcAddress: string;
  pid: number;
}

/** Starts the sink with its stores in `storeDir` (disk) and `tmpfsDir` (tmpfs, if any). */
async function startSink(storeDir: string, tmpfsDir: string | undefined): Promise<Sink> {
  const proc = spawn(process.execPath, [join(ROOT, 'test/bench/cluster-sink.ts')], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      BENCH_SINK_STORE_DIR: storeDir,
      ...(tmpfsDir ? { BENCH_SINK_TMPFS_DIR: tmpfsDir } : {}),
      BENCH_GRPC_PIECE_KIB: String(GRPC_PIECE_BYTES / KiB),
    },
  });
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
  const m = /tcp=(\d+) http-discard=(\d+) http-store=(\d+) http-tmpfs=(\d+) grpc=(\d+)/.exec(line)!;
  return {
    tcpPort: Number(m[1]),
    httpDiscardUrl: `http://127.0.0.1:${m[2]}`,
    httpStoreUrl: `http://127.0.0.1:${m[3]}`,
    httpTmpfsUrl: m[4] === '0' ? undefined : `http://127.0.0.1:${m[4]}`,
    grpcAddress: `127.0.0.1:${m[5]}`,
    pid: proc.pid!,
  };
}

/** Linux's statfs magic number of tmpfs. */
const TMPFS_MAGIC = 0x01021994;

/**
 * A fresh directory on tmpfs (BENCH_TMPFS_DIR, /dev/shm by default) for the rows that take the
 * disk's fsync bound away, or undefined (with the reason printed) when there is none.
 */
async function tmpfsRoot(): Promise<string | undefined> {
  if (process.env['BENCH_TMPFS'] === '0') return undefined;
  const base = process.env['BENCH_TMPFS_DIR'] ?? '/dev/shm';
  try {
    const fs = await statfs(base);
    if (fs.type !== TMPFS_MAGIC) {
      console.log(`tmpfs rows skipped: ${base} is not tmpfs (statfs type 0x${fs.type.toString(16)})`);
      return undefined;
    }
    if (fs.bavail * fs.bsize < TMPFS_BYTES_NEEDED) {
      console.log(`tmpfs rows skipped: ${base} has ${fmt((fs.bavail * fs.bsize) / MiB, 0)} MiB free, they need ${TMPFS_BYTES_NEEDED / MiB}`);
      return undefined;
    }
    const dir = await mkdtemp(join(base, 'ts3gw-cluster-bench-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  } catch (err) {
    console.log(`tmpfs rows skipped: ${base}: ${String(err)}`);
    return undefined;
  }
}

/** A standalone node (cluster of one) with its data dir on tmpfs: the node rows without fsync's bound. */
async function startTmpfsNode(dir: string): Promise<BenchNode & { clusterId: string }> {
  const dataDir = join(dir, 'node');
  await mkdir(dataDir, { recursive: true });
  const server = await startServer({ dataDir, env: { TS3GW_CLUSTER_SECRET: TEST_CLUSTER_SECRET, TS3GW_LOG_LEVEL: 'warn' } });
  cleanups.push(() => stopProcess(server.proc));
  const status = await eventually(async () => ((await clusterStatus(server.url)).leader !== 0 ? clusterStatus(server.url) : undefined), 30_000, 'tmpfs node leader');
  return { id: TMPFS_NODE, url: server.url, pid: server.proc.pid!, proc: server.proc, dataDir, clusterId: status.clusterId };
}

/** Protocols of the chunk comparison; `node` is the production path into a real node. */
type Proto = 'tcp' | 'http' | 'grpc' | 'wire' | 'node' | 'nodefresh' | 'nodehttp';
/**
 * Receiver work: drop the bytes, or verify + store them durably (see cluster-sink.ts) on the
 * bench's temp dir ('store') or on tmpfs ('tmpfs': the same store, fsync and all, on memory).
 */
type Work = 'discard' | 'store' | 'tmpfs';

const PROTO_LABEL: Record<Proto, string> = {
  tcp: 'raw TCP',
  http: 'HTTP/undici',
  grpc: 'gRPC/grpc-js',
  wire: 'chunk wire',
  node: 'node wire',
  nodefresh: 'node wire new buf',
  nodehttp: 'node HTTP',
};

const WORK_LABEL: Record<Work, string> = { discard: 'discard', store: 'store', tmpfs: 'st/tmpfs' };

interface Transfer {
  name: string;
  kind: 'put' | 'get' | 'local';
  proto?: Proto;
  work?: Work;
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
  stoppedBy: 'time' | 'bytes' | 'errors';
  receiverCpuSeconds: number;
  receiverCpuMsPerMiB: number;
  senderCpuMsPerMiB?: number;
  /** A node receiver's CPU rate while idle just before the row (ms of CPU per second). */
  receiverIdleCpuMsPerSec?: number;
  includes: string;
  /** MiB/s over raw TCP with the same direction, receiver work and concurrency. */
  fractionOfTcp?: number;
  /** MiB/s over raw TCP discarding (the plain socket transfer) at the same concurrency. */
  fractionOfTcpDiscard?: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * A chunk: CHUNK_BASE with a unique 16-byte tail (8 bytes of run nonce, an 8-byte counter), id
 * its sha256. A time-bounded row moves thousands of distinct chunks, so they are not all held:
 * each connection owns one buffer (a ChunkSlot) and writes the next chunk's tail into it once
 * the previous request was answered (so no transfer still reads it), and the id costs one
 * 16-byte update of a copy of the base's hash state. Sends reuse warm buffers for every
 * protocol alike (the first send of a fresh buffer costs the sender ~1 ms/MiB of kernel time).
 */
interface Chunk {
  id: string;
  /** The chunk's bytes: the slot's buffer, valid until the slot's next chunk. */
  data: Buffer;
  tail: Buffer;
}

const CHUNK_TAIL_BYTES = 16;
const CHUNK_BASE = randomBytes(CHUNK_BYTES);
const CHUNK_BASE_HASH = createHash('sha256').update(CHUNK_BASE.subarray(0, CHUNK_BYTES - CHUNK_TAIL_BYTES));
const CHUNK_NONCE = randomBytes(8);
let chunkCounter = 0n;

/** A fresh tail: no chunk of this run has it. */
function newTail(): Buffer {
  const tail = Buffer.allocUnsafe(CHUNK_TAIL_BYTES);
  CHUNK_NONCE.copy(tail, 0);
  tail.writeBigUInt64BE(chunkCounter++, 8);
  return tail;
}

function chunkId(tail: Buffer): string {
  return CHUNK_BASE_HASH.copy().update(tail).digest('hex');
}

/** One connection's chunk buffer (see Chunk). */
class ChunkSlot {
  readonly #data = Buffer.from(CHUNK_BASE);
  /** The chunk with `tail` (a fresh one by default), in this slot's buffer. */
  fill(tail: Buffer = newTail()): Chunk {
    tail.copy(this.#data, CHUNK_BYTES - CHUNK_TAIL_BYTES);
    return { id: chunkId(tail), data: this.#data, tail };
  }
}

/** The id of the chunk with `tail`, for GETs (no bytes needed). */
function chunkRef(tail: Buffer): Chunk {
  return { id: chunkId(tail), data: CHUNK_BASE, tail };
}

/** True when `parts` joined are exactly the chunk with `tail` (compared in place, no join). */
function chunkMatches(parts: Buffer[], tail: Buffer): boolean {
  let offset = 0;
  for (const p of parts) {
    const baseEnd = Math.min(offset + p.length, CHUNK_BYTES - CHUNK_TAIL_BYTES);
    const inBase = Math.max(0, baseEnd - offset);
    if (inBase > 0 && !p.subarray(0, inBase).equals(CHUNK_BASE.subarray(offset, baseEnd))) return false;
    if (inBase < p.length) {
      const from = offset + inBase - (CHUNK_BYTES - CHUNK_TAIL_BYTES);
      if (!p.subarray(inBase).equals(tail.subarray(from, from + p.length - inBase))) return false;
    }
    offset += p.length;
  }
  return offset === CHUNK_BYTES;
}

/** `n` distinct chunks, each in a buffer of its own (localCosts). */
function makeChunks(n: number): Chunk[] {
  return Array.from({ length: n }, () => new ChunkSlot().fill());
}

/** One connection's (or one channel's) way to move a chunk; GETs return the bytes received. */
interface Conn {
  put(chunk: Chunk): Promise<void>;
  /**
   * The bytes as they arrived (pieces, not joined: joining is the caller's choice). They may be
   * views of the connection's own buffer (raw TCP): valid until its next request.
   */
  get(chunk: Chunk): Promise<Buffer[]>;
  /** Called once the last get's bytes were checked: they may be recycled now. */
  afterGet?(): void;
  close(): void;
}

/**
 * Raw TCP: one socket, one request at a time, framed as cluster-sink.ts describes, and as cheap
 * as a transfer gets, so that it bounds the others: a request leaves in one writev (header and
 * chunk corked together, no copy), and answers are read with `onread` into one buffer the
 * connection owns (no allocation per read; see TcpSession in cluster-sink.ts for why that
 * matters), bounded by the framing, so a GET's body lands in place and is returned as a view.
 */
export async function tcpConn(port: number, work: Work): Promise<Conn> {
  // A PUT's 1-byte ack at [0]; a GET's length prefix at [0, 8) and its bytes after it.
  const answer = Buffer.allocUnsafe(TCP_ANSWER_HEADER_BYTES + CHUNK_BYTES);
  const header = Buffer.alloc(TCP_HEADER_BYTES);
  header.write(work === 'store' ? 's' : work === 'tmpfs' ? 'm' : 'd', 1, 'latin1');
  /** What the connection awaits: nothing, a PUT's ack, a GET's length prefix, a GET's bytes. */
  let phase: 'idle' | 'ack' | 'get-head' | 'get-body' = 'idle';
  let expected = 0;
  let filled = 0;
  let settle: ((err: Error | undefined) => void) | undefined;
  let failed: Error | undefined;
  const finish = (err: Error | undefined) => {
    phase = 'idle';
    const s = settle;
    settle = undefined;
    s?.(err);
  };
  const fail = (err: Error) => {
    failed ??= err;
    finish(failed);
  };
  const onRead = (n: number): boolean => {
    filled += n;
    if (phase === 'idle' || filled > expected) {
      fail(new Error('tcp sink sent bytes nobody asked for'));
      socket.destroy();
      return false;
    }
    if (filled < expected) return true;
    if (phase === 'get-head') {
      const length = Number(answer.readBigUInt64BE(0));
      if (length > CHUNK_BYTES) {
        fail(new Error(`tcp sink answers ${length} bytes`));
        socket.destroy();
        return false;
      }
      phase = 'get-body';
      expected += length;
      if (length > 0) return true;
    }
    finish(undefined);
    return true;
  };
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    noDelay: true,
    // Never past the answer awaited. This is called right after each read, before the next
    // request is sent: between requests the next answer starts at 0, and its first read may
    // bring at most a length prefix (an ack is 1 byte). Never empty: libuv would fail the read.
    onread: { buffer: () => (phase === 'idle' ? answer.subarray(0, TCP_ANSWER_HEADER_BYTES) : answer.subarray(filled, expected)), callback: onRead },
  });
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('tcp sink closed the connection')));
  await once(socket, 'connect');
  /** Starts awaiting an answer: call before the request leaves, resolves once it is complete. */
  const awaitAnswer = (first: 'ack' | 'get-head'): Promise<void> => {
    assertBench(phase === 'idle', 'one request at a time per tcp connection');
    if (failed) return Promise.reject(failed);
    phase = first;
    filled = 0;
    expected = first === 'ack' ? 1 : TCP_ANSWER_HEADER_BYTES;
    return new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
  };
  // The header buffer is reused: the previous request left in full before its answer came.
  const request = (op: 'P' | 'G', chunk: Chunk, length: number): Buffer => {
    header.write(op, 0, 'latin1');
    header.writeBigUInt64BE(BigInt(length), 2);
    header.write(chunk.id, 10, 'hex');
    return header;
  };
  return {
    async put(chunk) {
      const answered = awaitAnswer('ack');
      socket.cork();
      socket.write(request('P', chunk, chunk.data.length));
      socket.write(chunk.data);
      socket.uncork();
      // No wait for 'drain': the ack comes only after the sink has every byte.
      await answered;
      if (answer[0] !== 0) throw new Error(`tcp sink refused chunk ${chunk.id}`);
    },
    async get(chunk) {
      const answered = awaitAnswer('get-head');
      socket.write(request('G', chunk, CHUNK_BYTES));
      await answered;
      return [answer.subarray(TCP_ANSWER_HEADER_BYTES, expected)];
    },
    close: () => socket.destroy(),
  };
}

/**
 * The production chunk wire client (ChunkWireClient: its own pool per peer, one request per
 * connection at a time). GET reads into recycled buffers, released once the row checked the
 * bytes, as repair, scrub and rebalance fetch (they store the bytes, then release); with
 * `fresh`, a new buffer per chunk, as an S3 read through a node without a local copy gets them
 * (ClusterChunkStore.get: the S3 response owns the bytes).
 */
function wireConn(client: ChunkWireClient, nodeId: number, fresh = false): Conn {
  let release: (() => void) | undefined;
  return {
    put: (chunk) => client.put(nodeId, chunk.id, chunk.data),
    async get(chunk) {
      if (fresh) {
        const data = await client.get(nodeId, chunk.id);
        if (!data) throw new Error(`GET ${chunk.id}: missing`);
        return [data];
      }
      const read = await client.read(nodeId, chunk.id);
      if (!read) throw new Error(`GET ${chunk.id}: missing`);
      release = read.release;
      return [read.bytes];
    },
    afterGet() {
      release?.();
      release = undefined;
    },
    close: () => undefined,
  };
}

/** HTTP with the production HttpChunkClient (undici Pool); GET streams (openRead). */
function httpConn(client: HttpChunkClient, nodeId: number): Conn {
  return {
    put: (chunk) => client.put(nodeId, chunk.id, chunk.data),
    async get(chunk) {
      const read = await client.openRead(nodeId, chunk.id);
      if (!read) throw new Error(`GET ${chunk.id}: missing`);
      const parts: Buffer[] = [];
      for await (const p of read.body) parts.push(p);
      return parts;
    },
    close: () => undefined,
  };
}

/** gRPC: client-streaming Put and server-streaming Get on one channel (HTTP/2, multiplexed). */
function grpcConn(client: grpc.Client, work: Work): Conn {
  const deadline = () => Date.now() + 60_000;
  return {
    put(chunk) {
      return new Promise<void>((resolve, reject) => {
        const metadata = new grpc.Metadata();
        metadata.set('chunk-id', chunk.id);
        metadata.set('work', work === 'store' ? 's' : 'd');
        metadata.set('length', String(chunk.data.length));
        const call = client.makeClientStreamRequest<Buffer, Buffer>(
          GRPC_SERVICE.put.path,
          (b) => b,
          (b) => b,
          metadata,
          { deadline: deadline() },
          (err) => (err ? reject(err) : resolve()),
        );
        void (async () => {
          for (let o = 0; o < chunk.data.length; o += GRPC_PIECE_BYTES) {
            if (!call.write(chunk.data.subarray(o, o + GRPC_PIECE_BYTES))) await once(call, 'drain');
          }
          call.end();
        })().catch(reject);
      });
    },
    get(chunk) {
      return new Promise<Buffer[]>((resolve, reject) => {
        const request = Buffer.concat([Buffer.from(work === 'store' ? 's' : 'd', 'latin1'), Buffer.from(chunk.id, 'hex')]);
        const call = client.makeServerStreamRequest<Buffer, Buffer>(GRPC_SERVICE.get.path, (b) => b, (b) => b, request, new grpc.Metadata(), { deadline: deadline() });
        const parts: Buffer[] = [];
        call.on('data', (p: Buffer) => parts.push(p));
        call.on('error', reject);
        call.on('end', () => resolve(parts));
      });
    },
    close: () => undefined,
  };
}

interface PhaseSpec {
  kind: 'put' | 'get';
  proto: Proto;
  work: Work;
  concurrency: number;
  /** GET: the tails of the stored chunks to read, in turn. PUT: fresh chunks every request. */
  stored: Buffer[];
  conns: Conn[];
  receiverPid: number;
  target: string;
  includes: string;
  /** Verify the bytes of every VERIFY_EVERY-th GET against the chunk (store GETs only). */
  verify: boolean;
  /** PUT: called with the tail of every chunk the receiver acknowledged (warm-up included). */
  onStored?: (tail: Buffer) => void;
}

/** Slots of the connections of a phase, by connection index: reused by every row. */
const SLOTS: ChunkSlot[] = [];

/**
 * Runs one row: every connection moves chunks back to back, first for CHUNK_WARMUP_SECONDS
 * (not counted: connections open, the JIT compiles, buffers and caches warm), then for
 * CHUNK_SECONDS or, on rows that store, until CHUNK_ROW_BYTES_MAX were moved. Requests in flight
 * at the deadline finish and count; the row's time runs until the last one did.
 */
async function chunkPhase(spec: PhaseSpec): Promise<Transfer> {
  const { kind, concurrency, conns, stored } = spec;
  assertBench(conns.length === concurrency, 'one connection per worker');
  assertBench(kind === 'put' || stored.length > 0, 'a GET row reads stored chunks');
  while (SLOTS.length < concurrency) SLOTS.push(new ChunkSlot());
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  /** One request on connection `w`; the bytes moved or an error. */
  const transfer = async (w: number, verify: boolean): Promise<void> => {
    const conn = conns[w]!;
    if (kind === 'put') {
      const chunk = SLOTS[w]!.fill();
      await conn.put(chunk);
      spec.onStored?.(chunk.tail);
      return;
    }
    const tail = stored[next++ % stored.length]!;
    const parts = await conn.get(chunkRef(tail));
    const size = parts.reduce((n, p) => n + p.length, 0);
    if (size !== CHUNK_BYTES) throw new Error(`GET ${chunkId(tail)}: ${size} bytes`);
    if (verify && !chunkMatches(parts, tail)) throw new Error(`GET ${chunkId(tail)}: bytes differ`);
    if (spec.work !== 'discard') {
      // As in production: the fetching node hashes every chunk it got from a peer
      // (ClusterChunkStore.get), so every storing GET row (baselines too) pays for that.
      const hash = createHash('sha256');
      for (const p of parts) hash.update(p);
      if (hash.digest('hex') !== chunkId(tail)) throw new Error(`GET ${chunkId(tail)}: sha256 mismatch`);
    }
    conn.afterGet?.();
  };
  // A node works when nobody talks to it too (Raft ticks and heartbeats, maintenance passes):
  // that rate, over a quiet second before the row, says how much of its CPU per MiB is not the
  // transfer's.
  let receiverIdleCpuMsPerSec: number | undefined;
  if (spec.proto === 'node' || spec.proto === 'nodefresh' || spec.proto === 'nodehttp') {
    const idle0 = processCpuSeconds(spec.receiverPid);
    const q0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    receiverIdleCpuMsPerSec = ((processCpuSeconds(spec.receiverPid) - idle0) * 1e6) / (performance.now() - q0);
  }
  const warmUntil = performance.now() + CHUNK_WARMUP_SECONDS * 1000;
  await Promise.all(
    conns.map(async (_, w) => {
      do await transfer(w, spec.verify);
      while (performance.now() < warmUntil);
    }),
  );
  const latencies: number[] = [];
  let ops = 0;
  let verified = 0;
  let stoppedBy: Transfer['stoppedBy'] = 'time';
  const bytesMax = spec.work === 'discard' ? Number.POSITIVE_INFINITY : CHUNK_ROW_BYTES_MAX;
  const cpu0 = processCpuSeconds(spec.receiverPid);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + CHUNK_SECONDS * 1000;
  await Promise.all(
    conns.map(async (_, w) => {
      for (let i = 0; ; i++) {
        if (performance.now() >= deadline) return;
        if (ops * CHUNK_BYTES >= bytesMax) {
          stoppedBy = 'bytes';
          return;
        }
        if (errors >= 20) {
          stoppedBy = 'errors';
          return;
        }
        const verify = spec.verify && i % VERIFY_EVERY === 0;
        const start = performance.now();
        try {
          await transfer(w, verify);
          latencies.push(performance.now() - start);
          ops++;
          if (verify && kind === 'get') verified++;
        } catch (err) {
          errors++;
          firstError ??= String(err);
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const receiverCpuSeconds = processCpuSeconds(spec.receiverPid) - cpu0;
  const self = process.cpuUsage(self0);
  latencies.sort((a, b) => a - b);
  const bytes = ops * CHUNK_BYTES;
  const mib = bytes / MiB;
  const t: Transfer = {
    name: `${kind.toUpperCase()} ${WORK_LABEL[spec.work].padEnd(8)} ${PROTO_LABEL[spec.proto]} c=${concurrency}`,
    kind,
    proto: spec.proto,
    work: spec.work,
    target: spec.target,
    concurrency,
    bytes,
    seconds,
    mibPerSec: mib / seconds,
    ops,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    verified,
    stoppedBy,
    receiverCpuSeconds,
    receiverCpuMsPerMiB: mib > 0 ? (receiverCpuSeconds * 1000) / mib : Number.NaN,
    senderCpuMsPerMiB: mib > 0 ? (self.user + self.system) / 1000 / mib : Number.NaN,
    includes: spec.includes,
  };
  if (firstError) t.firstError = firstError;
  if (receiverIdleCpuMsPerSec !== undefined) t.receiverIdleCpuMsPerSec = receiverIdleCpuMsPerSec;
  return t;
}

function assertBench(cond: boolean, what: string): void {
  if (!cond) throw new Error(`bench bug: ${what}`);
}

function logTransfer(t: Transfer): void {
  console.log(
    `${t.name.padEnd(36)} ${fmt(t.mibPerSec).padStart(8)} MiB/s  ${fmt(t.bytes / MiB, 0)} MiB in ${t.seconds.toFixed(2)} s` +
      (t.p50Ms !== undefined ? `  p50 ${fmt(t.p50Ms, 1)} ms  p99 ${fmt(t.p99Ms ?? Number.NaN, 1)} ms  errors ${t.errors}` : '') +
      `  receiver cpu ${fmt(t.receiverCpuMsPerMiB, 2)} ms/MiB${t.receiverIdleCpuMsPerSec === undefined ? '' : ` (idle ${fmt(t.receiverIdleCpuMsPerSec, 1)} ms/s)`}  sender cpu ${fmt(t.senderCpuMsPerMiB ?? Number.NaN, 2)} ms/MiB  stopped by ${t.stoppedBy}${t.firstError ? `  first error: ${t.firstError}` : ''}`,
  );
}

const INCLUDES: Record<Work, Record<'put' | 'get', string>> = {
  discard: { put: 'receiver counts and drops the bytes', get: 'sender sends a fixed 4 MiB buffer' },
  store: {
    put: 'receiver hashes while receiving, writes, fsyncs, renames (DiskChunkStore.putStream)',
    get: 'sender streams the file, verifying its sha256 (openRead); the fetcher re-hashes it (ClusterChunkStore.get)',
  },
  tmpfs: {
    put: 'as store, on tmpfs (the transfer without the disk: hash, write, fsync, rename)',
    get: 'as store, on tmpfs (streams the file, verifying its sha256; the fetcher re-hashes it)',
  },
};

/** Chunks kept by a store between its PUT rows, for its GET rows (the rest is removed). */
const GET_CHUNKS = 32;

/** Removes every chunk file in a DiskChunkStore directory except `keep` (ids). */
async function emptyStore(dir: string, keep: ReadonlySet<string>): Promise<void> {
  let shards: string[];
  try {
    shards = await readdir(dir);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return;
    throw err;
  }
  for (const shard of shards) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const name of await readdir(join(dir, shard))) if (!keep.has(name)) await rm(join(dir, shard, name), { force: true });
  }
}

/** Where a row's bytes go: a sink store or a node. */
interface Receiver {
  key: string;
  pid: number;
  /** The store's directory (emptied after each PUT row but for the GET chunks). */
  dir: string;
  target: string;
  /** Tails of the chunks it keeps for GET rows. */
  kept: Buffer[];
}

async function runChunks(cluster: BenchCluster, sink: Sink, dirs: { sinkStore: string; sinkTmpfs: string | undefined }, tmpfsNode: (BenchNode & { clusterId: string }) | undefined): Promise<Transfer[]> {
  const out: Transfer[] = [];
  const record = (t: Transfer) => {
    logTransfer(t);
    out.push(t);
  };
  const target = cluster.nodes.find((n) => n.id === CHUNK_TARGET_NODE)!;
  const sinkUrls = new Map([
    [SINK_DISCARD_NODE, sink.httpDiscardUrl],
    [SINK_STORE_NODE, sink.httpStoreUrl],
  ]);
  if (sink.httpTmpfsUrl) sinkUrls.set(SINK_TMPFS_NODE, sink.httpTmpfsUrl);
  const http = new HttpChunkClient({
    clusterId: cluster.clusterId,
    clusterSecret: TEST_CLUSTER_SECRET,
    urlOf: (id) => sinkUrls.get(id) ?? cluster.nodes.find((n) => n.id === id)?.url,
  });
  // The tmpfs node is a cluster of its own: another cluster id, so another client.
  const tmpfsHttp = tmpfsNode
    ? new HttpChunkClient({ clusterId: tmpfsNode.clusterId, clusterSecret: TEST_CLUSTER_SECRET, urlOf: (id) => (id === TMPFS_NODE ? tmpfsNode.url : undefined) })
    : undefined;
  const wireOptions = { clusterId: cluster.clusterId, clusterSecret: TEST_CLUSTER_SECRET, chunkBytesMax: CHUNK_BYTES };
  const wire = new ChunkWireClient({ ...wireOptions, urlOf: (id) => sinkUrls.get(id) ?? cluster.nodes.find((n) => n.id === id)?.url });
  const tmpfsWire = tmpfsNode
    ? new ChunkWireClient({ ...wireOptions, clusterId: tmpfsNode.clusterId, urlOf: (id) => (id === TMPFS_NODE ? tmpfsNode.url : undefined) })
    : undefined;
  const grpcClient = new grpc.Client(sink.grpcAddress, grpc.credentials.createInsecure(), GRPC_OPTIONS);
  const receivers = new Map<string, Receiver>();
  const receiver = (proto: Proto, work: Work): Receiver | undefined => {
    if (work === 'discard') return undefined;
    const onNode = proto === 'node' || proto === 'nodefresh' || proto === 'nodehttp';
    const key = `${onNode ? 'node' : 'sink'}-${work}`;
    let r = receivers.get(key);
    if (!r) {
      const node = work === 'tmpfs' ? tmpfsNode! : target;
      r = onNode
        ? { key, pid: node.pid, dir: join(node.dataDir, 'chunks'), target: `node ${node.id} S3 port (production${work === 'tmpfs' ? ', data dir on tmpfs' : ''})`, kept: [] }
        : { key, pid: sink.pid, dir: work === 'tmpfs' ? dirs.sinkTmpfs! : dirs.sinkStore, target: `sink (${work === 'tmpfs' ? 'tmpfs store' : 'disk store'})`, kept: [] };
      receivers.set(key, r);
    }
    return r;
  };
  const conns = async (proto: Proto, work: Work, c: number): Promise<Conn[]> =>
    Promise.all(
      Array.from({ length: c }, async () => {
        if (proto === 'tcp') return tcpConn(sink.tcpPort, work);
        if (proto === 'grpc') return grpcConn(grpcClient, work);
        const sinkNode = work === 'store' ? SINK_STORE_NODE : work === 'tmpfs' ? SINK_TMPFS_NODE : SINK_DISCARD_NODE;
        if (proto === 'http') return httpConn(http, sinkNode);
        if (proto === 'wire') return wireConn(wire, sinkNode);
        if (proto === 'node' || proto === 'nodefresh') {
          const fresh = proto === 'nodefresh';
          return work === 'tmpfs' ? wireConn(tmpfsWire!, TMPFS_NODE, fresh) : wireConn(wire, target.id, fresh);
        }
        return work === 'tmpfs' ? httpConn(tmpfsHttp!, TMPFS_NODE) : httpConn(http, target.id);
      }),
    );
  const works: Work[] = tmpfsNode && sink.httpTmpfsUrl ? ['discard', 'store', 'tmpfs'] : ['discard', 'store'];
  // Discarding rows compare the protocols alone; storing rows compare the production paths
  // (wire and HTTP into a node) with raw TCP doing the same store work.
  const protos = (kind: 'put' | 'get', work: Work): Proto[] =>
    work === 'discard' ? ['tcp', 'wire', 'http', 'grpc'] : kind === 'put' ? ['tcp', 'node', 'nodehttp'] : ['tcp', 'node', 'nodefresh', 'nodehttp'];
  try {
    for (const kind of ['put', 'get'] as const) {
      for (const work of works) {
        for (const proto of protos(kind, work)) {
          for (const c of [1, 4]) {
            const rowId = `${kind}-${work}-${proto}-c${c}`;
            if (ONLY_CHUNK_ROWS && !ONLY_CHUNK_ROWS.some((p) => rowId.startsWith(p))) continue;
            const r = receiver(proto, work);
            if (kind === 'get' && r && r.kept.length === 0) {
              console.log(`${rowId}: skipped, no PUT row stored chunks in ${r.key}`);
              continue;
            }
            const cs = await conns(proto, work, c);
            try {
              const t = await chunkPhase({
                kind,
                proto,
                work,
                concurrency: c,
                stored: r?.kept ?? [newTail()],
                conns: cs,
                receiverPid: r?.pid ?? sink.pid,
                target: r?.target ?? `sink (${proto})`,
                includes:
                  proto === 'node'
                    ? `${INCLUDES[work][kind]}; chunk wire on the S3 port${kind === 'get' ? ', recycled buffers (repair)' : ''}`
                    : proto === 'nodefresh'
                      ? `${INCLUDES[work][kind]}; chunk wire, a new buffer per chunk (S3 read via a non-owner)`
                      : proto === 'nodehttp' ? `${INCLUDES[work][kind]}; fastify /_ts3gw/chunks + auth` : INCLUDES[work][kind],
                verify: work !== 'discard',
                ...(r && r.kept.length < GET_CHUNKS
                  ? {
                      onStored: (tail: Buffer) => {
                        if (r.kept.length < GET_CHUNKS) r.kept.push(tail);
                      },
                    }
                  : {}),
              });
              record(t);
            } finally {
              for (const conn of cs) conn.close();
            }
            // Bounded space (tmpfs is memory): only the GET rows' chunks outlive a PUT row.
            if (r && kind === 'put') await emptyStore(r.dir, new Set(r.kept.map(chunkId)));
          }
        }
      }
    }
  } finally {
    grpcClient.close();
    await wire.close();
    await tmpfsWire?.close();
    await http.close();
    await tmpfsHttp?.close();
  }
  for (const t of out) {
    const base = (work: Work | undefined) => out.find((x) => x.proto === 'tcp' && x.kind === t.kind && x.work === work && x.concurrency === t.concurrency)?.mibPerSec;
    if (t.proto === 'tcp') continue;
    const same = base(t.work);
    const discard = base('discard');
    if (same) t.fractionOfTcp = t.mibPerSec / same;
    if (discard) t.fractionOfTcpDiscard = t.mibPerSec / discard;
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
  const budgetMs =
    defs.length * 2 * ((WARMUP_SECONDS + SECONDS) * 1000 + 90_000) + (PARTS.includes('chunks') ? 40 * ((CHUNK_WARMUP_SECONDS + CHUNK_SECONDS) * 1000 + 20_000) : 0) + 180_000;
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
      const tmpfs = await tmpfsRoot();
      const dirs = { sinkStore: join(tempRoot, 'sink-store'), sinkTmpfs: tmpfs ? join(tmpfs, 'sink-store') : undefined };
      const sink = await startSink(dirs.sinkStore, dirs.sinkTmpfs);
      const tmpfsNode = tmpfs ? await startTmpfsNode(tmpfs) : undefined;
      if (tmpfs) console.log(`tmpfs rows: sink store and node ${TMPFS_NODE} (${tmpfsNode!.url}) under ${tmpfs}`);
      transfers = await runChunks(cluster, sink, dirs, tmpfsNode);
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
    const pct = (f?: number) => (f === undefined ? '-' : `${(100 * f).toFixed(0)}%`);
    console.log(
      table(
        ['transfer (4 MiB chunks)', 'MiB/s', 'of raw TCP', 'of TCP discard', 'p50/p99 ms', 'MiB', 'cpu ms/MiB recv/send', 'stopped', 'err', 'receiver work'],
        transfers.map((t) => [
          t.name,
          fmt(t.mibPerSec),
          pct(t.fractionOfTcp),
          pct(t.fractionOfTcpDiscard),
          t.p50Ms === undefined ? '-' : `${fmt(t.p50Ms, 1)} / ${fmt(t.p99Ms ?? Number.NaN, 1)}`,
          fmt(t.bytes / MiB, 0),
          `${fmt(t.receiverCpuMsPerMiB, 2)} / ${fmt(t.senderCpuMsPerMiB ?? Number.NaN, 2)}`,
          t.stoppedBy,
          t.errors === undefined ? '-' : String(t.errors),
          t.includes,
        ]),
      ),
    );
    // The issue's comparison: chunk transfer between two processes against plain loopback TCP
    // moving the same bytes. First the transfer alone (the production wire, both ends doing
    // nothing else, like the plain socket), then in production form (a real node: auth, the
    // store's hashing, writing and fsync), also against raw TCP doing that same store work.
    for (const t of transfers.filter((x) => x.proto === 'wire')) {
      const plain = t.fractionOfTcpDiscard ?? 0;
      console.log(
        `target: chunk transfer ${t.kind.toUpperCase()} c=${t.concurrency} (chunk wire, receiver doing what the plain socket's does) ${fmt(t.mibPerSec)} MiB/s = ` +
          `${(100 * plain).toFixed(0)}% of plain loopback TCP >= 50%: ${plain >= TARGET_FRACTION ? 'met' : 'NOT met'}`,
      );
    }
    // In production form the receiving side also hashes and (PUT) writes + fsyncs every chunk:
    // work plain loopback TCP does not do. Compared with raw TCP doing that same work, and shown
    // against plain loopback for the record.
    for (const t of transfers.filter((x) => x.proto === 'node' || x.proto === 'nodefresh')) {
      const same = t.fractionOfTcp ?? 0;
      console.log(
        `production: ${t.name.replace(/\s+/g, ' ')} ${fmt(t.mibPerSec)} MiB/s = ${(100 * same).toFixed(0)}% of raw TCP doing the same store work on the same medium ` +
          `>= 50%: ${same >= TARGET_FRACTION ? 'met' : 'NOT met'}; ${(100 * (t.fractionOfTcpDiscard ?? 0)).toFixed(0)}% of plain loopback TCP`,
      );
    }
    for (const kind of ['put', 'get'] as const) {
      for (const work of ['discard', 'store'] as const) {
        for (const c of [1, 4]) {
          const row = (proto: Proto) => transfers.find((x) => x.proto === proto && x.kind === kind && x.work === work && x.concurrency === c);
          const h = row('http');
          const g = row('grpc');
          const w = row('wire');
          if (w && h) console.log(`wire vs http: ${kind.toUpperCase()} ${work} c=${c}: chunk wire ${fmt(w.mibPerSec)} MiB/s, HTTP/undici ${fmt(h.mibPerSec)} MiB/s -> ${(w.mibPerSec / h.mibPerSec).toFixed(2)}x`);
          if (h && g) {
            console.log(
              `http vs grpc: ${kind.toUpperCase()} ${work} c=${c}: HTTP/undici ${fmt(h.mibPerSec)} MiB/s, gRPC/grpc-js ${fmt(g.mibPerSec)} MiB/s -> ${h.mibPerSec >= g.mibPerSec ? 'HTTP' : 'gRPC'} faster by ${(Math.max(h.mibPerSec, g.mibPerSec) / Math.min(h.mibPerSec, g.mibPerSec)).toFixed(2)}x`,
            );
          }
        }
      }
    }
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
      chunkRowSeconds: CHUNK_SECONDS,
      chunkRowWarmupSeconds: CHUNK_WARMUP_SECONDS,
      chunkRowBytesMax: CHUNK_ROW_BYTES_MAX,
      grpcPieceBytes: GRPC_PIECE_BYTES,
      chunkBytes: CHUNK_BYTES,
      parts: PARTS,
      single: 'node src/main.ts, fsync on (default), log level warn',
      cluster: `${NODES} founding nodes (static TS3GW_PEERS, default Raft timing), replication as reported; S3 requests round-robin over the nodes`,
      client: 'as npm run bench (AWS SDK v3, keep-alive, maxAttempts 1); chunks: src/forward/chunk-wire.ts ChunkWireClient (node wire, chunk wire), chunk-client.ts HttpChunkClient (undici Pool)',
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
