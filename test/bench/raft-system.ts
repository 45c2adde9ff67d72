/**
 * The Raft benchmark's view of a replicated system (ts3gw or etcd): members with PIDs, the agreed
 * leader, writers that issue one proposal per call, kill -9 and restart of a member. The ts3gw
 * side is here: a real 3-process cluster from test/helpers/cluster.ts, written to through the
 * Propose RPC (or, with BENCH_TS3GW_CLIENT=s3, SigV4 PutObject of small inline objects).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { ProposeClient } from '../../src/rpc/propose-client.ts';
import { clusterStatus, freePort, TEST_CLUSTER_SECRET } from '../helpers/cluster.ts';
import { removeDir, startServer, type TestServer } from '../helpers/server.ts';
import { parseS3Error, signRequest } from '../helpers/signer.ts';

/** One member: its id and the PID while it runs. */
export interface BenchMember {
  id: number;
  pid: number | undefined;
}

/** Issues proposals to one member. */
export interface Writer {
  /** One proposal; resolves once committed (acknowledged), throws otherwise. */
  put(key: string, value: Uint8Array, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A running 3-member replicated system under test. */
export interface BenchSystem {
  name: 'ts3gw' | 'etcd';
  members(): BenchMember[];
  /** The leader all of `ids` (default: all) agree on in one term, or undefined. Throws when a member does not answer. */
  leader(ids?: number[]): Promise<number | undefined>;
  openWriter(id: number, concurrency: number): Writer;
  /** kill -9, resolving once the process is gone. */
  kill(id: number): Promise<void>;
  /** Starts a killed member again on its data directory and ports. */
  restart(id: number): Promise<void>;
  /** Recent log lines of a member (evidence when something goes wrong). */
  output(id: number): string[];
  /** Client endpoint of a member (ts3gw: S3 URL; etcd: gRPC host:port). */
  endpoint(id: number): string;
  stop(): Promise<void>;
  describe(): Record<string, unknown>;
}

/** Bucket every ts3gw proposal writes into. */
export const TS3GW_BUCKET = 'raftbench';

/** ts3gw election timing. */
export interface Ts3gwTiming {
  tickMs: number;
  electionTicks: number;
}

async function ts3gwPut(pool: Pool, host: string, path: string, value: Uint8Array, timeoutMs: number): Promise<void> {
  const { headers } = signRequest({ method: 'PUT', host, path, body: value });
  const res = await pool.request({ method: 'PUT', path, headers, body: value, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  if (res.statusCode === 200) {
    await res.body.dump();
    return;
  }
  const text = await res.body.text();
  const err = parseS3Error(text);
  throw new Error(`PUT ${path}: HTTP ${res.statusCode} ${err.code ?? ''} ${err.message ?? text.slice(0, 200)}`.trim());
}

/**
 * How ts3gw proposals are sent (BENCH_TS3GW_CLIENT): 'stream' (default) = PutObject commands of an
 * inline object pipelined over one ProposeStream (one HTTP/2 connection and stream); 'unary' = one
 * Propose call per command over one HTTP/2 connection, exactly like etcd's KV Put; 's3' = a SigV4
 * PutObject per proposal over keep-alive HTTP/1.1 (the whole S3 write path).
 */
export const TS3GW_CLIENT: 'stream' | 'unary' | 's3' = (['unary', 's3'] as const).find((c) => c === process.env['BENCH_TS3GW_CLIENT']) ?? 'stream';

/** The value's MD5 and base64, computed once per value (every proposal of a row sends the same bytes). */
const valueForms = new WeakMap<Uint8Array, { etag: string; base64: string }>();

async function ts3gwPropose(proposer: Pick<ProposeClient, 'propose'>, key: string, value: Uint8Array, timeoutMs: number): Promise<void> {
  const now = Date.now();
  let forms = valueForms.get(value);
  if (!forms) {
    forms = { etag: createHash('md5').update(value).digest('hex'), base64: Buffer.from(value).toString('base64') };
    valueForms.set(value, forms);
  }
  const object = {
    sizeBytes: value.byteLength,
    etag: forms.etag,
    lastModifiedMs: now,
    writeId: randomUUID(),
    owner: 'bench',
    contentType: 'application/octet-stream',
    headers: {},
    userMeta: {},
    data: { kind: 'inline' as const, base64: forms.base64 },
  };
  const result = await proposer.propose({ type: 'PutObject', bucket: TS3GW_BUCKET, key, object }, { timeoutMs });
  if (!result.ok) throw new Error(`Propose ${key}: ${result.code} ${result.message}`);
}

/** BENCH_TS3GW_GRACEFUL_STOP=1: stop the members with SIGTERM at the end instead of kill -9. */
const GRACEFUL_STOP = process.env['BENCH_TS3GW_GRACEFUL_STOP'] === '1';

/** Starts a 3-node ts3gw cluster (fsync on, the default) with the given timing and creates the bench bucket. */
export async function startTs3gwCluster(timing: Ts3gwTiming, cleanups: Array<() => Promise<void>>, size = 3): Promise<BenchSystem> {
  // Like test/helpers/cluster.ts startCluster, but every process is tracked from the moment it is
  // spawned, so a failed start still stops what did start.
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const raftPorts = new Map<number, number>();
  for (const id of ids) raftPorts.set(id, await freePort());
  const peers = ids.map((id) => `${id}@127.0.0.1:${raftPorts.get(id)}`).join(',');
  const dataDirs = new Map<number, string>();
  const servers = new Map<number, TestServer>();
  const launching = new Set<Promise<unknown>>();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.allSettled([...launching]);
    // A graceful stop lets `--cpu-prof` (TS3GW_TEST_NODE_ARGS) write its profile.
    await Promise.all([...servers.values()].map((s) => (GRACEFUL_STOP ? s.stop() : s.kill())));
    await Promise.all([...dataDirs.values()].map((d) => removeDir(d)));
  };
  cleanups.push(stop);
  const launch = async (id: number): Promise<void> => {
    if (stopped) throw new Error('cluster stopped');
    const env = {
      TS3GW_NODE_ID: String(id),
      TS3GW_PEERS: peers,
      TS3GW_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
      TS3GW_RAFT_PORT: String(raftPorts.get(id)),
      TS3GW_RAFT_TICK_MS: String(timing.tickMs),
      TS3GW_RAFT_ELECTION_TICKS: String(timing.electionTicks),
      TS3GW_LOG_LEVEL: process.env['BENCH_TS3GW_LOG_LEVEL'] ?? 'warn',
    };
    const starting = startServer({ dataDir: dataDirs.get(id)!, env, startTimeoutMs: 30_000 });
    launching.add(starting);
    try {
      servers.set(id, await starting);
    } finally {
      launching.delete(starting);
    }
  };
  for (const id of ids) dataDirs.set(id, await mkdtemp(join(tmpdir(), `raft-bench-ts3gw${id}-`)));
  await Promise.all(ids.map((id) => launch(id)));
  const node = (id: number) => ({ server: servers.get(id)! });
  let clusterId: string | undefined;
  const alive = (id: number) => {
    const p = node(id).server.proc;
    return p.exitCode === null && p.signalCode === null;
  };

  const system: BenchSystem = {
    name: 'ts3gw',
    members(): BenchMember[] {
      return ids.map((id) => ({ id, pid: alive(id) ? node(id).server.proc.pid : undefined }));
    },
    async leader(asked = ids): Promise<number | undefined> {
      const statuses = await Promise.all(asked.map((id) => clusterStatus(node(id).server.url)));
      const leaders = new Set(statuses.map((s) => s.leader));
      const terms = new Set(statuses.map((s) => s.term));
      const [lead] = leaders;
      return leaders.size === 1 && terms.size === 1 && lead !== undefined && lead !== 0 ? lead : undefined;
    },
    openWriter(id: number, concurrency: number): Writer {
      if (TS3GW_CLIENT !== 's3') {
        const proposer = new ProposeClient({ address: `127.0.0.1:${raftPorts.get(id)}`, clusterId: clusterId!, clusterSecret: TEST_CLUSTER_SECRET });
        const stream = TS3GW_CLIENT === 'stream' ? proposer.openStream() : undefined;
        return {
          put: (key, value, timeoutMs) => ts3gwPropose(stream ?? proposer, key, value, timeoutMs),
          async close(): Promise<void> {
            stream?.close();
            proposer.close();
          },
        };
      }
      const url = node(id).server.url;
      const host = new URL(url).host;
      const pool = new Pool(url, { connections: Math.max(1, concurrency), pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
      return {
        put: (key, value, timeoutMs) => ts3gwPut(pool, host, `/${TS3GW_BUCKET}/${key}`, value, timeoutMs),
        async close(): Promise<void> {
          await pool.destroy();
        },
      };
    },
    async kill(id: number): Promise<void> {
      await node(id).server.kill();
    },
    async restart(id: number): Promise<void> {
      await node(id).server.kill();
      await launch(id);
    },
    output(id: number): string[] {
      return node(id).server.output.slice(-400);
    },
    endpoint(id: number): string {
      return node(id).server.url;
    },
    stop,
    describe() {
      return { tickMs: timing.tickMs, electionTicks: timing.electionTicks, peers, client: TS3GW_CLIENT };
    },
  };

  // The bench bucket, created through the leader once one is agreed.
  const lead = await waitForStableLeader(system, 30_000);
  clusterId = (await clusterStatus(node(lead).server.url)).clusterId;
  const pool = new Pool(node(lead).server.url, { connections: 1 });
  try {
    const host = new URL(node(lead).server.url).host;
    const path = `/${TS3GW_BUCKET}`;
    const { headers } = signRequest({ method: 'PUT', host, path });
    const res = await pool.request({ method: 'PUT', path, headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`CreateBucket: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
  } finally {
    await pool.destroy();
  }
  return system;
}

/** Polls until every running member agrees on one leader; returns its id. */
export async function waitForStableLeader(system: BenchSystem, timeoutMs: number, ids?: number[]): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const lead = await system.leader(ids ?? system.members().filter((m) => m.pid !== undefined).map((m) => m.id));
      if (lead !== undefined) return lead;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${system.name}: no agreed leader within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
}
