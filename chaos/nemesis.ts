/**
 * `npm run nemesis -- [--dir DIR] ACTION [TARGET]`: faults for a running local cluster (the one
 * `npm run cluster` starts; DIR is its state dir, default .ts3gw-cluster or $TS3GW_CLUSTER_DIR).
 *
 *   kill N          SIGKILL node N; returns once it is gone
 *   stop N          SIGTERM node N (graceful); returns once it exited
 *   restart N       start node N again (same command, env and data); returns once it serves S3
 *   pause N         SIGSTOP node N        resume N    SIGCONT node N
 *   partition A|B   cut the node groups apart, both directions (e.g. 1|2,3 or 1,2|3,4,5)
 *   heal            remove every partition
 *   status          print each node's pid, address, ports and state
 *
 * Exit 0 on success, 1 with a one-line reason otherwise, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { isRunning, procInfo, readState } from '../cluster/local-cluster.ts';
import { heal, killNode, partition, pauseNode, restartNode, resumeNode, stopNode } from './faults.ts';

const USAGE = 'usage: npm run nemesis -- [--dir DIR] kill N | stop N | restart N | pause N | resume N | partition A|B | heal | status';

async function main(): Promise<string> {
  const { values, positionals } = parseArgs({ options: { dir: { type: 'string' } }, allowPositionals: true });
  const dir = values.dir ?? process.env['TS3GW_CLUSTER_DIR'] ?? '.ts3gw-cluster';
  const [action, target, ...rest] = positionals;
  const needsTarget = ['kill', 'stop', 'restart', 'pause', 'resume', 'partition'];
  if (action === undefined || rest.length > 0 || needsTarget.includes(action) !== (target !== undefined)) throw new UsageError(USAGE);
  const id = () => {
    const n = Number(target);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`"${target}" is not a node number`);
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
    case 'heal':
      return heal(dir);
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
