/**
 * What the membership tests (joins, growth, decommission, replace) share: fast membership
 * timing, chunk ids of a body, a bounded S3 load through the nodes serving at the time, R-copy
 * checks on the nodes' chunk files, agreement on the voter set, and the real ts3ctl as a child
 * process.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { chunkInventory, type ClusterStatus, clusterStatus, eventually, FAST_RAFT_ENV, TEST_CLUSTER_SECRET } from './cluster.ts';
import { s3Client, TEST_ACCESS_KEY, TEST_SECRET_KEY, type TestServer } from './server.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

/** Chunk size of membership tests: small, so a few objects spread over every node. */
export const MEMBERSHIP_CHUNK_BYTES = 64 * 1024;

/** Env of membership tests: fast Raft, gossip and maintenance, small chunks. */
export const MEMBERSHIP_ENV: Record<string, string> = {
  ...FAST_RAFT_ENV,
  TS3GW_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
  TS3GW_CHUNK_SIZE_BYTES: String(MEMBERSHIP_CHUNK_BYTES),
  TS3GW_INLINE_MAX_BYTES: '1024',
  TS3GW_MAINTENANCE_INTERVAL_MS: '300',
  TS3GW_GOSSIP_PERIOD_MS: '200',
  TS3GW_GOSSIP_SUSPICION_MS: '1000',
};

/** Hex sha256. */
export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The content-addressed chunk ids a body is cut into. */
export const chunkIds = (body: Uint8Array, chunkBytes = MEMBERSHIP_CHUNK_BYTES): string[] =>
  Array.from({ length: Math.ceil(body.length / chunkBytes) }, (_, i) => sha(body.subarray(i * chunkBytes, (i + 1) * chunkBytes)));

/** The HTTP status an S3 call ended with (200, an S3 error's status, 0 for no answer). */
export async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    return statusOfError(err);
  }
}

function statusOfError(err: unknown): number {
  return err instanceof S3ServiceException ? (err.$metadata.httpStatusCode ?? 0) : 0;
}

/** A running load and what it saw. */
export interface Load {
  /** Acknowledged writes: key → sha256 of the body. */
  acked: Map<string, string>;
  /** Keys of acknowledged objects that span chunks. */
  chunkedKeys(): string[];
  /** Answers by status; -1 counts reads that returned other bytes than acknowledged. */
  statuses: Map<number, number>;
  /** The first few answers other than 200: what, through which node, and the error. */
  failures: string[];
  /**
   * Runs of consecutive 503s (an election, a membership change): how often the cluster was
   * unavailable, whatever the rate at which the loop asked meanwhile.
   */
  outages(): number;
  /**
   * The nodes requests go to from now on (as a load balancer's health checks would change it);
   * resolves once no request is in flight to a node left out, so a test may then kill it.
   */
  serveThrough(servers: TestServer[]): Promise<void>;
  /** Resolves once `n` more writes were acknowledged than when called. */
  progress(n: number, timeoutMs: number, what: string): Promise<void>;
  /** Stops and waits for the request in flight. */
  stop(): Promise<void>;
}

/**
 * Writes (every fifth object spanning chunks, the rest inline) and reads back earlier ones,
 * round-robin over the serving nodes, one attempt per request: what a client behind a load
 * balancer sees. Bounded by `opsMax` requests and `durationMsMax`, whichever comes first.
 */
export function startLoad(bucket: string, servers: TestServer[], bounds: { opsMax: number; durationMsMax: number }): Load {
  const acked = new Map<string, string>();
  const chunked: string[] = [];
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  let outages = 0;
  let unavailable = false;
  const count = (code: number, what?: string) => {
    if (code === 503 && !unavailable) outages++;
    unavailable = code === 503;
    statuses.set(code, (statuses.get(code) ?? 0) + 1);
    if (code !== 200 && what !== undefined && failures.length < 20) failures.push(what);
  };
  let serving = [...servers];
  /** The node of the request in flight. */
  let current: TestServer | undefined;
  let stopped = false;
  const clients = new Map<TestServer, S3Client>();
  const clientOf = (s: TestServer) => clients.get(s) ?? clients.set(s, s3Client(s, { maxAttempts: 1 })).get(s)!;
  const started = Date.now();
  const done = (async () => {
    for (let n = 0; n < bounds.opsMax && !stopped && Date.now() - started < bounds.durationMsMax; n++) {
      const via = serving[n % serving.length]!;
      const key = `k${n}`;
      const body = n % 5 === 0 ? randomBytes(2 * MEMBERSHIP_CHUNK_BYTES + 100) : randomBytes(200);
      current = via;
      let code = 200;
      try {
        await clientOf(via).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }), { abortSignal: AbortSignal.timeout(10_000) });
      } catch (err) {
        code = statusOfError(err);
        count(code, `PUT ${key} via ${via.url}: ${String(err)}`);
      }
      if (code === 200) count(200);
      current = undefined;
      if (code === 200) {
        acked.set(key, sha(body));
        if (n % 5 === 0) chunked.push(key);
      }
      if (n % 3 === 0 && acked.size > 0) {
        const keys = [...acked.keys()];
        const readKey = keys[n % keys.length]!;
        const reader = serving[(n + 1) % serving.length]!;
        current = reader;
        try {
          const res = await clientOf(reader).send(new GetObjectCommand({ Bucket: bucket, Key: readKey }), { abortSignal: AbortSignal.timeout(10_000) });
          if (sha(await res.Body!.transformToByteArray()) !== acked.get(readKey)) count(-1, `GET ${readKey} via ${reader.url}: other bytes`);
          else unavailable = false;
        } catch (err) {
          count(statusOfError(err), `GET ${readKey} via ${reader.url}: ${String(err)}`);
        }
        current = undefined;
      }
    }
  })();
  return {
    acked,
    chunkedKeys: () => [...chunked],
    statuses,
    failures,
    outages: () => outages,
    serveThrough: async (next) => {
      serving = [...next];
      await eventually(async () => (current === undefined || serving.includes(current) ? true : undefined), 30_000, 'the request in flight to a node taken out');
    },
    progress: async (n, timeoutMs, what) => {
      const from = acked.size;
      await eventually(async () => (acked.size >= from + n ? true : undefined), timeoutMs, what);
    },
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** Resolves with every live node's status once all agree on `voters` voters, no learner and one leader. */
export function votersAgreed(servers: TestServer[], voters: number, timeoutMs: number): Promise<ClusterStatus[]> {
  return eventually(
    async () => {
      const live = servers.filter((s) => s.proc.exitCode === null && s.proc.signalCode === null);
      const all = await Promise.all(live.map((s) => clusterStatus(s.url)));
      return all.every((s) => s.voters.length === voters && s.learners.length === 0 && s.leader !== 0 && s.leader === all[0]!.leader) ? all : undefined;
    },
    timeoutMs,
    `${voters} voters agreed on by every node`,
  );
}

/** Chunk ids of the acknowledged objects under `keys`, read back through `via`. */
export async function chunksOf(via: TestServer, bucket: string, keys: string[]): Promise<Set<string>> {
  const wanted = new Set<string>();
  const s3 = s3Client(via);
  for (const key of keys) {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    for (const c of chunkIds(await res.Body!.transformToByteArray())) wanted.add(c);
  }
  return wanted;
}

/** Waits until every chunk in `wanted` has at least `copies` files across the data dirs. */
export async function awaitCopies(dataDirs: string[], wanted: Iterable<string>, copies: number, timeoutMs: number, what: string): Promise<void> {
  const ids = [...wanted];
  await eventually(
    async () => {
      const sets = await Promise.all(dataDirs.map((d) => chunkInventory(d)));
      return ids.every((c) => sets.filter((s) => s.has(c)).length >= copies) ? true : undefined;
    },
    timeoutMs,
    what,
  );
}

/** Runs the real ts3ctl against `endpoint`; resolves with its exit code and output whatever the code. */
export async function ts3ctl(endpoint: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['src/cli/ts3ctl.ts', ...args, '--endpoint', endpoint], {
      cwd: ROOT,
      env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: TEST_SECRET_KEY },
      timeout: 300_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}
