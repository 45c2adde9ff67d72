/**
 * `npm run chaos -- --nodes 3 --time 60 --nemesis partition,kill,pause --seed 42 [--lb haproxy]`
 *
 * Starts a real cluster of ts3gw processes (each on its own loopback address and cgroup, see
 * cluster/local-cluster.ts), drives S3 clients against several nodes (or through HAProxy),
 * records the history, injects faults on a seeded schedule through the nemesis actions of
 * chaos/faults.ts, heals, waits for the nodes to converge (one leader, equal applied index),
 * reads every key back from every node, and checks:
 *
 *   - per-key linearizability of the register operations (chaos/checker/register.ts);
 *   - durability: every acknowledged write readable with its bytes, acknowledged deletes stay deleted;
 *   - list-after-write / list-after-delete;
 *   - convergence after healing.
 *
 * Writes `<out>/summary.json` (seed, schedule, executed faults, op counts, errors, results),
 * `<out>/availability.svg` (and its data, `<out>/availability.json`) and `<out>/history.json` (out: .ts3gw-chaos/<seed>-<time> unless
 * --out). Every run is bounded in time (--time plus bounded setup and checks) and in requests
 * (--ops-max). Exit 0: no violation; 1: a violation; 2: the run itself failed.
 * The same --seed gives the same fault schedule and the same client choices (the interleaving
 * of real processes is not replayable, which is why the history is checked, not compared).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  type ClusterState,
  healthy,
  isRunning,
  nodeOf,
  readState,
  startLocalCluster,
  stopLocalCluster,
  waitUntil,
} from '../cluster/local-cluster.ts';
import { SeededRandom } from '../src/util/random.ts';
import { RawS3 } from '../test/helpers/signer.ts';
import { checkDurability, checkListings, checkRegisters, type FinalRead, type RegisterOp } from './checker/register.ts';
import { heal, killNode, partition, partitionBridge, partitionOneWay, pauseNode, restartNode, resumeNode, rollingRestart } from './faults.ts';
import { failFsync, fixClock, fixDisk, rotChunks, skewClock, slowDisk } from './node-faults.ts';
import { type LoadBalancer, startHaproxy } from './haproxy.ts';
import { checkTimestamps, type TimestampCheck } from './checker/timestamps.ts';
import { availabilityJson, availabilitySvg } from './report.ts';
import { NEMESES, type Nemesis, type PlannedFault, planSchedule } from './schedule.ts';
import {
  ACTIVE_KEYS,
  BUCKET,
  bodyOf,
  classify,
  type Endpoint,
  type History,
  KeyPool,
  listPrefix,
  runClient,
  s3Client,
  valueOfBody,
} from './workload.ts';
import { GetObjectCommand } from '@aws-sdk/client-s3';

/** Options of one chaos run. */
export interface ChaosOptions {
  nodes: number;
  timeS: number;
  nemeses: Nemesis[];
  seed: number;
  /** Concurrent S3 clients (default 2 per node). */
  clients?: number;
  /** Total client operations at most. */
  opsMax?: number;
  /** Pause between a client's operations, ms. */
  pauseMs?: number;
  /** Results directory. */
  outDir?: string;
  /** Run the nodes from another checkout. */
  source?: string;
  /** Clients go through a load balancer instead of straight to the nodes. */
  lb?: 'haproxy';
  /** Third octet of the nodes' loopback addresses. */
  net?: number;
  /** Keep the nodes' data dirs after a clean run. */
  keep?: boolean;
  log?: (line: string) => void;
}

/** One fault as it was executed. */
export interface ExecutedFault {
  nemesis: Nemesis;
  planned: PlannedFault;
  /** What the target resolved to (node ids). */
  nodes: number[];
  startMs: number;
  endMs: number;
  start: string;
  end: string;
  error?: string;
}

/** The JSON summary of a run. */
export interface ChaosSummary {
  ok: boolean;
  seed: number;
  options: Omit<ChaosOptions, 'log'>;
  outDir: string;
  durationMs: number;
  schedule: PlannedFault[];
  faults: ExecutedFault[];
  ops: { total: number; byKind: Record<string, Record<string, number>>; byEndpoint: Record<string, Record<string, number>>; lists: Record<string, number> };
  errors: Record<string, number>;
  convergence: { ok: boolean; ms: number; detail: string; chunkCopies: ChunkCopies; metaDigests: MetaDigests };
  /** Per fault window and endpoint: ops invoked in the window by status, and their median/max latency (ms). */
  windows: Array<{ fault: string; startMs: number; endMs: number; endpoints: Record<string, { ok: number; fail: number; info: number; p50Ms: number; maxMs: number }> }>;
  checks: {
    linearizability: { ok: boolean | 'unknown'; keys: number; ops: number; explored: number; unknownKeys: string[]; violations: string[] };
    durability: { ok: boolean; keys: number; problems: string[] };
    listing: { ok: boolean; lists: number; problems: string[] };
    timestamps: TimestampCheck;
  };
  /** Problems of the run itself (a nemesis action that failed, a node that did not come back). */
  harness: string[];
  /**
   * Contract breaches that are not consistency violations, reported but not failing the run:
   * server errors (500 InternalError: never an answer to a valid request), and requests to a
   * partitioned-away minority that got no answer within the client timeout although the
   * partition had lasted longer than an election (contract 4: a minority answers 503 quickly).
   */
  findings: string[];
}

/** A minority node should refuse requests once this long into a partition (election timeout 1–2 s, plus slack). */
const MINORITY_REFUSES_AFTER_MS = 3_000;

/** Timings of the nodes under test: 50 ms ticks, elections after 1–2 s; small chunks so bodies above 4 KiB travel as chunks. */
const NODE_ENV = {
  TS3GW_RAFT_TICK_MS: '50',
  TS3GW_RAFT_ELECTION_TICKS: '20',
  TS3GW_INLINE_MAX_BYTES: '4096',
  TS3GW_CHUNK_SIZE_BYTES: String(64 * 1024),
  TS3GW_MAINTENANCE_INTERVAL_MS: '5000',
  TS3GW_LOG_LEVEL: 'warn',
};

/** After healing, the cluster has this long to converge and answer every final read. */
const CONVERGE_TIMEOUT_MS = 60_000;

/** Admin status of one node (signed GET /_ts3gw/admin/cluster), or undefined when it does not answer. */
async function adminStatus(state: ClusterState, url: string): Promise<{ leader: number; role: string; commitIndex: number; appliedIndex: number } | undefined> {
  const raw = new RawS3(url);
  try {
    const res = await Promise.race([
      raw.signed('GET', '/_ts3gw/admin/cluster', { credentials: { accessKeyId: state.accessKey, secretAccessKey: state.secretKey } }),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 1_000)),
    ]);
    if (res === undefined || res.status !== 200) return undefined;
    return JSON.parse(res.text) as { leader: number; role: string; commitIndex: number; appliedIndex: number };
  } catch {
    return undefined; // down, paused or partitioned away: no answer is the answer
  } finally {
    void raw.close().catch(() => undefined);
  }
}

/** Runs one chaos scenario end to end; never throws for a violation (see summary.ok). */
export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const outDir = resolve(options.outDir ?? join('.ts3gw-chaos', `${options.seed}-${stamp}`));
  mkdirSync(outDir, { recursive: true });
  const clusterDir = join(outDir, 'cluster');
  // Every run starts from empty nodes: data left by an earlier run in the same place would be
  // read back as values this run's history never wrote.
  rmSync(clusterDir, { recursive: true, force: true });
  const schedule = planSchedule({ seed: options.seed, nodes: options.nodes, timeS: options.timeS, nemeses: options.nemeses });
  const harness: string[] = [];
  const started = performance.now();
  log(`chaos: seed ${options.seed}, ${options.nodes} nodes, ${options.timeS} s, nemeses ${options.nemeses.join(',') || 'none'}${options.lb ? `, via ${options.lb}` : ''}; ${schedule.length} faults planned; results in ${outDir}`);

  const { state, children } = await startLocalCluster({
    nodes: options.nodes,
    dir: clusterDir,
    net: options.net ?? 100 + (options.seed % 100),
    env: NODE_ENV,
    ...(options.source ? { source: options.source } : {}),
    detached: false,
    readyTimeoutMs: 30_000,
  });
  void children;
  let lb: LoadBalancer | undefined;
  const onSignal = () => {
    void stopLocalCluster(clusterDir, 2_000).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    if (options.lb === 'haproxy') lb = await startHaproxy(state, outDir);
    const endpoints: Endpoint[] = lb ? [{ id: 0, url: lb.url }] : state.nodes.map((n) => ({ id: n.id, url: n.s3Url }));

    // The bucket, through any node that answers.
    await waitUntil(
      async () => {
        const c = s3Client(endpoints[0]!.url, state.accessKey, state.secretKey);
        try {
          await c.send(new CreateBucketCommand({ Bucket: BUCKET }));
          return true;
        } catch (err) {
          return (err as { name?: string }).name === 'BucketAlreadyOwnedByYou';
        } finally {
          c.destroy();
        }
      },
      20_000,
      'the bucket to be created',
      200,
    );

    const history: History = { registers: [], lists: [], endpointOf: new Map(), nextId: 1 };
    const rng = new SeededRandom(options.seed);
    const registers = new KeyPool('r/', ACTIVE_KEYS);
    const listKeys = new KeyPool('l/', ACTIVE_KEYS);
    const clientCount = options.clients ?? 2 * options.nodes;
    const origin = performance.now();
    const untilMs = origin + options.timeS * 1000;
    const budget = { left: options.opsMax ?? 200 * options.timeS };
    const clients = Array.from({ length: clientCount }, (_, i) => {
      const endpoint = endpoints[i % endpoints.length]!;
      return runClient({
        name: `c${i + 1}@${endpoint.id === 0 ? 'lb' : `n${endpoint.id}`}`,
        endpoint,
        accessKey: state.accessKey,
        secretKey: state.secretKey,
        rng: rng.fork(),
        history,
        registers,
        listKeys,
        untilMs,
        budget,
        pauseMs: options.pauseMs ?? 10,
        origin,
      });
    });
    const faults = await runSchedule(clusterDir, state, schedule, origin, untilMs, harness, log);
    await Promise.all(clients);
    const workloadMs = performance.now() - origin;
    log(`chaos: workload done: ${history.registers.length} register ops, ${history.lists.length} lists, ${faults.length} faults in ${(workloadMs / 1000).toFixed(1)} s`);

    // Undo everything, whatever state the last fault left.
    await heal(clusterDir);
    for (const node of (await readState(clusterDir)).nodes) {
      await fixClock(clusterDir, node.id);
      await fixDisk(clusterDir, node.id);
    }
    for (const node of (await readState(clusterDir)).nodes) {
      if (!isRunning(node)) {
        harness.push(`node ${node.id} was not running after the schedule; restarting it`);
        await restartNode(clusterDir, node.id, { detached: false });
      } else await resumeNode(clusterDir, node.id);
    }
    const convergence = await converge(clusterDir, log);
    if (!convergence.ok) harness.push(`no convergence: ${convergence.detail}`);

    // Read every key back from every node, and list from every node.
    const finalState = await readState(clusterDir);
    const finals = await finalReads(finalState, [...new Set(history.registers.map((o) => o.key))].sort(), history, origin);
    for (const node of finalState.nodes) {
      const c = s3Client(node.s3Url, state.accessKey, state.secretKey);
      try {
        history.lists.push(await listPrefix(c, `final@n${node.id}`, 'l/', history, node.id, () => performance.now() - origin));
      } finally {
        c.destroy();
      }
    }

    const copies = await chunkCopies(finalState, finals, log);
    const digests = await metaDigests(finalState, log);

    const lin = checkRegisters(history.registers);
    const durability = checkDurability(
      history.registers.filter((o) => !o.client.startsWith('final@')),
      finals,
    );
    const listing = checkListings(history.registers, history.lists);
    const timestamps = checkTimestamps(history.registers);
    const summary = summarize({ options, outDir, started, schedule, faults, history, convergence: { ...convergence, chunkCopies: copies, metaDigests: digests }, lin, durability, listing, timestamps, harness });

    // The chart: every client op by endpoint, fault windows shaded. A conditional PUT refused
    // with 412 is a correct answer, so it counts as available.
    const labels = new Map<number, string>(lb ? [[0, 'haproxy']] : state.nodes.map((n) => [n.id, `node ${n.id}`]));
    const chartOps = [...history.registers, ...history.lists]
      .filter((o) => !o.client.startsWith('final@'))
      .map((o) => ({ endpoint: history.endpointOf.get(o.id) ?? 0, invokeTime: o.invokeTime, latencyMs: o.endTime - o.invokeTime, ok: o.status === 'ok' || ('refused' in o && o.refused === true) }));
    const chartFaults = faults.map((f) => ({ label: `${f.nemesis} ${f.nodes.join(',')}`, startMs: f.startMs, endMs: f.endMs }));
    writeFileSync(
      join(outDir, 'availability.svg'),
      availabilitySvg(`seed ${options.seed}: ${options.nodes} nodes, ${options.nemeses.join(',') || 'no faults'}${lb ? ', via haproxy' : ''}`, labels, chartOps, chartFaults, workloadMs),
    );
    writeFileSync(join(outDir, 'availability.json'), `${JSON.stringify(availabilityJson(labels, chartOps, chartFaults, workloadMs))}\n`);
    writeFileSync(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    writeFileSync(
      join(outDir, 'history.json'),
      `${JSON.stringify({ registers: history.registers, lists: history.lists, finals }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`,
    );
    report(summary, log);
    return summary;
  } finally {
    process.removeListener('SIGINT', onSignal);
    await lb?.stop();
    await stopLocalCluster(clusterDir);
  }
}

/** Executes the planned faults in order, each undone at its end; returns what happened. */
async function runSchedule(dir: string, state: ClusterState, schedule: PlannedFault[], origin: number, untilMs: number, harness: string[], log: (l: string) => void): Promise<ExecutedFault[]> {
  const out: ExecutedFault[] = [];
  for (const planned of schedule) {
    const at = origin + planned.atS * 1000;
    if (at > untilMs) break;
    await sleepUntil(at);
    // A fault that ran long (a slow restart, a rolling restart) may push the rest past the end.
    if (performance.now() > untilMs) break;
    const nodes = planned.target === 'leader' ? [await leaderOf(state)] : planned.target;
    const f: ExecutedFault = { nemesis: planned.nemesis, planned, nodes, startMs: performance.now() - origin, endMs: Number.NaN, start: '', end: '' };
    try {
      f.start = await startFault(dir, state, planned, nodes);
      log(`  ${(f.startMs / 1000).toFixed(1)}s ${f.start}`);
    } catch (err) {
      f.error = (err as Error).message;
      harness.push(`${planned.nemesis} ${nodes.join(',')}: ${f.error}`);
      f.endMs = performance.now() - origin;
      out.push(f);
      continue;
    }
    // The fault lasts its planned time from when it took effect (a slow restart delays the rest).
    await sleepUntil(Math.min(untilMs, origin + f.startMs + planned.durationS * 1000));
    try {
      f.end = await endFault(dir, planned, nodes);
    } catch (err) {
      f.error = (err as Error).message;
      harness.push(`undo ${planned.nemesis} ${nodes.join(',')}: ${f.error}`);
    }
    f.endMs = performance.now() - origin;
    log(`  ${(f.endMs / 1000).toFixed(1)}s ${f.end || f.error}`);
    out.push(f);
  }
  return out;
}

async function startFault(dir: string, state: ClusterState, planned: PlannedFault, nodes: number[]): Promise<string> {
  const p = planned.params ?? {};
  const rest = () => state.nodes.map((n) => n.id).filter((id) => !nodes.includes(id));
  const each = async (act: (id: number) => Promise<string>) => (await Promise.all(nodes.map(act))).join('; ');
  switch (planned.nemesis) {
    case 'partition':
      return partition(dir, `${nodes.join(',')}|${rest().join(',')}`);
    case 'oneway':
      return partitionOneWay(dir, `${nodes.join(',')}>${rest().join(',')}`);
    case 'bridge': {
      const [[bridge], sideA, sideB] = p.groups as [[number], number[], number[]];
      return partitionBridge(dir, bridge, sideA, sideB);
    }
    case 'kill':
      return each((id) => killNode(dir, id));
    case 'pause':
      return each((id) => pauseNode(dir, id));
    case 'rolling':
      // The whole roll is the fault; it takes as long as the nodes need.
      return rollingRestart(dir, nodes, { detached: false });
    case 'clock':
      return each((id) => skewClock(dir, id, p.clockOffsetMs ?? 0, p.clockRate ?? 1));
    case 'disk':
      return each((id) => (p.disk === 'slow' ? slowDisk(dir, id, p.diskDelayMs ?? 100) : failFsync(dir, id, p.disk === 'fsync-wal' ? 'wal' : 'chunk')));
    case 'rot':
      return each((id) => rotChunks(dir, id, p.rot ?? 'flip', p.count ?? 1, new SeededRandom(Math.round(planned.atS * 10) + id)));
  }
}

async function endFault(dir: string, planned: PlannedFault, nodes: number[]): Promise<string> {
  const each = async (act: (id: number) => Promise<string>) => (await Promise.all(nodes.map(act))).join('; ');
  switch (planned.nemesis) {
    case 'partition':
    case 'oneway':
    case 'bridge':
      return heal(dir);
    case 'kill':
      return each((id) => restartNode(dir, id, { detached: false }));
    case 'pause':
      return each((id) => resumeNode(dir, id));
    case 'rolling':
      return 'rolled';
    case 'clock':
      return each((id) => fixClock(dir, id));
    case 'disk':
      // A failed WAL sync must have stopped the node (it may not acknowledge after it): start it again.
      return each(async (id) => {
        const fixed = await fixDisk(dir, id);
        if (isRunning(nodeOf(await readState(dir), id))) return fixed;
        return `${fixed}; it had stopped: ${await restartNode(dir, id, { detached: false })}`;
      });
    case 'rot':
      return 'left to scrub and repair';
  }
}

/** The leader as any node that answers sees it (node 1 when none knows one). */
async function leaderOf(state: ClusterState): Promise<number> {
  const statuses = await Promise.all(state.nodes.map((n) => adminStatus(state, n.s3Url)));
  return statuses.find((s) => s !== undefined && s.leader !== 0)?.leader ?? 1;
}

/** Waits until every node knows the same leader and has applied the same index as the leader committed. */
async function converge(dir: string, log: (l: string) => void): Promise<{ ok: boolean; ms: number; detail: string }> {
  const state = await readState(dir);
  const t0 = performance.now();
  let detail = '';
  try {
    await waitUntil(
      async () => {
        const ready = await Promise.all(state.nodes.map((n) => healthy(n, '/health/ready')));
        const statuses = await Promise.all(state.nodes.map((n) => adminStatus(state, n.s3Url)));
        detail = statuses.map((s, i) => (s ? `n${i + 1}:${s.role}/leader ${s.leader}/applied ${s.appliedIndex}/commit ${s.commitIndex}` : `n${i + 1}:no answer`)).join(' ');
        if (!ready.every(Boolean) || statuses.some((s) => s === undefined)) return false;
        const leaders = new Set(statuses.map((s) => s!.leader));
        const applied = new Set(statuses.map((s) => s!.appliedIndex));
        const commits = new Set(statuses.map((s) => s!.commitIndex));
        return leaders.size === 1 && !leaders.has(0) && applied.size === 1 && commits.size === 1;
      },
      CONVERGE_TIMEOUT_MS,
      'convergence',
      200,
    );
  } catch {
    return { ok: false, ms: performance.now() - t0, detail };
  }
  const ms = performance.now() - t0;
  log(`chaos: converged in ${(ms / 1000).toFixed(1)} s: ${detail}`);
  return { ok: true, ms, detail };
}

/** GETs every key from every node (retrying indeterminate answers a few times); appends the reads to the history. */
async function finalReads(state: ClusterState, keys: string[], history: History, origin: number): Promise<FinalRead[]> {
  const out: FinalRead[] = [];
  for (const node of state.nodes) {
    // Each node gets the whole bound: one shared deadline ran out before the fourth of five
    // nodes in a 10-minute run (656 keys, ~20 s per node on a loaded machine), and reads never
    // made were reported as failed.
    const deadline = performance.now() + CONVERGE_TIMEOUT_MS;
    const client = s3Client(node.s3Url, state.accessKey, state.secretKey);
    try {
      const queue = [...keys];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
            let read: FinalRead = { key, node: node.id, value: undefined, bytesOk: false };
            for (let attempt = 0; attempt < 10 && performance.now() < deadline; attempt++) {
              const invokeTime = performance.now() - origin;
              try {
                let value: string | null = null;
                try {
                  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal: AbortSignal.timeout(5_000) });
                  value = valueOfBody(await res.Body!.transformToByteArray());
                } catch (err) {
                  if ((err as { name?: string }).name !== 'NoSuchKey') throw err;
                }
                const bytesOk = value === null || !value.startsWith('corrupt(');
                read = { key, node: node.id, value, bytesOk };
                const op: RegisterOp = { id: history.nextId++, client: `final@n${node.id}`, key, f: 'get', value, status: 'ok', invokeTime, endTime: performance.now() - origin };
                history.endpointOf.set(op.id, node.id);
                history.registers.push(op);
                break;
              } catch (err) {
                read.value = undefined;
                if (classify(err).status === 'fail') break;
                await new Promise((r) => setTimeout(r, 200));
              }
            }
            out.push(read);
          }
        }),
      );
    } finally {
      client.destroy();
    }
  }
  return out;
}

/** Whether every chunk of every final value has its R verified copies on disk. */
export interface ChunkCopies {
  ok: boolean;
  chunks: number;
  ms: number;
  problems: string[];
}

/** Copies each chunk must have: R = 3, or every node in smaller clusters (ARCHITECTURE.md). */
const REPLICATION_FACTOR = 3;
/** Repair (every TS3GW_MAINTENANCE_INTERVAL_MS) has this long to restore missing copies. */
const COPIES_TIMEOUT_MS = 45_000;

/**
 * After convergence: the chunks of every key's final value (its body cut at the nodes' chunk
 * size, named by sha256) must each be on R nodes' disks with the right bytes. Polls while repair
 * restores copies a killed node missed.
 */
async function chunkCopies(state: ClusterState, finals: FinalRead[], log: (l: string) => void): Promise<ChunkCopies> {
  const chunkBytes = Number(NODE_ENV.TS3GW_CHUNK_SIZE_BYTES);
  const inlineMax = Number(NODE_ENV.TS3GW_INLINE_MAX_BYTES);
  const ids = new Set<string>();
  for (const f of finals) {
    if (typeof f.value !== 'string' || f.value.startsWith('corrupt(')) continue;
    const body = bodyOf(f.value);
    if (body.length <= inlineMax) continue;
    for (let at = 0; at < body.length; at += chunkBytes) ids.add(createHash('sha256').update(body.subarray(at, at + chunkBytes)).digest('hex'));
  }
  const want = Math.min(REPLICATION_FACTOR, state.nodes.length);
  const verified = (id: string) =>
    state.nodes.filter((n) => {
      try {
        return createHash('sha256').update(readFileSync(join(n.dataDir, 'chunks', id.slice(0, 2), id))).digest('hex') === id;
      } catch {
        return false; // no copy on this node
      }
    }).length;
  const t0 = performance.now();
  let short: Array<{ id: string; n: number }> = [];
  try {
    await waitUntil(
      () => {
        short = [...ids].map((id) => ({ id, n: verified(id) })).filter((c) => c.n < want);
        return short.length === 0;
      },
      COPIES_TIMEOUT_MS,
      'chunk copies',
      500,
    );
  } catch {
    // reported below
  }
  const ms = performance.now() - t0;
  const problems = short.map((c) => `chunk ${c.id.slice(0, 12)}… has ${c.n} of ${want} verified copies after ${(ms / 1000).toFixed(0)} s`);
  log(`chaos: ${ids.size} chunks of final values, ${problems.length === 0 ? `all with ${want} verified copies` : `${problems.length} short of ${want} copies`} (${(ms / 1000).toFixed(1)} s)`);
  return { ok: problems.length === 0, chunks: ids.size, ms: Math.round(ms), problems };
}

/** Whether every node's metadata state is the same at the same applied index. */
export interface MetaDigests {
  ok: boolean;
  appliedIndex: number;
  detail: string;
}

/** Once the log is quiet, every node's metadata digest must be equal at an equal applied index. */
const DIGESTS_TIMEOUT_MS = 30_000;

/**
 * After convergence: GET /_ts3gw/admin/meta-digest from every node until all report the same
 * applied index, read without an apply in between (background proposals, e.g. a node
 * registering, may still move it); then the digests must be equal.
 */
async function metaDigests(state: ClusterState, log: (l: string) => void): Promise<MetaDigests> {
  const creds = { accessKeyId: state.accessKey, secretAccessKey: state.secretKey };
  const one = async (url: string) => {
    const raw = new RawS3(url);
    try {
      const res = await raw.signed('GET', '/_ts3gw/admin/meta-digest', { credentials: creds });
      return res.status === 200 ? (JSON.parse(res.text) as { appliedIndex: number; digest: string; stable: boolean }) : undefined;
    } catch {
      return undefined; // not answering yet: asked again
    } finally {
      void raw.close().catch(() => undefined);
    }
  };
  let last: Array<{ appliedIndex: number; digest: string; stable: boolean } | undefined> = [];
  try {
    await waitUntil(
      async () => {
        last = await Promise.all(state.nodes.map((n) => one(n.s3Url)));
        return last.every((d) => d?.stable === true) && new Set(last.map((d) => d!.appliedIndex)).size === 1;
      },
      DIGESTS_TIMEOUT_MS,
      'equal applied indexes for the meta digests',
      500,
    );
  } catch {
    const detail = `no common applied index: ${last.map((d, i) => `n${i + 1}:${d ? d.appliedIndex : 'no answer'}`).join(' ')}`;
    log(`chaos: meta digests: ${detail}`);
    return { ok: false, appliedIndex: 0, detail };
  }
  const digests = new Set(last.map((d) => d!.digest));
  const appliedIndex = last[0]!.appliedIndex;
  const detail = digests.size === 1 ? `equal at applied index ${appliedIndex}` : `differ at applied index ${appliedIndex}: ${last.map((d, i) => `n${i + 1}:${d!.digest.slice(0, 12)}`).join(' ')}`;
  log(`chaos: meta digests ${detail}`);
  return { ok: digests.size === 1, appliedIndex, detail };
}

function sleepUntil(t: number): Promise<void> {
  const ms = t - performance.now();
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

function summarize(r: {
  options: ChaosOptions;
  outDir: string;
  started: number;
  schedule: PlannedFault[];
  faults: ExecutedFault[];
  history: History;
  convergence: { ok: boolean; ms: number; detail: string; chunkCopies: ChunkCopies; metaDigests: MetaDigests };
  lin: ReturnType<typeof checkRegisters>;
  durability: ReturnType<typeof checkDurability>;
  listing: ReturnType<typeof checkListings>;
  timestamps: TimestampCheck;
  harness: string[];
}): ChaosSummary {
  const byKind: Record<string, Record<string, number>> = {};
  const byEndpoint: Record<string, Record<string, number>> = {};
  const errors: Record<string, number> = {};
  const lists: Record<string, number> = {};
  const clientOps = r.history.registers.filter((o) => !o.client.startsWith('final@'));
  for (const o of clientOps) {
    const kind = byKind[o.f] ?? {};
    byKind[o.f] = kind;
    kind[o.status] = (kind[o.status] ?? 0) + 1;
    const ep = String(r.history.endpointOf.get(o.id) ?? '?');
    const epName = ep === '0' ? 'lb' : `node${ep}`;
    const e = byEndpoint[epName] ?? {};
    byEndpoint[epName] = e;
    e[o.status] = (e[o.status] ?? 0) + 1;
    if (o.error) errors[`${o.f}: ${o.error}`] = (errors[`${o.f}: ${o.error}`] ?? 0) + 1;
  }
  for (const l of r.history.lists) lists[l.status] = (lists[l.status] ?? 0) + 1;
  const windows = r.faults.map((f) => {
    const endpoints: ChaosSummary['windows'][number]['endpoints'] = {};
    const latencies = new Map<string, number[]>();
    for (const o of clientOps) {
      if (o.invokeTime < f.startMs || o.invokeTime > f.endMs) continue;
      const ep = r.history.endpointOf.get(o.id) ?? 0;
      const name = ep === 0 ? 'lb' : `node${ep}`;
      const e = endpoints[name] ?? { ok: 0, fail: 0, info: 0, p50Ms: 0, maxMs: 0 };
      endpoints[name] = e;
      e[o.status]++;
      const l = latencies.get(name) ?? [];
      latencies.set(name, l);
      l.push(o.endTime - o.invokeTime);
    }
    for (const [name, l] of latencies) {
      l.sort((a, b) => a - b);
      endpoints[name]!.p50Ms = Math.round(l[Math.floor(l.length / 2)] ?? 0);
      endpoints[name]!.maxMs = Math.round(l.at(-1) ?? 0);
    }
    return { fault: `${f.nemesis} ${f.nodes.join(',')}`, startMs: Math.round(f.startMs), endMs: Math.round(f.endMs), endpoints };
  });
  const findings: string[] = [];
  const serverErrors = [...r.history.registers].filter((o) => /^5\d\d/.test(o.error ?? '') && !(o.error ?? '').startsWith('503'));
  for (const o of serverErrors.slice(0, 20)) {
    findings.push(`server error: ${o.client} ${o.f} ${o.key} at ${Math.round(o.invokeTime)} ms: ${o.error}`);
  }
  if (serverErrors.length > 20) findings.push(`… ${serverErrors.length - 20} more server errors`);
  for (const f of r.faults) {
    if (f.nemesis !== 'partition' || f.error) continue;
    const slow = clientOps.filter((o) => {
      const ep = r.history.endpointOf.get(o.id) ?? 0;
      return f.nodes.includes(ep) && o.invokeTime >= f.startMs + MINORITY_REFUSES_AFTER_MS && o.invokeTime <= f.endMs && o.status === 'info' && /timeout|ETIMEDOUT|TimeoutError/i.test(o.error ?? '');
    });
    if (slow.length > 0) {
      findings.push(
        `partition ${f.nodes.join(',')} (${Math.round(f.startMs)}–${Math.round(f.endMs)} ms): ${slow.length} request(s) to the minority started over ${MINORITY_REFUSES_AFTER_MS} ms into the partition got no answer within the client timeout (expected a quick 503), e.g. ${slow[0]!.client} ${slow[0]!.f} at ${Math.round(slow[0]!.invokeTime)} ms`,
      );
    }
  }
  const { log: _log, ...options } = r.options;
  const ok = r.lin.ok !== false && r.durability.ok && r.listing.ok && r.timestamps.ok && r.convergence.ok && r.convergence.chunkCopies.ok && r.convergence.metaDigests.ok;
  return {
    ok,
    seed: r.options.seed,
    options,
    outDir: r.outDir,
    durationMs: Math.round(performance.now() - r.started),
    schedule: r.schedule,
    faults: r.faults.map((f) => ({ ...f, startMs: Math.round(f.startMs), endMs: Math.round(f.endMs) })),
    ops: { total: clientOps.length, byKind, byEndpoint, lists },
    errors,
    convergence: { ...r.convergence, ms: Math.round(r.convergence.ms) },
    windows,
    checks: {
      linearizability: { ok: r.lin.ok, keys: r.lin.keys, ops: r.lin.ops, explored: r.lin.explored, unknownKeys: r.lin.unknownKeys, violations: r.lin.violations.map((v) => v.text) },
      durability: r.durability,
      listing: r.listing,
      timestamps: r.timestamps,
    },
    harness: r.harness,
    findings,
  };
}

function report(s: ChaosSummary, log: (l: string) => void): void {
  const lin = s.checks.linearizability;
  log(
    `chaos: ${s.ok ? 'OK' : 'VIOLATION'} seed ${s.seed} in ${(s.durationMs / 1000).toFixed(1)} s: ${s.ops.total} ops ${JSON.stringify(s.ops.byKind)}, ` +
      `lists ${JSON.stringify(s.ops.lists)}, ${s.faults.length} faults; linearizable: ${lin.ok} (${lin.keys} keys, ${lin.ops} ops, ${lin.explored} states); ` +
      `durable: ${s.checks.durability.ok}; listings: ${s.checks.listing.ok} (${s.checks.listing.lists}); timestamps: ${s.checks.timestamps.ok} (${s.checks.timestamps.pairs} pairs); converged: ${s.convergence.ok}; ` +
      `chunk copies: ${s.convergence.chunkCopies.ok} (${s.convergence.chunkCopies.chunks}); meta digests: ${s.convergence.metaDigests.ok} (${s.convergence.metaDigests.detail})`,
  );
  for (const v of lin.violations) log(v);
  for (const p of [...s.checks.durability.problems, ...s.checks.listing.problems, ...s.checks.timestamps.problems].slice(0, 20)) log(`  ${p}`);
  for (const p of s.convergence.chunkCopies.problems.slice(0, 10)) log(`  ${p}`);
  for (const h of s.harness) log(`  harness: ${h}`);
  for (const f of s.findings) log(`  finding: ${f}`);
  log(`chaos: summary ${join(s.outDir, 'summary.json')}, chart ${join(s.outDir, 'availability.svg')}`);
}

/** Parses the CLI flags into options; throws a TypeError naming a bad one. */
export function parseChaosArgs(argv: string[]): ChaosOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '3' },
      time: { type: 'string', default: '60' },
      nemesis: { type: 'string', default: 'partition,kill,pause' },
      seed: { type: 'string', default: '42' },
      clients: { type: 'string' },
      'ops-max': { type: 'string' },
      out: { type: 'string' },
      source: { type: 'string' },
      lb: { type: 'string' },
      net: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const int = (name: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new TypeError(`--${name} must be an integer in ${min}..${max}, got ${v}`);
    return n;
  };
  const nemeses = values.nemesis.split(',').filter((s) => s !== '' && s !== 'none');
  for (const n of nemeses) if (!(NEMESES as readonly string[]).includes(n)) throw new TypeError(`--nemesis: unknown "${n}" (known: ${NEMESES.join(', ')})`);
  if (values.lb !== undefined && values.lb !== 'haproxy') throw new TypeError('--lb must be haproxy');
  return {
    nodes: int('nodes', values.nodes, 1, 9),
    timeS: int('time', values.time, 5, 3_600),
    nemeses: nemeses as Nemesis[],
    seed: int('seed', values.seed, 0, 2 ** 31),
    ...(values.clients !== undefined ? { clients: int('clients', values.clients, 1, 64) } : {}),
    ...(values['ops-max'] !== undefined ? { opsMax: int('ops-max', values['ops-max'], 1, 10_000_000) } : {}),
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    ...(values.source !== undefined ? { source: values.source } : {}),
    ...(values.lb === 'haproxy' ? { lb: 'haproxy' as const } : {}),
    ...(values.net !== undefined ? { net: int('net', values.net, 0, 255) } : {}),
    keep: values.keep,
  };
}

/** Removes a clean run's node data (the summary, chart, history and logs stay). */
export function dropData(summary: ChaosSummary): void {
  if (!summary.ok || summary.options.keep) return;
  for (let id = 1; id <= summary.options.nodes; id++) rmSync(join(summary.outDir, 'cluster', `node${id}`), { recursive: true, force: true });
}

if (import.meta.main) {
  let options: ChaosOptions;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).message}\n`);
    process.exit(2);
  }
  runChaos(options).then(
    (summary) => {
      dropData(summary);
      process.exit(summary.ok ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`chaos: the run failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
