/**
 * The nemesis actions on a local cluster described by its state file (cluster/local-cluster.ts):
 * kill (SIGKILL, returns once the process is gone), stop (SIGTERM, returns once it exited),
 * restart (same command, env and data dir; returns once it serves S3), a rolling restart, pause/resume (SIGSTOP/SIGCONT, returns once the kernel reports the
 * process stopped/running), partition (nftables, both directions) and heal. `npm run nemesis` and
 * the chaos runner both call these, so a user's own fault tool gets exactly what the suite uses.
 *
 * Every action reads the state file, acts, checks the effect, and writes the state back; each
 * failure is an Error with a one-line message.
 */
import { execFileSync } from 'node:child_process';
import {
  type ClusterState,
  deleteNftTable,
  healthy,
  isRunning,
  nft,
  nodeOf,
  procInfo,
  readState,
  spawnNode,
  systemBinary,
  waitUntil,
  writeState,
} from '../cluster/local-cluster.ts';

/** How long a signalled process may take to die or stop. */
const SIGNAL_TIMEOUT_MS = 5_000;
/** How long a restarted node may take to serve S3. */
const RESTART_TIMEOUT_MS = 30_000;

/** Options of the process actions. */
export interface FaultOptions {
  /** Restarted processes outlive this one (the nemesis CLI) or stay its children (the runner). */
  detached?: boolean;
}

/** kill -9 node `id`; resolves once its process is gone. */
export async function killNode(dir: string, id: number): Promise<string> {
  const state = await readState(dir);
  const node = nodeOf(state, id);
  if (!isRunning(node)) throw new Error(`node ${id} is not running`);
  const pid = node.pid!;
  process.kill(pid, 'SIGKILL');
  await waitUntil(() => !isRunning(node), SIGNAL_TIMEOUT_MS, `node ${id} (pid ${pid}) to die`);
  node.pid = null;
  node.pidStartTicks = null;
  await writeState(state);
  return `killed node ${id} (pid ${pid})`;
}

/** How long a graceful stop (SIGTERM) may take; the node bounds its own shutdown at 20 s. */
const STOP_TIMEOUT_MS = 25_000;

/** Graceful stop: SIGTERM node `id`; resolves once its process has exited. */
export async function stopNode(dir: string, id: number): Promise<string> {
  const state = await readState(dir);
  const node = nodeOf(state, id);
  if (!isRunning(node)) throw new Error(`node ${id} is not running`);
  const pid = node.pid!;
  const t0 = performance.now();
  process.kill(pid, 'SIGTERM');
  await waitUntil(() => !isRunning(node), STOP_TIMEOUT_MS, `node ${id} (pid ${pid}) to exit after SIGTERM`);
  node.pid = null;
  node.pidStartTicks = null;
  await writeState(state);
  return `stopped node ${id} (pid ${pid}) in ${Math.round(performance.now() - t0)} ms`;
}

/**
 * A rolling restart as an upgrade does it: each node in `order` is stopped gracefully, started
 * again on its data, and must report ready (a leader known, caught up) before the next one goes.
 */
export async function rollingRestart(dir: string, order: number[], options: FaultOptions = {}): Promise<string> {
  const steps: string[] = [];
  for (const id of order) {
    steps.push(await stopNode(dir, id));
    await restartNode(dir, id, options);
    const node = nodeOf(await readState(dir), id);
    await waitUntil(() => healthy(node, '/health/ready'), RESTART_TIMEOUT_MS, `node ${id} to be ready after its restart`, 100);
    steps.push(`node ${id} ready`);
  }
  return `rolling restart ${order.join(',')}: ${steps.join('; ')}`;
}

/** Starts node `id` again with its recorded command, env and data (killing it first if it runs); resolves once it serves S3. */
export async function restartNode(dir: string, id: number, options: FaultOptions = {}): Promise<string> {
  let state = await readState(dir);
  if (isRunning(nodeOf(state, id))) {
    await killNode(dir, id);
    state = await readState(dir);
  }
  const node = nodeOf(state, id);
  try {
    await spawnNode(state, node, { detached: options.detached ?? true, timeoutMs: RESTART_TIMEOUT_MS });
  } finally {
    await writeState(state);
  }
  return `restarted node ${id} (pid ${node.pid})`;
}

/** SIGSTOP node `id`; resolves once the kernel reports it stopped. */
export async function pauseNode(dir: string, id: number): Promise<string> {
  return signalAndWait(dir, id, 'SIGSTOP', (s) => s === 'T', 'paused');
}

/** SIGCONT node `id`; resolves once it is no longer stopped. */
export async function resumeNode(dir: string, id: number): Promise<string> {
  return signalAndWait(dir, id, 'SIGCONT', (s) => s !== 'T' && s !== 't', 'resumed');
}

async function signalAndWait(dir: string, id: number, signal: NodeJS.Signals, reached: (s: string) => boolean, what: string): Promise<string> {
  const state = await readState(dir);
  const node = nodeOf(state, id);
  if (!isRunning(node)) throw new Error(`node ${id} is not running`);
  const pid = node.pid!;
  process.kill(pid, signal);
  await waitUntil(() => reached(procInfo(pid)?.state ?? 'gone'), SIGNAL_TIMEOUT_MS, `node ${id} (pid ${pid}) to be ${what}`);
  return `${what} node ${id} (pid ${pid})`;
}

/** Parses `1|2,3` (or `1,2|3,4|5`): node groups that must not reach each other. */
export function parsePartition(spec: string, state: ClusterState): number[][] {
  const groups = spec.split('|').map((g) =>
    g
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => {
        const id = Number(s);
        if (!Number.isInteger(id)) throw new Error(`partition "${spec}": "${s}" is not a node number`);
        nodeOf(state, id);
        return id;
      }),
  );
  if (groups.length < 2 || groups.some((g) => g.length === 0)) throw new Error(`partition "${spec}" needs at least two non-empty groups, like 1|2,3`);
  const all = groups.flat();
  if (new Set(all).size !== all.length) throw new Error(`partition "${spec}" names a node twice`);
  return groups;
}

/**
 * Cuts every pair of nodes in different groups, both directions, replacing any earlier
 * partition in one nftables transaction. Nodes not named stay connected to everyone; clients
 * (outside the nodes' cgroups) still reach every node.
 */
export async function partition(dir: string, spec: string): Promise<string> {
  const state = await readState(dir);
  const groups = parsePartition(spec, state);
  const pairs: Array<[number, number]> = [];
  for (const [i, from] of groups.entries()) for (const [j, to] of groups.entries()) if (i !== j) for (const a of from) for (const b of to) pairs.push([a, b]);
  const rules = await dropPairs(state, pairs);
  return `partitioned ${groups.map((g) => g.join(',')).join(' | ')} (${rules} rules)`;
}

/**
 * A one-way partition: packets from the nodes of `from` to those of `to` are dropped, the other
 * direction is delivered (`from` still hears `to`, but nothing it says arrives; over TCP its
 * acknowledgements are lost too, so it receives what the other side retransmits). Spec `A>B`,
 * e.g. `1>2,3`.
 */
export async function partitionOneWay(dir: string, spec: string): Promise<string> {
  const state = await readState(dir);
  const [from, to] = parsePartition(spec.replace('>', '|'), state);
  if (!spec.includes('>') || from === undefined || to === undefined || spec.split('>').length !== 2) throw new Error(`one-way partition "${spec}" must be two groups like 1>2,3`);
  const pairs: Array<[number, number]> = [];
  for (const a of from) for (const b of to) pairs.push([a, b]);
  const rules = await dropPairs(state, pairs);
  return `one-way partition ${from.join(',')} > ${to.join(',')} (${rules} rules)`;
}

/**
 * A bridge: `sideA` and `sideB` cannot reach each other (both directions) but both reach
 * `bridge`, so each side plus the bridge may be a majority of its own (Jepsen's bridge).
 */
export async function partitionBridge(dir: string, bridge: number, sideA: number[], sideB: number[]): Promise<string> {
  const state = await readState(dir);
  parsePartition(`${[bridge].join(',')}|${sideA.join(',')}|${sideB.join(',')}`, state);
  const pairs: Array<[number, number]> = [];
  for (const a of sideA) for (const b of sideB) pairs.push([a, b], [b, a]);
  const rules = await dropPairs(state, pairs);
  return `bridge ${sideA.join(',')} | ${bridge} | ${sideB.join(',')} (${rules} rules)`;
}

/** Replaces this cluster's nftables table with one dropping packets of each [from, to] pair; returns the rule count. */
async function dropPairs(state: ClusterState, pairs: Array<[number, number]>): Promise<number> {
  ensureTool('nft', 'nftables');
  const rules: string[] = [];
  for (const [a, b] of pairs) {
    const src = nodeOf(state, a);
    if (src.cgroup === null) throw new Error(`node ${a} runs without a cgroup (cgroup v2 not writable here): cannot partition`);
    rules.push(`    socket cgroupv2 level 1 "${state.nftCgroupPrefix}${src.cgroup}" ip daddr ${nodeOf(state, b).address} drop`);
  }
  // Declaring and deleting first makes the whole replacement one transaction that works whether
  // or not the table existed.
  const script = [
    `table inet ${state.nftTable} {}`,
    `delete table inet ${state.nftTable}`,
    `table inet ${state.nftTable} {`,
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n');
  await nft(['-f', '-'], script);
  return rules.length;
}

/** Removes every partition. */
export async function heal(dir: string): Promise<string> {
  const state = await readState(dir);
  await deleteNftTable(state);
  return 'healed';
}

/** Makes sure system binary `bin` exists, installing Debian package `pkg` with apt-get when it does not (as root). */
export function ensureTool(bin: string, pkg: string): void {
  const has = () => systemBinary(bin) !== undefined;
  if (has()) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', pkg], { stdio: 'ignore', env, timeout: 300_000 });
  } catch {
    // The package lists may be missing or stale on a fresh machine.
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', pkg], { stdio: 'ignore', env, timeout: 300_000 });
  }
  if (!has()) throw new Error(`${bin} is missing and installing ${pkg} did not provide it`);
}
