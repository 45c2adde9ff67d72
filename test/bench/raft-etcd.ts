/**
 * A 3-member etcd cluster (Debian's etcd-server) on loopback for the Raft benchmark, and a lean
 * etcd v3 gRPC client: KV.Put and Maintenance.Status with hand-encoded protobuf over
 * @grpc/grpc-js (no generated stubs, no client-side retry policy), so the client costs little CPU.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client as GrpcClient, credentials, Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { freePort } from '../helpers/cluster.ts';
import type { BenchMember, BenchSystem, Writer } from './raft-system.ts';

/** Path of the etcd binary (Debian installs it as /usr/bin/etcd). */
export const ETCD_BIN = process.env['BENCH_ETCD_BIN'] ?? 'etcd';

/** `etcd --version` first line, or undefined when etcd is missing. */
export function etcdVersion(): string | undefined {
  try {
    return execFileSync(ETCD_BIN, ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

/** etcd's election timing flags. */
export interface EtcdTiming {
  heartbeatMs: number;
  electionMs: number;
}

const GRPC_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 500,
  'grpc.min_reconnect_backoff_ms': 50,
};

/** One etcd member process. */
interface EtcdProc {
  id: number;
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc: ChildProcess | undefined;
  output: string[];
  client: GrpcClient | undefined;
}

function encodePut(key: Uint8Array, value: Uint8Array): Buffer {
  // etcdserverpb.PutRequest { bytes key = 1; bytes value = 2; }
  return Buffer.from(new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(key).tag(2, WireType.LengthDelimited).bytes(value).finish());
}

/** What the benchmark reads from etcdserverpb.StatusResponse. */
interface EtcdStatus {
  memberId: string;
  leader: string;
  raftTerm: string;
  version: string;
}

function decodeStatus(buf: Buffer): EtcdStatus {
  // StatusResponse { ResponseHeader header = 1; string version = 2; int64 dbSize = 3; uint64 leader = 4;
  //                  uint64 raftIndex = 5; uint64 raftTerm = 6; ... }
  // ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
  const out: EtcdStatus = { memberId: '0', leader: '0', raftTerm: '0', version: '' };
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WireType.LengthDelimited) {
      const h = new BinaryReader(r.bytes());
      while (h.pos < h.len) {
        const [hf, hwt] = h.tag();
        if (hf === 2 && hwt === WireType.Varint) out.memberId = String(h.uint64());
        else h.skip(hwt, hf);
      }
    } else if (field === 2 && wt === WireType.LengthDelimited) out.version = r.string();
    else if (field === 4 && wt === WireType.Varint) out.leader = String(r.uint64());
    else if (field === 6 && wt === WireType.Varint) out.raftTerm = String(r.uint64());
    else r.skip(wt, field);
  }
  return out;
}

const identity = (b: Buffer): Buffer => b;

function unary(client: GrpcClient, method: string, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(method, identity, identity, request, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(new Error(`${method}: ${GrpcStatus[err.code] ?? err.code} ${err.details}`));
      else resolve(res!);
    });
  });
}

function newClient(port: number): GrpcClient {
  return new GrpcClient(`127.0.0.1:${port}`, credentials.createInsecure(), GRPC_OPTIONS);
}

/** Starts a 3-member etcd cluster with the given timing; resolves once a leader is agreed. */
export async function startEtcdCluster(timing: EtcdTiming, cleanups: Array<() => Promise<void>>, size = 3): Promise<BenchSystem> {
  const members: EtcdProc[] = [];
  for (let id = 1; id <= size; id++) {
    members.push({
      id,
      name: `n${id}`,
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: await mkdtemp(join(tmpdir(), `raft-bench-etcd${id}-`)),
      proc: undefined,
      output: [],
      client: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `raft-bench-${process.pid}-${Date.now()}`;

  const launch = (m: EtcdProc): void => {
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--heartbeat-interval', String(timing.heartbeatMs),
      '--election-timeout', String(timing.electionMs),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
    ];
    const proc = spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (line: string) => {
      m.output.push(line);
      if (m.output.length > 400) m.output.splice(0, m.output.length - 400);
    };
    createInterface({ input: proc.stdout! }).on('line', keep);
    createInterface({ input: proc.stderr! }).on('line', keep);
    proc.on('error', (err) => keep(`spawn error: ${String(err)}`));
    m.proc = proc;
    m.client?.close();
    m.client = newClient(m.clientPort);
  };

  const alive = (m: EtcdProc): boolean => m.proc !== undefined && m.proc.exitCode === null && m.proc.signalCode === null;
  const killProc = async (m: EtcdProc): Promise<void> => {
    const proc = m.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const m of members) m.client?.close();
    await Promise.all(members.map((m) => killProc(m)));
    await Promise.all(members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
  };
  cleanups.push(stop);

  const status = async (m: EtcdProc, timeoutMs = 1_000): Promise<EtcdStatus> => {
    if (!m.client) throw new Error(`${m.name} has no client`);
    return decodeStatus(await unary(m.client, '/etcdserverpb.Maintenance/Status', Buffer.alloc(0), timeoutMs));
  };

  const system: BenchSystem = {
    name: 'etcd',
    members(): BenchMember[] {
      return members.map((m) => ({ id: m.id, pid: alive(m) ? m.proc!.pid : undefined }));
    },
    async leader(ids = members.map((m) => m.id)): Promise<number | undefined> {
      const chosen = members.filter((m) => ids.includes(m.id));
      const statuses = await Promise.all(chosen.map((m) => status(m)));
      const leaders = new Set(statuses.map((s) => s.leader));
      const terms = new Set(statuses.map((s) => s.raftTerm));
      if (leaders.size !== 1 || terms.size !== 1) return undefined;
      const [lead] = leaders;
      if (lead === undefined || lead === '0') return undefined;
      const idx = statuses.findIndex((s) => s.memberId === lead);
      if (idx >= 0) return chosen[idx]!.id;
      // The leader is not among the asked members: find it among the others.
      for (const m of members) {
        if (!alive(m)) continue;
        try {
          if ((await status(m)).memberId === lead) return m.id;
        } catch {
          // not reachable
        }
      }
      return undefined;
    },
    openWriter(id: number, concurrency: number): Writer {
      const m = members.find((x) => x.id === id)!;
      // One HTTP/2 connection multiplexes all proposers, as etcd clients do.
      void concurrency;
      const client = newClient(m.clientPort);
      return {
        async put(key: string, value: Uint8Array, timeoutMs: number): Promise<void> {
          await unary(client, '/etcdserverpb.KV/Put', encodePut(Buffer.from(key), value), timeoutMs);
        },
        async close(): Promise<void> {
          client.close();
        },
      };
    },
    async kill(id: number): Promise<void> {
      await killProc(members.find((m) => m.id === id)!);
    },
    async restart(id: number): Promise<void> {
      const m = members.find((x) => x.id === id)!;
      await killProc(m);
      launch(m);
    },
    output(id: number): string[] {
      return members.find((m) => m.id === id)!.output;
    },
    endpoint(id: number): string {
      return `127.0.0.1:${members.find((m) => m.id === id)!.clientPort}`;
    },
    stop,
    describe() {
      return { heartbeatMs: timing.heartbeatMs, electionMs: timing.electionMs, members: members.map((m) => ({ id: m.id, clientPort: m.clientPort, peerPort: m.peerPort })) };
    },
  };

  for (const m of members) launch(m);
  return system;
}
