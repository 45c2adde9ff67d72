/**
 * `npm run bench`: ts3gw against s3rver on this machine, each server in its own process, one load
 * generator (this process, AWS SDK v3) with the same client configuration for both.
 *
 *   rows    4 KiB PUT/GET ops/s at concurrency 1, 16, 64; 64 MiB PUT/GET MiB/s at concurrency 1, 4.
 *           The 4 KiB GET rows also run against a no-op ceiling (test/bench/noop-s3.ts: plain
 *           node:http answering from memory) with the same client: column "of no-op".
 *           Each row: warm-up, then BENCH_SECONDS (or BENCH_MAX_OPS ops, whichever first; a 64 MiB
 *           row goes on until BENCH_LARGE_MIN_OPS_PER_WORKER ops per worker), servers
 *           alternating first/second per row. Sampled GETs are compared byte for byte.
 *   memory  a fresh ts3gw; one BENCH_BIG_GIB GiB single-part PUT per payload mode, each followed by
 *           a streamed GET (sha256 compared), while sampling the server's VmRSS every 100 ms.
 *
 * Environment: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1), BENCH_MAX_OPS (100000 small / 2000
 * large), BENCH_LARGE_MIN_OPS_PER_WORKER (4), BENCH_VERIFY_EVERY (8), BENCH_BIG_GIB (5), BENCH_SKIP_BIG=1, BENCH_BIG_MODES
 * (trailer,signed; also: unsigned), BENCH_ROWS (comma list of row ids to run, default all).
 * Output: a table on stdout and bench-results/s3-bench-<timestamp>.json.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startServer } from '../helpers/server.ts';
import { signedStreamingPut } from './signed-streaming.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
export const KiB = 1024;
export const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// ---------------------------------------------------------------------------------- settings

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return n;
}

export const SECONDS = envNumber('BENCH_SECONDS', 5);
export const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', Math.min(1, SECONDS));
const MAX_OPS_SMALL = envNumber('BENCH_MAX_OPS', 100_000);
const MAX_OPS_LARGE = envNumber('BENCH_MAX_OPS', 2_000);
/** Large-object rows measure at least this many ops per worker (past BENCH_SECONDS if need be). */
const LARGE_MIN_OPS_PER_WORKER = envNumber('BENCH_LARGE_MIN_OPS_PER_WORKER', 4);
const VERIFY_EVERY = Math.floor(envNumber('BENCH_VERIFY_EVERY', 8));
const BIG_GIB = envNumber('BENCH_BIG_GIB', 5);
const SKIP_BIG = process.env['BENCH_SKIP_BIG'] === '1';
const BIG_MODES = (process.env['BENCH_BIG_MODES'] ?? 'trailer,signed').split(',').filter(Boolean);
const ONLY_ROWS = process.env['BENCH_ROWS']?.split(',').filter(Boolean);
/** A single request making no progress for this long fails (socket idle timeout). */
const REQUEST_IDLE_TIMEOUT_MS = 120_000;
/** A row's request taking longer than this in total fails. */
const ROW_REQUEST_TIMEOUT_MS = 300_000;
/** Rows stop early after this many failed operations. */
const MAX_ERRORS_PER_ROW = 20;
const SMALL_SIZE = 4 * KiB;
const LARGE_SIZE = 64 * MiB;
const SMALL_GET_OBJECTS = 256;
const LARGE_GET_OBJECTS = 4;
/** Bytes per push of the big generated body (what fs.createReadStream hands out). */
const BIG_PIECE = 64 * KiB;
export const BUCKET = 'bench';
const REGION = 'us-east-1';
export const TS3_KEY = 'BENCHACCESSKEY';
export const TS3_SECRET = 'bench-secret-key-0123456789';

// ---------------------------------------------------------------------------------- processes

export interface BenchServer {
  name: 'ts3gw' | 's3rver' | 'ceiling';
  url: string;
  pid: number;
  /** Every process serving it (a cluster's nodes), for CPU accounting; [pid] when absent. */
  pids?: number[];
  dataDir: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

/** Everything to undo on the way out, newest first. */
export const cleanups: Array<() => Promise<void>> = [];

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (err) {
      console.error('cleanup failed:', err);
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`, resolving once the process has exited. */
export async function stopProcess(proc: ChildProcess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startTs3gw(dataDir: string): Promise<BenchServer> {
  const server = await startServer({
    dataDir,
    env: { TS3GW_ROOT_ACCESS_KEY: TS3_KEY, TS3GW_ROOT_SECRET_KEY: TS3_SECRET, TS3GW_LOG_LEVEL: 'warn' },
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopProcess(server.proc);
  };
  cleanups.push(stop);
  return { name: 'ts3gw', url: server.url, pid: server.proc.pid!, dataDir, accessKeyId: TS3_KEY, secretAccessKey: TS3_SECRET, stop };
}

async function startS3rver(dataDir: string): Promise<BenchServer> {
  await mkdir(dataDir, { recursive: true });
  return startRunner('s3rver', [join(ROOT, 'test/bench/s3rver-runner.ts'), dataDir], 's3rver is serving S3', dataDir);
}

/** The no-op ceiling (test/bench/noop-s3.ts): plain node:http, nothing behind it. */
async function startCeiling(): Promise<BenchServer> {
  return startRunner('ceiling', [join(ROOT, 'test/bench/noop-s3.ts')], 'no-op S3 is serving', '');
}

/** Starts a bench server script in its own process; resolves with its URL once it prints `readyText`. */
async function startRunner(name: 's3rver' | 'ceiling', args: string[], readyText: string, dataDir: string): Promise<BenchServer> {
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopProcess(proc);
  };
  cleanups.push(stop);
  const output: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output.join('\n')}`)), 30_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      output.push(line);
      const m = /http:\/\/\S+/.exec(line);
      if (m && line.includes(readyText)) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => output.push(line));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${output.join('\n')}`));
    });
  });
  return { name, url, pid: proc.pid!, dataDir, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', stop };
}

/** user+system CPU seconds of a process so far, from /proc/<pid>/stat. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Busy CPU seconds of the whole machine so far (all CPUs), from /proc/stat. */
function machineBusyCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLK_TCK;
}

/** VmRSS and VmHWM of a process, in bytes. */
function processMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

// ---------------------------------------------------------------------------------- clients

/** The one client configuration both servers get. */
function clientConfig(server: BenchServer, requestTimeoutMs: number): S3ClientConfig {
  return {
    endpoint: server.url,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
      connectionTimeout: 10_000,
      // socketTimeout is the idle bound; requestTimeout bounds the whole request.
      socketTimeout: REQUEST_IDLE_TIMEOUT_MS,
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
    }),
    // Request checksums stay at the SDK default (WHEN_SUPPORTED: CRC32 in a header for the
    // in-memory bodies of the rows). Response validation is off for both servers: s3rver sends no
    // checksums, so validating only ts3gw's would load the client unevenly; the bench compares
    // bytes itself instead.
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export function makeClient(server: BenchServer, overrides: Partial<S3ClientConfig> = {}, requestTimeoutMs = ROW_REQUEST_TIMEOUT_MS): S3Client {
  return new S3Client({ ...clientConfig(server, requestTimeoutMs), ...overrides });
}

/** Records the x-amz-content-sha256 / x-amz-trailer the SDK actually sent on the wire. */
function recordPayloadMode(client: S3Client, into: { mode?: string; trailer?: string }): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      into.mode = request.headers?.['x-amz-content-sha256'];
      into.trailer = request.headers?.['x-amz-trailer'];
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'benchRecordPayloadMode' },
  );
}

// ---------------------------------------------------------------------------------- payloads

const NONCE = randomBytes(8);
let stampCounter = 0n;

/** Writes a unique 16-byte stamp (run nonce + counter) every 64 KiB, so no two payloads share a
 *  chunk: ts3gw deduplicates content-addressed chunks, and identical bodies would not be written. */
function stamp(buf: Buffer): void {
  for (let off = 0; off + 16 <= buf.length; off += 64 * KiB) {
    NONCE.copy(buf, off);
    buf.writeBigUInt64BE(stampCounter++, off + 8);
  }
}

export function freshPayload(size: number): Buffer {
  const buf = randomBytes(size);
  stamp(buf);
  return buf;
}

async function drain(body: unknown, expected: Buffer | undefined, expectedLength: number): Promise<void> {
  let off = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    if (expected && Buffer.compare(chunk, expected.subarray(off, off + chunk.length)) !== 0) {
      throw new VerifyError(`bytes differ in [${off}, ${off + chunk.length})`);
    }
    off += chunk.length;
  }
  if (off !== expectedLength) throw new VerifyError(`got ${off} bytes, expected ${expectedLength}`);
}

class VerifyError extends Error {}

// ---------------------------------------------------------------------------------- rows

export interface Measured {
  server: string;
  ops: number;
  bytes: number;
  seconds: number;
  opsPerSec: number;
  mibPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  verified: number;
  verifyFailures: number;
  firstError?: string;
  stoppedBy: 'time' | 'count' | 'errors';
  serverCpuSeconds: number;
  serverCpuMsPerOp: number;
  benchCpuSeconds: number;
  /** CPU used by everything else on the machine during the measured run, as a share of all CPUs:
   *  other engineers' tests, the idle server, the kernel. A noise indicator. */
  otherCpuShare: number;
}

export interface RowSpec {
  id: string;
  label: string;
  unit: 'ops/s' | 'MiB/s';
  concurrency: number;
  maxOps: number;
  /**
   * The measured run goes on past its deadline until this many ops finished, so that a row of
   * slow ops (64 MiB at c=4: seconds each) is not a handful of samples.
   */
  minOps?: number;
  /** Per server: prepare, then return the op a worker runs (op index i counts per worker). */
  prepare(server: BenchServer, client: S3Client): Promise<(worker: number, i: number, verify: boolean) => Promise<{ bytes: number; verified: boolean }>>;
  /** After the measured run (e.g. read back what was written). */
  check?(server: BenchServer, client: S3Client): Promise<number>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function measure(spec: RowSpec, server: BenchServer, client: S3Client): Promise<Measured> {
  const op = await spec.prepare(server, client);
  const latencies: number[] = [];
  let ops = 0;
  let bytes = 0;
  let errors = 0;
  let verified = 0;
  let verifyFailures = 0;
  let firstError: string | undefined;
  let stoppedBy: Measured['stoppedBy'] = 'time';
  // Op indexes per worker (keys derive from them); `measured` counts only the measured run, whose
  // first op and every VERIFY_EVERY-th after it are verified.
  const counters = new Array<number>(spec.concurrency).fill(0);
  const measured = new Array<number>(spec.concurrency).fill(0);

  const runOp = async (w: number): Promise<void> => {
    const i = counters[w]!++;
    const verify = measured[w]!++ % VERIFY_EVERY === 0;
    const t0 = performance.now();
    try {
      const r = await op(w, i, verify);
      latencies.push(performance.now() - t0);
      ops++;
      bytes += r.bytes;
      if (r.verified) verified++;
    } catch (err) {
      errors++;
      if (err instanceof VerifyError) verifyFailures++;
      firstError ??= `${(err as Error).name}: ${(err as Error).message}`;
    }
  };

  // Warm-up: every worker runs until the warm-up deadline, then all start the measured run together.
  const warmupEnd = performance.now() + WARMUP_SECONDS * 1000;
  await Promise.all(
    counters.map(async (_, w) => {
      do await op(w, counters[w]!++, false).catch(() => undefined);
      while (performance.now() < warmupEnd);
    }),
  );

  const serverCpu = () => (server.pids ?? [server.pid]).reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const cpu0 = serverCpu();
  const bench0 = process.cpuUsage();
  const machine0 = machineBusyCpuSeconds();
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  await Promise.all(
    counters.map(async (_, w) => {
      for (;;) {
        if (performance.now() >= deadline && ops + errors >= (spec.minOps ?? 0)) return;
        if (ops + errors >= spec.maxOps) {
          stoppedBy = 'count';
          return;
        }
        if (errors >= MAX_ERRORS_PER_ROW) {
          stoppedBy = 'errors';
          return;
        }
        await runOp(w);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const serverCpuSeconds = serverCpu() - cpu0;
  const benchCpu = process.cpuUsage(bench0);
  const machineCpuSeconds = machineBusyCpuSeconds() - machine0;
  latencies.sort((a, b) => a - b);
  if (spec.check) verified += await spec.check(server, client);
  const m: Measured = {
    server: server.name,
    ops,
    bytes,
    seconds,
    opsPerSec: ops / seconds,
    mibPerSec: bytes / MiB / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    errors,
    verified,
    verifyFailures,
    stoppedBy,
    serverCpuSeconds,
    serverCpuMsPerOp: ops > 0 ? (serverCpuSeconds * 1000) / ops : Number.NaN,
    benchCpuSeconds: (benchCpu.user + benchCpu.system) / 1e6,
    otherCpuShare: Math.max(0, machineCpuSeconds - serverCpuSeconds - (benchCpu.user + benchCpu.system) / 1e6) / (seconds * os.cpus().length),
  };
  if (firstError) m.firstError = firstError;
  return m;
}

/** Rows of PUTs: each worker owns one buffer, re-stamped before every PUT; the last body each
 *  worker wrote is read back after the row and compared. */
export function putRow(id: string, label: string, size: number, concurrency: number, keyOf: (w: number, i: number) => string): RowSpec {
  const maxOps = size <= 1 * MiB ? MAX_OPS_SMALL : MAX_OPS_LARGE;
  let bodies: Buffer[] = [];
  let last: Array<string | undefined> = [];
  return {
    id,
    label,
    unit: size <= 1 * MiB ? 'ops/s' : 'MiB/s',
    concurrency,
    maxOps,
    minOps: size <= 1 * MiB ? 0 : LARGE_MIN_OPS_PER_WORKER * concurrency,
    async prepare(_server, s3) {
      if (bodies.length !== concurrency) bodies = Array.from({ length: concurrency }, () => freshPayload(size));
      last = new Array(concurrency).fill(undefined);
      return async (w, i) => {
        const body = bodies[w]!;
        stamp(body);
        const key = keyOf(w, i);
        last[w] = undefined;
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: body.length }));
        last[w] = key;
        return { bytes: body.length, verified: false };
      };
    },
    async check(_server, s3) {
      let n = 0;
      for (let w = 0; w < concurrency; w++) {
        const key = last[w];
        if (key === undefined) continue;
        const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        await drain(res.Body, bodies[w], bodies[w]!.length);
        n++;
      }
      return n;
    },
  };
}

export function getRow(id: string, label: string, size: number, concurrency: number, objects: number): RowSpec {
  const maxOps = size <= 1 * MiB ? MAX_OPS_SMALL : MAX_OPS_LARGE;
  const prefix = `get-${size}`;
  const expected: Buffer[] = [];
  const populated = new Set<string>();
  return {
    id,
    label,
    unit: size <= 1 * MiB ? 'ops/s' : 'MiB/s',
    concurrency,
    maxOps,
    minOps: size <= 1 * MiB ? 0 : LARGE_MIN_OPS_PER_WORKER * concurrency,
    async prepare(server, s3) {
      while (expected.length < objects) expected.push(freshPayload(size));
      if (!populated.has(server.name)) {
        for (let n = 0; n < objects; n++) {
          await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${n}`, Body: expected[n], ContentLength: size }));
        }
        populated.add(server.name);
      }
      return async (w, i, verify) => {
        const n = (w * 7 + i) % objects;
        const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${n}` }));
        await drain(res.Body, verify ? expected[n] : undefined, size);
        return { bytes: size, verified: verify };
      };
    },
  };
}

function allRows(): RowSpec[] {
  const rows: RowSpec[] = [];
  for (const c of [1, 16, 64]) rows.push(putRow(`put4k-c${c}`, `PUT 4 KiB   c=${c}`, SMALL_SIZE, c, (w, i) => `put4k/c${c}/w${w}/${i}`));
  for (const c of [1, 16, 64]) rows.push(getRow(`get4k-c${c}`, `GET 4 KiB   c=${c}`, SMALL_SIZE, c, SMALL_GET_OBJECTS));
  // 64 MiB PUTs overwrite a few keys per worker so disk use stays bounded for long runs.
  for (const c of [1, 4]) rows.push(putRow(`put64m-c${c}`, `PUT 64 MiB  c=${c}`, LARGE_SIZE, c, (w, i) => `put64m/c${c}/w${w}/${i % 4}`));
  for (const c of [1, 4]) rows.push(getRow(`get64m-c${c}`, `GET 64 MiB  c=${c}`, LARGE_SIZE, c, LARGE_GET_OBJECTS));
  return ONLY_ROWS ? rows.filter((r) => ONLY_ROWS.includes(r.id)) : rows;
}

// ---------------------------------------------------------------------------------- big object

/** Deterministic-per-run bytes of a big object, produced on the fly and hashed as produced. */
class BigBody {
  readonly size: number;
  readonly #base = randomBytes(1 * MiB);
  readonly #nonce = randomBytes(8);
  readonly #hash = createHash('sha256');
  #pos = 0;

  constructor(size: number) {
    this.size = size;
  }

  get remaining(): number {
    return this.size - this.#pos;
  }

  /** Exactly min(n, remaining) next bytes. */
  next(n: number): Buffer {
    n = Math.min(n, this.remaining);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const at = (this.#pos + filled) % this.#base.length;
      filled += this.#base.copy(out, filled, at, at + Math.min(n - filled, this.#base.length - at));
    }
    // A 16-byte stamp (nonce + 64 KiB block index) at every 64 KiB boundary: no chunk repeats.
    const stampBytes = Buffer.allocUnsafe(16);
    this.#nonce.copy(stampBytes, 0);
    for (let b = Math.ceil(this.#pos / (64 * KiB)) * 64 * KiB; b < this.#pos + n; b += 64 * KiB) {
      stampBytes.writeBigUInt64BE(BigInt(b / (64 * KiB)), 8);
      stampBytes.copy(out, b - this.#pos, 0, Math.min(16, this.#pos + n - b));
    }
    this.#pos += n;
    this.#hash.update(out);
    return out;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

/** A Readable that pulls BIG_PIECE-byte pieces from a BigBody. */
function bigReadable(body: BigBody): Readable {
  return new Readable({
    highWaterMark: BIG_PIECE,
    read() {
      if (body.remaining === 0) this.push(null);
      else this.push(body.next(BIG_PIECE));
    },
  });
}

interface BigPhase {
  phase: string;
  /** What went on the wire: x-amz-content-sha256 (and x-amz-trailer). */
  payloadMode?: string;
  trailer?: string;
  sizeBytes: number;
  seconds: number;
  mibPerSec: number;
  peakSampledRssBytes: number;
  status: 'ok' | 'failed';
  error?: string;
  sha256Match?: boolean;
}

interface BigResult {
  skipped?: string;
  sizeBytes?: number;
  phases: BigPhase[];
  /** Kernel high-water mark of the server's RSS over its whole life (started fresh for this). */
  serverVmHwmBytes?: number;
  peakSampledRssBytes?: number;
  serverRssAfterStartBytes?: number;
  dataDirBytesAfterDelete?: number;
  dataDirBytesBeforeDelete?: number;
  notes: string[];
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    try {
      total += (await stat(join(entry.parentPath, entry.name))).size;
    } catch {
      // raced with a delete
    }
  }
  return total;
}

async function runBig(tempRoot: string): Promise<BigResult> {
  const notes = ['Multipart upload: measured by npm run bench:multipart (lib-storage Upload of a huge object, server peak RSS).'];
  if (SKIP_BIG) return { skipped: 'BENCH_SKIP_BIG=1', phases: [], notes };
  const size = Math.round(BIG_GIB * GiB);
  const needBytes = Math.max(12 * GiB, 2 * size + 2 * GiB);
  const fsStats = await statfs(tempRoot);
  const free = fsStats.bavail * fsStats.bsize;
  if (free < needBytes) {
    const msg = `only ${(free / GiB).toFixed(1)} GiB free in ${tempRoot}, need ${(needBytes / GiB).toFixed(1)} GiB`;
    console.log(`big object: skipped: ${msg}`);
    return { skipped: msg, phases: [], notes };
  }

  const server = await startTs3gw(join(tempRoot, 'ts3gw-big'));
  const result: BigResult = { sizeBytes: size, phases: [], notes };
  try {
    // Whole-phase deadline: no slower than 5 MiB/s, plus a minute.
    const phaseBudgetMs = (size / (5 * MiB)) * 1000 + 60_000;
    const s3 = makeClient(server, {}, phaseBudgetMs);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    result.serverRssAfterStartBytes = processMemory(server.pid).rss;
    let peakAll = 0;
    let peakPhase = 0;
    const sampler = setInterval(() => {
      try {
        const { rss } = processMemory(server.pid);
        peakPhase = Math.max(peakPhase, rss);
        peakAll = Math.max(peakAll, rss);
      } catch {
        // process gone; the phase will fail on its own
      }
    }, 100);
    const key = 'big/object';
    try {
      let lastHash: string | undefined;
      const timed = async (phase: string, fn: (signal: AbortSignal) => Promise<Partial<BigPhase>>): Promise<BigPhase> => {
        peakPhase = processMemory(server.pid).rss;
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(new Error(`${phase}: over ${phaseBudgetMs} ms`)), phaseBudgetMs);
        const t0 = performance.now();
        let out: BigPhase;
        try {
          const extra = await fn(abort.signal);
          const seconds = (performance.now() - t0) / 1000;
          out = { phase, sizeBytes: size, seconds, mibPerSec: size / MiB / seconds, peakSampledRssBytes: peakPhase, status: 'ok', ...extra };
        } catch (err) {
          const seconds = (performance.now() - t0) / 1000;
          out = { phase, sizeBytes: size, seconds, mibPerSec: Number.NaN, peakSampledRssBytes: peakPhase, status: 'failed', error: String(err) };
        } finally {
          clearTimeout(timer);
        }
        console.log(
          `big object: ${phase}: ${out.status}${out.error ? ` (${out.error})` : ''}, ${out.seconds.toFixed(1)} s, ` +
            `${out.mibPerSec.toFixed(1)} MiB/s, server peak RSS ${(out.peakSampledRssBytes / MiB).toFixed(0)} MiB` +
            (out.payloadMode ? `, payload ${out.payloadMode}${out.trailer ? ` + trailer ${out.trailer}` : ''}` : ''),
        );
        result.phases.push(out);
        return out;
      };
      const get = (label: string) =>
        timed(label, async (signal) => {
          const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal: signal });
          const hash = createHash('sha256');
          let n = 0;
          for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
            hash.update(chunk);
            n += chunk.length;
          }
          const digest = hash.digest('hex');
          if (n !== size || digest !== lastHash) throw new VerifyError(`GET returned ${n} bytes with sha256 ${digest}, expected ${size} bytes with ${lastHash}`);
          return { sha256Match: true };
        });

      for (const mode of BIG_MODES) {
        let put: BigPhase;
        if (mode === 'trailer' || mode === 'unsigned') {
          const body = new BigBody(size);
          put = await timed(`PUT ${BIG_GIB} GiB (SDK, ${mode === 'trailer' ? 'default checksum' : 'requestChecksumCalculation WHEN_REQUIRED'})`, async (signal) => {
            const client =
              mode === 'trailer'
                ? makeClient(server, {}, phaseBudgetMs)
                : makeClient(server, { requestChecksumCalculation: 'WHEN_REQUIRED' }, phaseBudgetMs);
            const seen: { mode?: string; trailer?: string } = {};
            recordPayloadMode(client, seen);
            await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bigReadable(body), ContentLength: size }), {
              abortSignal: signal,
            });
            client.destroy();
            const r: Partial<BigPhase> = {};
            if (seen.mode) r.payloadMode = seen.mode;
            if (seen.trailer) r.trailer = seen.trailer;
            return r;
          });
          lastHash = body.remaining === 0 ? body.digest() : undefined;
        } else if (mode === 'signed') {
          const body = new BigBody(size);
          put = await timed(`PUT ${BIG_GIB} GiB (hand-signed aws-chunked)`, async () => {
            const res = await signedStreamingPut({
              endpoint: server.url,
              bucket: BUCKET,
              key,
              accessKeyId: server.accessKeyId,
              secretAccessKey: server.secretAccessKey,
              region: REGION,
              sizeBytes: size,
              chunkBytes: BIG_PIECE,
              next: (n) => body.next(n),
              timeoutMs: REQUEST_IDLE_TIMEOUT_MS,
            });
            if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 300)}`);
            return { payloadMode: res.mode };
          });
          lastHash = body.remaining === 0 ? body.digest() : undefined;
        } else {
          throw new Error(`unknown BENCH_BIG_MODES entry ${mode} (trailer, signed, unsigned)`);
        }
        if (put.status === 'ok') await get(`GET ${BIG_GIB} GiB after ${mode} PUT (streamed, sha256 compared)`);
      }
    } finally {
      clearInterval(sampler);
    }
    result.peakSampledRssBytes = peakAll;
    result.serverVmHwmBytes = processMemory(server.pid).hwm;
    try {
      await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      result.dataDirBytesBeforeDelete = await dirBytes(server.dataDir);
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      await new Promise((r) => setTimeout(r, 2_000));
      result.dataDirBytesAfterDelete = await dirBytes(server.dataDir);
    } catch (err) {
      notes.push(`delete step: ${String(err)}`);
    }
    s3.destroy();
  } finally {
    await server.stop();
    await rm(server.dataDir, { recursive: true, force: true });
  }
  return result;
}

// ---------------------------------------------------------------------------------- output

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  return n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------- main

interface RowResult {
  id: string;
  label: string;
  unit: string;
  concurrency: number;
  order: string[];
  ts3gw?: Measured;
  s3rver?: Measured;
  ratio?: number;
  /** Small GET rows: the no-op ceiling, and ts3gw's share of it. */
  ceiling?: Measured;
  ofCeiling?: number;
}

/** Rows also measured against the no-op ceiling (the issue's GET target is a share of it). */
const CEILING_ROWS = new Set(['get4k-c1', 'get4k-c16', 'get4k-c64']);

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadavgAtStart = os.loadavg();
  const rows = allRows();
  // Time bound for the whole run; past it everything started is stopped and the run fails.
  const budgetMs =
    rows.length * 2 * ((WARMUP_SECONDS + SECONDS) * 1000 + 60_000) + (SKIP_BIG ? 0 : BIG_MODES.length * 2 * ((BIG_GIB * GiB) / (5 * MiB)) * 1000) + 180_000;
  const watchdog = setTimeout(() => {
    console.error(`bench: over its time budget of ${Math.round(budgetMs / 1000)} s; stopping`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`bench: ${signal}; stopping servers`);
      void runCleanups().finally(() => process.exit(130));
    });
  }

  const tempRoot = await mkdtemp(join(os.tmpdir(), 'ts3gw-bench-'));
  cleanups.push(() => rm(tempRoot, { recursive: true, force: true }));
  const results: RowResult[] = [];
  let big: BigResult = { phases: [], notes: [] };
  try {
    console.log(
      `bench: ${SECONDS} s per row after ${WARMUP_SECONDS} s warm-up, verify every ${VERIFY_EVERY}th GET; ` +
        `${os.cpus().length} CPUs, node ${process.version}, load average ${loadavgAtStart.map((l) => l.toFixed(2)).join(' ')}, temp ${tempRoot}`,
    );
    if (rows.length > 0) {
      const ts3 = await startTs3gw(join(tempRoot, 'ts3gw'));
      const s3r = await startS3rver(join(tempRoot, 's3rver'));
      const ceiling = rows.some((r) => CEILING_ROWS.has(r.id)) ? await startCeiling() : undefined;
      const clients = new Map<string, S3Client>([
        ['ts3gw', makeClient(ts3)],
        ['s3rver', makeClient(s3r)],
        ...(ceiling ? [['ceiling', makeClient(ceiling)] as [string, S3Client]] : []),
      ]);
      for (const [, c] of clients) await c.send(new CreateBucketCommand({ Bucket: BUCKET }));
      for (const [index, spec] of rows.entries()) {
        const order = index % 2 === 0 ? [ts3, s3r] : [s3r, ts3];
        const row: RowResult = { id: spec.id, label: spec.label, unit: spec.unit, concurrency: spec.concurrency, order: order.map((s) => s.name) };
        for (const server of order) {
          const client = clients.get(server.name)!;
          const m = await measure(spec, server, client);
          row[server.name] = m;
          console.log(
            `${spec.label.padEnd(16)} ${server.name.padEnd(6)} ${fmt(spec.unit === 'ops/s' ? m.opsPerSec : m.mibPerSec).padStart(8)} ${spec.unit}` +
              `  p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms  ops ${m.ops}  errors ${m.errors}` +
              `  server cpu ${fmt(m.serverCpuMsPerOp, 3)} ms/op  bench cpu ${fmt((100 * m.benchCpuSeconds) / m.seconds, 0)}%  others ${fmt(100 * m.otherCpuShare, 0)}% of machine${m.firstError ? `  first error: ${m.firstError}` : ''}`,
          );
        }
        if (ceiling && CEILING_ROWS.has(spec.id)) {
          const m = await measure(spec, ceiling, clients.get('ceiling')!);
          row.ceiling = m;
          console.log(`${spec.label.padEnd(16)} ${'no-op'.padEnd(6)} ${fmt(m.opsPerSec).padStart(8)} ${spec.unit}  p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms  ops ${m.ops}  errors ${m.errors}`);
        }
        if (row.ts3gw && row.s3rver) {
          const v = (m: Measured) => (spec.unit === 'ops/s' ? m.opsPerSec : m.mibPerSec);
          row.ratio = v(row.ts3gw) / v(row.s3rver);
        }
        if (row.ts3gw && row.ceiling) row.ofCeiling = row.ts3gw.opsPerSec / row.ceiling.opsPerSec;
        results.push(row);
      }
      for (const [, c] of clients) c.destroy();
      await ts3.stop();
      await s3r.stop();
      await ceiling?.stop();
      await rm(join(tempRoot, 'ts3gw'), { recursive: true, force: true });
      await rm(join(tempRoot, 's3rver'), { recursive: true, force: true });
    }
    big = await runBig(tempRoot);
  } finally {
    await runCleanups();
    clearTimeout(watchdog);
  }

  // ------------------------------------------------------------------ report
  const header = ['row', 'unit', 'ts3gw', 's3rver', 'ratio', 'no-op', 'of no-op', 'ts3gw p50/p99 ms', 's3rver p50/p99 ms', 'cpu ms/op ts3gw/s3rver', 'others cpu %', 'err', 'verified'];
  const lines = results.map((r) => {
    const v = (m?: Measured) => (m ? fmt(r.unit === 'ops/s' ? m.opsPerSec : m.mibPerSec) : '-');
    const lat = (m?: Measured) => (m ? `${fmt(m.p50Ms, 2)} / ${fmt(m.p99Ms, 2)}` : '-');
    return [
      r.label,
      r.unit,
      v(r.ts3gw),
      v(r.s3rver),
      r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
      v(r.ceiling),
      r.ofCeiling === undefined ? '-' : `${(100 * r.ofCeiling).toFixed(0)}%`,
      lat(r.ts3gw),
      lat(r.s3rver),
      `${fmt(r.ts3gw?.serverCpuMsPerOp ?? Number.NaN, 3)} / ${fmt(r.s3rver?.serverCpuMsPerOp ?? Number.NaN, 3)}`,
      `${fmt(100 * (r.ts3gw?.otherCpuShare ?? Number.NaN), 0)} / ${fmt(100 * (r.s3rver?.otherCpuShare ?? Number.NaN), 0)}`,
      `${r.ts3gw?.errors ?? '-'}/${r.s3rver?.errors ?? '-'}`,
      `${r.ts3gw?.verified ?? '-'}/${r.s3rver?.verified ?? '-'}`,
    ];
  });
  console.log('');
  console.log(table(header, lines));
  console.log('');
  if (big.skipped) console.log(`big object: skipped (${big.skipped})`);
  else if (big.phases.length > 0) {
    console.log(
      table(
        ['big object (ts3gw, fresh process)', 'payload mode', 'MiB/s', 'seconds', 'peak RSS MiB', 'status'],
        big.phases.map((p) => [
          p.phase,
          p.payloadMode ? `${p.payloadMode}${p.trailer ? ` (+${p.trailer})` : ''}` : '-',
          fmt(p.mibPerSec),
          fmt(p.seconds),
          fmt(p.peakSampledRssBytes / MiB, 0),
          p.status + (p.error ? `: ${p.error.slice(0, 120)}` : ''),
        ]),
      ),
    );
    const peak = big.peakSampledRssBytes ?? 0;
    console.log(
      `ts3gw peak RSS: sampled ${fmt(peak / MiB, 0)} MiB, VmHWM ${fmt((big.serverVmHwmBytes ?? 0) / MiB, 0)} MiB ` +
        `(after start ${fmt((big.serverRssAfterStartBytes ?? 0) / MiB, 0)} MiB); target < 256 MiB: ${Math.max(peak, big.serverVmHwmBytes ?? 0) < 256 * MiB ? 'met' : 'NOT met'}`,
    );
    if (big.dataDirBytesAfterDelete !== undefined) {
      console.log(
        `ts3gw data dir: ${fmt((big.dataDirBytesBeforeDelete ?? 0) / MiB, 0)} MiB before delete, ${fmt(big.dataDirBytesAfterDelete / MiB, 0)} MiB 2 s after delete`,
      );
    }
  }
  for (const note of big.notes) console.log(`note: ${note}`);

  const cpus = os.cpus();
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus.length,
      loadavgAtStart,
      cpuModel: cpus[0]?.model,
      totalMemBytes: os.totalmem(),
      loadavgAtEnd: os.loadavg(),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
    },
    commit: git(['rev-parse', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    settings: {
      seconds: SECONDS,
      warmupSeconds: WARMUP_SECONDS,
      maxOpsSmall: MAX_OPS_SMALL,
      maxOpsLarge: MAX_OPS_LARGE,
      verifyEvery: VERIFY_EVERY,
      bigGiB: BIG_GIB,
      bigModes: BIG_MODES,
      client:
        '@aws-sdk/client-s3, path-style, maxAttempts 1, keep-alive agent maxSockets 256, request checksums SDK default (CRC32 header), responseChecksumValidation WHEN_REQUIRED',
      ts3gw: 'node src/main.ts, fsync on (default), log level warn',
      s3rver: 's3rver 3.7.1 in its own process (test/bench/s3rver-runner.ts), silent',
      ceiling: 'small GET rows only: test/bench/noop-s3.ts, plain node:http answering from memory (no auth, no disk), same client',
    },
    rows: results,
    big,
  };
  const outDir = join(ROOT, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const outFile = join(outDir, `s3-bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${outFile}`);
  const failed = results.some((r) => (r.ts3gw?.verifyFailures ?? 0) + (r.s3rver?.verifyFailures ?? 0) > 0) || big.phases.some((p) => p.status !== 'ok');
  process.exitCode = failed ? 1 : 0;
}

// Other benches import the helpers above; only `node test/bench/s3-bench.ts` runs this one.
if (import.meta.main) await main();
