/**
 * Starts a real multi-node ts3gw cluster on loopback (one process per node) for integration
 * tests, and talks to its operator API. Nodes found the cluster from a static TS3GW_PEERS list;
 * extra nodes join with TS3GW_JOIN and are added through /_ts3gw/admin.
 */
import { createServer } from 'node:net';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawS3 } from './signer.ts';
import { removeDir, startServer, type TestServer } from './server.ts';

/** Shared secret of test clusters. */
export const TEST_CLUSTER_SECRET = 'ts3gw-test-cluster-secret-0123456789';

/** Fast timing for tests: 50 ms ticks, elections after 0.5–1 s. */
export const FAST_RAFT_ENV = { TS3GW_RAFT_TICK_MS: '50', TS3GW_RAFT_ELECTION_TICKS: '10' };

/** One node of a test cluster. */
export interface ClusterNode {
  id: number;
  raftPort: number;
  dataDir: string;
  server: TestServer;
}

/** A running test cluster. */
export interface TestCluster {
  nodes: Map<number, ClusterNode>;
  peers: string;
  /** Restarts a stopped or killed node on its data dir and ports. */
  restart(id: number): Promise<ClusterNode>;
  /** Starts a new empty node that joins the cluster (it must then be added via the admin API). */
  startJoiner(id: number, clusterId: string): Promise<ClusterNode>;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `size` founding nodes and waits until every one serves S3; `envOf` adds one node's own settings. */
export async function startCluster(size: number, env: Record<string, string> = {}, envOf?: (id: number) => Record<string, string>): Promise<TestCluster> {
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const ports = new Map<number, number>();
  for (const id of ids) ports.set(id, await freePort());
  const peers = ids.map((id) => `${id}@127.0.0.1:${ports.get(id)}`).join(',');
  const nodes = new Map<number, ClusterNode>();
  const nodeEnv = (id: number, extra: Record<string, string> = {}) => ({
    ...FAST_RAFT_ENV,
    TS3GW_NODE_ID: String(id),
    TS3GW_PEERS: peers,
    TS3GW_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
    TS3GW_RAFT_PORT: String(ports.get(id)),
    ...env,
    ...envOf?.(id),
    ...extra,
  });
  const launch = async (id: number, dataDir: string, extra: Record<string, string> = {}) => {
    const server = await startServer({ dataDir, env: nodeEnv(id, extra) });
    const node: ClusterNode = { id, raftPort: ports.get(id)!, dataDir, server };
    nodes.set(id, node);
    return node;
  };
  const launched = await Promise.allSettled(ids.map(async (id) => launch(id, await mkdtemp(join(tmpdir(), `ts3gw-node${id}-`)))));
  const failed = launched.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    // The caller gets no cluster to stop: stop the nodes that did start here.
    await Promise.all([...nodes.values()].map(async (n) => {
      await n.server.kill();
      await removeDir(n.dataDir);
    }));
    throw failed.reason;
  }
  return {
    nodes,
    peers,
    restart: (id) => launch(id, nodes.get(id)!.dataDir),
    async startJoiner(id, clusterId) {
      ports.set(id, await freePort());
      return launch(id, await mkdtemp(join(tmpdir(), `ts3gw-node${id}-`)), { TS3GW_JOIN: 'true', TS3GW_CLUSTER_ID: clusterId });
    },
    async stop() {
      await Promise.all([...nodes.values()].map(async (n) => {
        await n.server.kill();
        await removeDir(n.dataDir);
      }));
    },
  };
}

/** Cluster status as the admin API reports it. */
export interface ClusterStatus {
  nodeId: number;
  clusterId: string;
  role: string;
  leader: number;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  voters: number[];
  learners: number[];
}

/** Calls the operator API of one node. */
export async function admin(url: string, method: string, path: string, query = ''): Promise<{ status: number; body: unknown }> {
  const raw = new RawS3(url);
  try {
    const res = await raw.signed(method, `/_ts3gw/admin${path}`, { query });
    if (!(res.headers["content-type"] ?? "").toString().includes("json")) throw new Error(`admin ${method} ${path}: ${res.status} ${res.text}`);
    return { status: res.status, body: JSON.parse(res.text) as unknown };
  } finally {
    await raw.close();
  }
}

/** Status of one node. */
export async function clusterStatus(url: string): Promise<ClusterStatus> {
  const res = await admin(url, 'GET', '/cluster');
  if (res.status !== 200) throw new Error(`admin status ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as ClusterStatus;
}

/** Polls `check` until it returns a value, at most `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** Waits until all given nodes agree on one leader; returns its id. */
export async function waitForLeader(cluster: TestCluster, ids: number[] = [...cluster.nodes.keys()], timeoutMs = 15_000): Promise<number> {
  return eventually(
    async () => {
      const statuses = await Promise.all(ids.map((id) => clusterStatus(cluster.nodes.get(id)!.server.url)));
      const leaders = new Set(statuses.map((s) => s.leader));
      const [leader] = leaders;
      // The leader must be one of the nodes asked about: right after a leader is killed, the
      // survivors still agree on it until their election timeout passes.
      return leaders.size === 1 && leader !== undefined && ids.includes(leader) ? leader : undefined;
    },
    timeoutMs,
    'one agreed leader',
  );
}

/** Chunk files a node holds (its inventory): the sha256 ids under <dataDir>/chunks/<2-hex shard>/. */
export async function chunkInventory(dataDir: string): Promise<Set<string>> {
  const out = new Set<string>();
  const base = join(dataDir, 'chunks');
  for (const shard of await readdir(base)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const f of await readdir(join(base, shard))) out.add(f);
  }
  return out;
}
