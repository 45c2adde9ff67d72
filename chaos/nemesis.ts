/**
 * `npm run nemesis -- [--dir DIR] ACTION [TARGET]`: faults for a running local cluster (the one
 * `npm run cluster` starts; DIR is its state dir, default .ts3gw-cluster or $TS3GW_CLUSTER_DIR).
 *
 *   kill N          SIGKILL node N; returns once it is gone
 *   stop N          SIGTERM node N (graceful); returns once it exited
 *   restart N       start node N again (same command, env and data); returns once it serves S3
 *   pause N         SIGSTOP node N        resume N    SIGCONT node N
 *   partition A|B   cut the node groups apart, both directions (e.g. 1|2,3 or 1,2|3,4,5)
 *   oneway A>B      drop packets from group A to group B only (e.g. 1>2,3)
 *   bridge B|X|Y    groups X and Y cut apart, both still reach bridge node B (e.g. 3|1,2|4,5)
 *   heal            remove every partition
 *   clock N OFFSET_MS [RATE]   node N's wall clock shifted (and running at RATE); clock N 0 fixes it
 *   disk N slow MS | disk N fsync-fail chunk|wal|all | disk N ok   slow or failing durable writes
 *   rot N flip|delete COUNT    corrupt or delete COUNT of node N's chunk files (scrub/repair mend them)
 *   status          print each node's pid, address, ports and state
 *
 * Exit 0 on success, 1 with a one-line reason otherwise, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { isRunning, procInfo, readState } from '../cluster/local-cluster.ts';
import { SeededRandom } from '../src/util/random.ts';
import { heal, killNode, partition, partitionBridge, partitionOneWay, pauseNode, restartNode, resumeNode, stopNode } from './faults.ts';
import { failFsync, fixClock, fixDisk, rotChunks, skewClock, slowDisk } from './node-faults.ts';

const USAGE =
  'usage: npm run nemesis -- [--dir DIR] kill N | stop N | restart N | pause N | resume N | partition A|B | oneway A>B | bridge B|X|Y | heal | clock N OFFSET_MS [RATE] | disk N slow MS|fsync-fail chunk|wal|all|ok | rot N flip|delete COUNT | status';

async function main(): Promise<string> {
  const { values, positionals } = parseArgs({ options: { dir: { type: 'string' } }, allowPositionals: true });
  const dir = values.dir ?? process.env['TS3GW_CLUSTER_DIR'] ?? '.ts3gw-cluster';
  const [action, target, ...rest] = positionals;
  // Actions and how many words follow them (min, max).
  const arity: Record<string, [number, number]> = {
    kill: [1, 1], stop: [1, 1], restart: [1, 1], pause: [1, 1], resume: [1, 1], partition: [1, 1], oneway: [1, 1], bridge: [1, 1],
    heal: [0, 0], status: [0, 0], clock: [2, 3], disk: [2, 3], rot: [3, 3],
  };
  const words = positionals.length - 1;
  const want = action === undefined ? undefined : arity[action];
  if (action === undefined) throw new UsageError(USAGE);
  if (want === undefined) throw new UsageError(`unknown action "${action}"\n${USAGE}`);
  if (words < want[0] || words > want[1]) throw new UsageError(USAGE);
  const id = () => {
    const n = Number(target);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`"${target}" is not a node number`);
    return n;
  };
  const number = (s: string | undefined, what: string) => {
    const n = Number(s);
    if (s === undefined || !Number.isFinite(n)) throw new UsageError(`"${s}" is not a number (${what})`);
    return n;
  };
  switch (action) {
    case 'kill':
      return killNode(dir, id());
    case 'stop':
      return stopNode(dir, id());
    case 'restart':
      return restartNode(dir, id(), { detached: true });
    case 'pause':
      return pauseNode(dir, id());
    case 'resume':
      return resumeNode(dir, id());
    case 'partition':
      return partition(dir, target!);
    case 'oneway':
      return partitionOneWay(dir, target!);
    case 'bridge': {
      const groups = target!.split('|').map((g) => g.split(',').filter((x) => x !== '').map(Number));
      if (groups.length !== 3 || groups[0]!.length !== 1) throw new UsageError('bridge B|X|Y: one bridge node, then two groups, like 3|1,2|4,5');
      return partitionBridge(dir, groups[0]![0]!, groups[1]!, groups[2]!);
    }
    case 'heal':
      return heal(dir);
    case 'clock': {
      const offset = number(rest[0], 'offset ms');
      const rate = rest[1] === undefined ? 1 : number(rest[1], 'rate');
      return offset === 0 && rate === 1 ? fixClock(dir, id()) : skewClock(dir, id(), offset, rate);
    }
    case 'disk': {
      const [mode, arg] = rest;
      if (mode === 'ok' && arg === undefined) return fixDisk(dir, id());
      if (mode === 'slow') return slowDisk(dir, id(), number(arg, 'delay ms'));
      if (mode === 'fsync-fail' && (arg === 'chunk' || arg === 'wal' || arg === 'all')) return failFsync(dir, id(), arg);
      throw new UsageError('disk N slow MS | disk N fsync-fail chunk|wal|all | disk N ok');
    }
    case 'rot': {
      const [how, count] = rest;
      if (how !== 'flip' && how !== 'delete') throw new UsageError('rot N flip|delete COUNT');
      return rotChunks(dir, id(), how, number(count, 'count'), new SeededRandom(Date.now()));
    }
    case 'status': {
      const state = await readState(dir);
      return state.nodes
        .map((n) => `node ${n.id}: ${isRunning(n) ? `pid ${n.pid} (${procInfo(n.pid!)?.state})` : 'not running'}  S3 ${n.s3Url}  raft ${n.address}:${n.raftPort}  data ${n.dataDir}`)
        .join('\n');
    }
    default:
      throw new UsageError(`unknown action "${action}"\n${USAGE}`);
  }
}

class UsageError extends Error {}

main().then(
  (line) => {
    process.stdout.write(`${line}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`nemesis: ${(err as Error).message.split('\n')[0]}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
