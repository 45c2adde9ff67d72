/**
 * `npm run cluster` — a local ts3gw cluster on one machine: N processes (default 3, or
 * `npm run cluster -- --nodes 5`), node N listening on its own loopback address 127.0.0.<10+N>
 * (S3 on port 9000+N-1, Raft on 9100+N), separate data dirs (./.ts3gw-cluster/nodeN, logs in
 * nodeN.log), one shared root key pair. Every node's pid, address, ports, command and env are
 * recorded in ./.ts3gw-cluster/state.json, which `npm run nemesis` acts on (kill, restart,
 * pause, partition). Prints the endpoints and credentials and follows the nodes' logs; Ctrl-C
 * stops every node recorded in the state file (SIGTERM, then SIGKILL after 10 s).
 * `--env TS3GW_X=V` (repeatable) sets a node setting for every node, e.g.
 * `--env TS3GW_MAINTENANCE_INTERVAL_MS=2000` to watch a drain or a refill move quickly (the
 * nodes take no TS3GW_* variable from this process's environment).
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalCluster, stopLocalCluster } from './local-cluster.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    'base-port': { type: 'string', default: '9000' },
    net: { type: 'string', default: '0' },
    dir: { type: 'string', default: '.ts3gw-cluster' },
    /** Run the nodes from another checkout's src/main.ts. */
    source: { type: 'string' },
    /** TS3GW_X=V settings for every node. */
    env: { type: 'string', multiple: true, default: [] },
  },
});
const env: Record<string, string> = {};
for (const pair of values.env) {
  const m = /^(TS3GW_[A-Z0-9_]+)=(.*)$/.exec(pair);
  if (!m) throw new TypeError(`--env takes TS3GW_NAME=value, got "${pair}"`);
  env[m[1]!] = m[2]!;
}
const count = Number(values.nodes);
const basePort = Number(values['base-port']);
if (!Number.isInteger(count) || count < 1 || count > 16) throw new TypeError('--nodes must be 1..16');

// Follow only what this run's nodes log (restarted nodes append to the same files).
const logSizeAtStart = (id: number) => {
  try {
    return statSync(join(values.dir, `node${id}.log`)).size;
  } catch {
    return 0;
  }
};
const startOffsets = new Map(Array.from({ length: count }, (_, i) => [i + 1, logSizeAtStart(i + 1)]));

const { state } = await startLocalCluster({ nodes: count, dir: values.dir, net: Number(values.net), s3BasePort: basePort, raftBasePort: basePort + 100, env, startTimeoutMs: 120_000, ...(values.source ? { source: values.source } : {}) });

process.stdout.write(
  `\nts3gw local cluster: ${count} node(s), state in ${state.dir}/state.json\n` +
    state.nodes.map((n) => `  node${n.id}: S3 ${n.s3Url}  raft ${n.address}:${n.raftPort}  pid ${n.pid}  data ${n.dataDir}`).join('\n') +
    `\n\n  export AWS_ACCESS_KEY_ID=${state.accessKey} AWS_SECRET_ACCESS_KEY=${state.secretKey} AWS_DEFAULT_REGION=us-east-1\n` +
    `  aws --endpoint-url ${state.nodes[0]?.s3Url} s3 mb s3://demo\n` +
    `  npm run nemesis -- kill 2 | restart 2 | pause 2 | resume 2 | partition '1|2,3' | heal\n\nCtrl-C stops the cluster.\n\n`,
);

const offsets = startOffsets;
const buffer = Buffer.allocUnsafe(64 * 1024);
const follow = setInterval(() => {
  for (const node of state.nodes) {
    let size = 0;
    try {
      size = statSync(node.logFile).size;
    } catch {
      continue; // not created yet
    }
    let at = offsets.get(node.id) ?? 0;
    if (size <= at) continue;
    const fd = openSync(node.logFile, 'r');
    try {
      while (at < size) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - at), at);
        if (n <= 0) break;
        for (const line of buffer.subarray(0, n).toString('utf8').split('\n')) if (line !== '') process.stdout.write(`[node${node.id}] ${line}\n`);
        at += n;
      }
    } finally {
      closeSync(fd);
    }
    offsets.set(node.id, at);
  }
}, 250);

let stopping = false;
const stopAll = () => {
  if (stopping) return;
  stopping = true;
  clearInterval(follow);
  stopLocalCluster(state.dir).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`stopping the cluster: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);
