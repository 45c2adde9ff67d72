/**
 * A local ts3gw cluster on one machine, described by a state file that other processes can act
 * on: `<dir>/state.json` records every node's pid, address, ports, data dir, log file and the exact
 * command and environment it was started with, so `npm run nemesis -- restart 2` can start the
 * same node again on the same data from another process.
 *
 * Each node listens on its own loopback address (node N on 127.0.<net>.<10+N>; clients use
 * 127.0.0.1), and runs in its own cgroup (v2) when the machine allows it. A partition is an
 * nftables rule "packets from sockets of node A's cgroup to node B's address are dropped" (and
 * the reverse): the cgroup names the sender whatever source address its sockets picked, which
 * matters because @grpc/grpc-js (1.14) has no option to bind a channel's local address, and the
 * destination address names the receiver.
 *
 *   node 1 (cgroup ts3gw-<tag>-n1) ──X──▶ 127.0.0.12 (node 2)     output hook:
 *   node 2 (cgroup ts3gw-<tag>-n2) ──X──▶ 127.0.0.11 (node 1)       socket cgroupv2 … ip daddr … drop
 *   client (no cgroup)              ─────▶ any node
 *
 * The state file is written to a temp file and renamed, so a reader never sees half of one.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Where this repository's sources are (the nodes run `node src/main.ts` there). */
export const REPO_ROOT = new URL('../', import.meta.url).pathname;

/** One node as the state file records it. */
export interface NodeState {
  id: number;
  /** The loopback address the node listens on (S3 and Raft). */
  address: string;
  s3Port: number;
  raftPort: number;
  s3Url: string;
  dataDir: string;
  logFile: string;
  /** Current process, or null when it is not running (killed, not restarted yet). */
  pid: number | null;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat), so a reused pid is not mistaken for the node. */
  pidStartTicks: number | null;
  /** cgroup (v2) path of the node relative to the cgroup2 mount, or null without cgroups. */
  cgroup: string | null;
  /** How to start it again. */
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/** The whole cluster as `<dir>/state.json` records it. */
export interface ClusterState {
  version: 1;
  /** Absolute state directory. */
  dir: string;
  /** Short id of this cluster: names its cgroups and its nftables table. */
  tag: string;
  accessKey: string;
  secretKey: string;
  /** Where cgroup v2 is mounted (e.g. /sys/fs/cgroup/unified), or null. */
  cgroupMount: string | null;
  /** nftables names cgroups relative to /sys/fs/cgroup; this is the mount's path below it. */
  nftCgroupPrefix: string;
  /** nftables table (family inet) holding this cluster's partition rules. */
  nftTable: string;
  nodes: NodeState[];
}

/** Options of startLocalCluster. */
export interface LocalClusterOptions {
  nodes: number;
  /** State directory (data dirs and logs inside it). */
  dir: string;
  /** Third octet of the nodes' addresses: node N listens on 127.0.<net>.<10+N>. */
  net?: number;
  /** S3 port of node N: s3BasePort + N - 1; Raft port: raftBasePort + N. */
  s3BasePort?: number;
  raftBasePort?: number;
  /** Extra environment for every node (timings, log level). */
  env?: Record<string, string>;
  /** Directory whose src/main.ts the nodes run (default: this repository). */
  source?: string;
  /** Keep the processes attached to this one (the chaos runner) or detach them (nemesis restarts). */
  detached?: boolean;
  /** Wait for every node to report a leader (/health/ready), at most this long. */
  readyTimeoutMs?: number;
  /** Wait for each node to serve S3 at most this long (default 30 s; a loaded machine needs more). */
  startTimeoutMs?: number;
  /**
   * Nodes 1..founders found the cluster from their static peer list; the others are not named by
   * it and join through it (gossip, admission by the leader, promotion), as operators grow a
   * cluster. Default: all of them up to 3. The cluster wants every node as a voter, up to 7 and
   * an odd count (4 voters survive no more failures than 3; see membership/promoter.ts).
   */
  founders?: number;
}

const STATE_FILE = 'state.json';

/** Reads `<dir>/state.json`; throws a one-line error when there is none. */
export async function readState(dir: string): Promise<ClusterState> {
  const path = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`no cluster state at ${path} (start one with npm run cluster)`);
  }
  const state = JSON.parse(text) as ClusterState;
  if (state.version !== 1 || !Array.isArray(state.nodes)) throw new Error(`${path} is not a ts3gw cluster state file`);
  return state;
}

/** Writes the state file atomically (temp + rename). */
export async function writeState(state: ClusterState): Promise<void> {
  const path = join(state.dir, STATE_FILE);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** The node numbered `id`; throws a one-line error for an unknown one. */
export function nodeOf(state: ClusterState, id: number): NodeState {
  const node = state.nodes.find((n) => n.id === id);
  if (!node) throw new Error(`no node ${id} (nodes: ${state.nodes.map((n) => n.id).join(', ')})`);
  return node;
}

/** Where cgroup v2 is mounted, and its path below /sys/fs/cgroup (how nftables names it). */
function cgroupMount(): { mount: string; prefix: string } | null {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return { mount: '/sys/fs/cgroup', prefix: '' };
  if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) return { mount: '/sys/fs/cgroup/unified', prefix: 'unified/' };
  return null;
}

/** A process's state letter from /proc (R, S, D, T, Z, …) and start time, or undefined when there is none. */
export function procInfo(pid: number): { state: string; startTicks: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTicks: Number(fields[19]) };
}

/** True when the node's recorded process exists, is that process (not a reused pid), and is not a zombie. */
export function isRunning(node: NodeState): boolean {
  if (node.pid === null) return false;
  const info = procInfo(node.pid);
  return info !== undefined && info.state !== 'Z' && info.state !== 'X' && info.startTicks === node.pidStartTicks;
}

/** Polls `check` every `intervalMs` until it returns true, at most `timeoutMs`; throws naming `what`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 25): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** GET a health path; true on 200. */
export async function healthy(node: NodeState, path: '/health/live' | '/health/ready'): Promise<boolean> {
  try {
    const res = await fetch(`${node.s3Url}${path}`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts the node's process from its recorded command and environment, logging to its log file,
 * in its cgroup; records the pid in `node` (the caller writes the state). Resolves once it serves
 * S3 (/health/live), at most `timeoutMs`.
 */
export async function spawnNode(state: ClusterState, node: NodeState, options: { detached: boolean; timeoutMs?: number }): Promise<ChildProcess> {
  if (isRunning(node)) throw new Error(`node ${node.id} is already running (pid ${node.pid})`);
  const log = openSync(node.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(node.command, node.args, { cwd: node.cwd, env: node.env, stdio: ['ignore', log, log], detached: options.detached });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`node ${node.id} did not start (spawn ${node.command} failed)`);
  // Into its cgroup before it opens a socket (a socket keeps the cgroup it was created in; the
  // process needs far longer than this to load its code).
  if (node.cgroup !== null && state.cgroupMount !== null) {
    writeFileSync(join(state.cgroupMount, node.cgroup, 'cgroup.procs'), String(pid));
  }
  if (options.detached) child.unref();
  node.pid = pid;
  node.pidStartTicks = procInfo(pid)?.startTicks ?? null;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `${signal ?? code}`;
  });
  await waitUntil(
    async () => {
      if (exited !== undefined) throw new Error(`node ${node.id} exited (${exited}) while starting; see ${node.logFile}`);
      return healthy(node, '/health/live');
    },
    options.timeoutMs ?? 30_000,
    `node ${node.id} to serve S3 at ${node.s3Url}`,
    50,
  );
  return child;
}

/** Builds the state of a new cluster (state dir and secrets) without starting anything. */
export function planLocalCluster(options: LocalClusterOptions): ClusterState {
  const count = options.nodes;
  if (!Number.isInteger(count) || count < 1 || count > 16) throw new TypeError('nodes must be 1..16');
  const net = options.net ?? 0;
  if (!Number.isInteger(net) || net < 0 || net > 255) throw new TypeError('net must be 0..255');
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  // One key pair and one cluster secret for the whole local cluster, kept across runs.
  const secretsPath = join(dir, 'secrets.json');
  let secrets: { accessKey: string; secretKey: string; clusterSecret: string };
  try {
    secrets = JSON.parse(readFileSync(secretsPath, 'utf8')) as typeof secrets;
  } catch {
    secrets = {
      accessKey: `TS3${randomBytes(8).toString('hex').toUpperCase()}`,
      secretKey: randomBytes(24).toString('base64url'),
      clusterSecret: randomBytes(24).toString('base64url'),
    };
    writeFileSync(secretsPath, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  const tag = createHash('sha256').update(dir).digest('hex').slice(0, 8);
  const cg = cgroupMount();
  const s3BasePort = options.s3BasePort ?? 9000;
  const raftBasePort = options.raftBasePort ?? 9100;
  const ids = Array.from({ length: count }, (_, i) => i + 1);
  const addressOf = (id: number) => `127.0.${net}.${10 + id}`;
  const founders = Math.min(count, options.founders ?? 3);
  const peers = ids.slice(0, founders).map((id) => `${id}@${addressOf(id)}:${raftBasePort + id}`).join(',');
  const cwd = options.source ?? REPO_ROOT;
  const baseEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('TS3GW_')) baseEnv[k] = v;
  const nodes = ids.map((id): NodeState => {
    // Created by startLocalCluster (planning has no side effects beyond the state dir).
    const cgroup = cg === null ? null : `ts3gw-${tag}-n${id}`;
    const address = addressOf(id);
    const s3Port = s3BasePort + id - 1;
    const raftPort = raftBasePort + id;
    const dataDir = join(dir, `node${id}`);
    return {
      id,
      address,
      s3Port,
      raftPort,
      s3Url: `http://${address}:${s3Port}`,
      dataDir,
      logFile: join(dir, `node${id}.log`),
      pid: null,
      pidStartTicks: null,
      cgroup,
      command: process.execPath,
      args: ['src/main.ts'],
      cwd,
      env: {
        ...baseEnv,
        TS3GW_NODE_ID: String(id),
        TS3GW_PEERS: peers,
        TS3GW_VOTERS: String(Math.min(count % 2 === 0 ? count - 1 : count, 7)),
        TS3GW_CLUSTER_SECRET: secrets.clusterSecret,
        TS3GW_ROOT_ACCESS_KEY: secrets.accessKey,
        TS3GW_ROOT_SECRET_KEY: secrets.secretKey,
        TS3GW_DATA_DIR: dataDir,
        TS3GW_S3_HOST: address,
        TS3GW_S3_PORT: String(s3Port),
        TS3GW_RAFT_HOST: address,
        TS3GW_RAFT_PORT: String(raftPort),
        TS3GW_LOG_LEVEL: process.env['TS3GW_LOG_LEVEL'] ?? 'warn',
        // A local cluster is a test cluster: its nodes read injected clock and disk faults from
        // this file (src/faults/; written by chaos/node-faults.ts). A missing file means none.
        TS3GW_FAULTS_FILE: join(dir, `node${id}.faults.json`),
        ...options.env,
      },
    };
  });
  return {
    version: 1,
    dir,
    tag,
    accessKey: secrets.accessKey,
    secretKey: secrets.secretKey,
    cgroupMount: cg?.mount ?? null,
    nftCgroupPrefix: cg?.prefix ?? '',
    nftTable: `ts3gw_${tag}`,
    nodes,
  };
}

/** A started cluster: its state and the processes this one started. */
export interface LocalCluster {
  state: ClusterState;
  children: Map<number, ChildProcess>;
}

/** Starts every node, records the state, and waits until all serve S3 and (optionally) know a leader. */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const state = planLocalCluster(options);
  for (const node of state.nodes) {
    mkdirSync(node.dataDir, { recursive: true });
    if (node.cgroup === null || state.cgroupMount === null) continue;
    try {
      mkdirSync(join(state.cgroupMount, node.cgroup), { recursive: true });
    } catch {
      node.cgroup = null; // not root or no writable cgroup2: partitions will say so
    }
  }
  const children = new Map<number, ChildProcess>();
  try {
    const started = await Promise.allSettled(
      state.nodes.map(async (node) => {
        children.set(node.id, await spawnNode(state, node, { detached: options.detached ?? false, ...(options.startTimeoutMs ? { timeoutMs: options.startTimeoutMs } : {}) }));
      }),
    );
    await writeState(state);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (options.readyTimeoutMs !== undefined) {
      await waitUntil(
        async () => (await Promise.all(state.nodes.map((n) => healthy(n, '/health/ready')))).every(Boolean),
        options.readyTimeoutMs,
        'every node to know a leader',
        100,
      );
    }
  } catch (err) {
    // Leave nothing running behind a failed start.
    await stopLocalCluster(state.dir, 2_000);
    throw err;
  }
  return { state, children };
}

/**
 * Stops every node of the cluster: resumes paused ones, SIGTERM, then SIGKILL after
 * `graceMs`; removes the partition table and the cgroups. Reads the pids from the state file
 * (a nemesis may have restarted a node since).
 */
export async function stopLocalCluster(dir: string, graceMs = 10_000): Promise<void> {
  const state = await readState(dir);
  const running = state.nodes.filter(isRunning);
  for (const node of running) {
    process.kill(node.pid!, 'SIGCONT');
    process.kill(node.pid!, 'SIGTERM');
  }
  try {
    await waitUntil(() => running.every((n) => !isRunning(n)), graceMs, 'nodes to stop', 50);
  } catch {
    for (const node of running.filter(isRunning)) process.kill(node.pid!, 'SIGKILL');
    await waitUntil(() => running.every((n) => !isRunning(n)), 5_000, 'killed nodes to go away', 25);
  }
  for (const node of state.nodes) {
    node.pid = null;
    node.pidStartTicks = null;
  }
  await writeState(state);
  await deleteNftTable(state);
  for (const node of state.nodes) {
    if (node.cgroup === null || state.cgroupMount === null) continue;
    // A dead process keeps its cgroup busy (EBUSY) until it is reaped and released, which
    // lags its exit by a little: retry for a while.
    const path = join(state.cgroupMount, node.cgroup);
    let lastError = '';
    const removed = await waitUntil(
      () => {
        try {
          rmdirSync(path);
          return true;
        } catch (err) {
          lastError = (err as Error).message;
          return (err as NodeJS.ErrnoException).code === 'ENOENT';
        }
      },
      5_000,
      `cgroup ${node.cgroup} to be removable`,
      50,
    ).then(
      () => true,
      () => false,
    );
    if (!removed) process.stderr.write(`cgroup ${node.cgroup} not removed: ${lastError}\n`);
  }
}

/** Directories of system binaries, searched instead of PATH (npm puts node_modules/.bin first, and @vercel/nft installs a `nft` there). */
const SYSTEM_BIN_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** The absolute path of a system binary, or undefined when it is not installed. */
export function systemBinary(name: string): string | undefined {
  for (const dir of SYSTEM_BIN_DIRS) if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

/** Runs nft with `args` (and `input` on stdin); resolves with stdout, rejects with nft's message. */
export function nft(args: string[], input?: string): Promise<string> {
  const bin = systemBinary('nft');
  if (bin === undefined) return Promise.reject(new Error('nft is not installed (Debian package nftables)'));
  return new Promise((resolveNft, reject) => {
    const child = execFile(bin, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`nft ${args.join(' ')}: ${(stderr || err.message).trim().split('\n')[0]}`));
      else resolveNft(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Removes the cluster's partition table (heals every partition); a missing table or nft is fine. */
export async function deleteNftTable(state: ClusterState): Promise<void> {
  try {
    await nft(['list', 'table', 'inet', state.nftTable]);
  } catch {
    return; // no table (or no nft): nothing is partitioned
  }
  await nft(['delete', 'table', 'inet', state.nftTable]);
}
