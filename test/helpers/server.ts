/**
 * Starts a real ts3gw server process on loopback for integration tests, and S3 clients for it.
 * The process is the same `node src/main.ts` users run; tests talk to it over TCP only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, S3Client, type S3ClientConfig, S3ServiceException } from '@aws-sdk/client-s3';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Credentials every test server is started with. */
export const TEST_ACCESS_KEY = 'TS3TESTACCESSKEY';
export const TEST_SECRET_KEY = 'ts3-test-secret-key-0123456789';
export const TEST_REGION = 'us-east-1';

/** A running server process. */
export interface TestServer {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  /** Log lines the process printed (stdout and stderr). */
  output: string[];
  /** Graceful stop (SIGTERM), waiting for exit. */
  stop(): Promise<number | null>;
  /** kill -9, waiting for exit. */
  kill(): Promise<void>;
}

/** Options of startServer. */
export interface StartOptions {
  /** Reuse a data directory (restart); a fresh temp dir by default. */
  dataDir?: string;
  env?: Record<string, string>;
  /** Give up waiting for the server after this long (default 60 s: a loaded 2-core CI can take 30). */
  startTimeoutMs?: number;
}

/**
 * Server processes still running. A test process that ends (even by an uncaught failure) kills
 * them: an orphaned node keeps the machine loaded and, while ava still holds its pipes, keeps
 * the test worker from exiting at all.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** Starts `node src/main.ts` on 127.0.0.1 with an ephemeral port; resolves once it serves. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ts3gw-test-')));
  // TS3GW_TEST_NODE_ARGS: extra node flags for the servers (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
  // to profile them; flags like --cpu-prof are refused in NODE_OPTIONS).
  const nodeArgs = (process.env['TS3GW_TEST_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      TS3GW_S3_HOST: '127.0.0.1',
      TS3GW_S3_PORT: '0',
      TS3GW_RAFT_HOST: '127.0.0.1',
      TS3GW_RAFT_PORT: '0',
      TS3GW_DATA_DIR: dataDir,
      TS3GW_ROOT_ACCESS_KEY: TEST_ACCESS_KEY,
      TS3GW_ROOT_SECRET_KEY: TEST_SECRET_KEY,
      TS3GW_LOG_LEVEL: process.env['TS3GW_TEST_LOG_LEVEL'] ?? 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      running.delete(proc);
      resolve(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const startTimeoutMs = options.startTimeoutMs ?? 60_000;
    // A server that did not start is killed before the test hears of it, so no caller leaks it.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, startTimeoutMs);
    const onLine = (line: string) => {
      output.push(line);
      if (!line.includes('ts3gw is serving S3')) return;
      clearTimeout(timer);
      resolve(/https?:\/\/[^\s]+/.exec(line)![0]);
    };
    createInterface({ input: proc.stdout! }).on('line', onLine);
    createInterface({ input: proc.stderr! }).on('line', (line) => output.push(line));
    void exited.then((code) => {
      clearTimeout(timer);
      const why = timedOut ? `did not start within ${startTimeoutMs} ms (killed)` : `exited with ${code} before serving`;
      reject(new Error(`server ${why}:\n${output.join('\n')}`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    dataDir,
    proc,
    output,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Removes a test data directory. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** An AWS SDK v3 S3 client for the server, at its default settings (CRC32 checksums, trailers). */
export function s3Client(server: { url: string }, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: server.url,
    region: TEST_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY },
    maxAttempts: 1,
    ...overrides,
  });
}

let bucketSeq = 0;

/** Creates a bucket with a name unique to this process (`<prefix>-<pid>-<n>`) and returns it. */
export async function createTestBucket(s3: S3Client, prefix: string): Promise<string> {
  const bucket = `${prefix}-${process.pid}-${++bucketSeq}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** The S3 error a request fails with (SDK error name and HTTP status); throws if it succeeds. */
export async function s3ErrorOf(request: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await request;
  } catch (err) {
    if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  throw new Error('expected the request to fail');
}
