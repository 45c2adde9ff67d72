/**
 * `npm run cluster` — a local ts3gw cluster on one machine: N processes (default 3, or
 * `npm run cluster -- --nodes 5`) on 127.0.0.1 with separate data dirs (./.ts3gw-cluster/nodeN)
 * and ports (S3 9000+N-1... unless taken; Raft 9101+N-1), one shared root key pair. Prints the S3
 * endpoints and credentials; Ctrl-C stops every node (SIGTERM, then SIGKILL after 10 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    'base-port': { type: 'string', default: '9000' },
    dir: { type: 'string', default: '.ts3gw-cluster' },
  },
});
const count = Number(values.nodes);
const basePort = Number(values['base-port']);
if (!Number.isInteger(count) || count < 1 || count > 16) throw new TypeError('--nodes must be 1..16');

const root = values.dir;
await mkdir(root, { recursive: true });
// One key pair and one cluster secret for the whole local cluster, kept across runs.
const secretsPath = join(root, 'secrets.json');
let secrets: { accessKey: string; secretKey: string; clusterSecret: string };
try {
  secrets = JSON.parse(await readFile(secretsPath, 'utf8')) as typeof secrets;
} catch {
  secrets = {
    accessKey: `TS3${randomBytes(8).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(24).toString('base64url'),
    clusterSecret: randomBytes(24).toString('base64url'),
  };
  await writeFile(secretsPath, JSON.stringify(secrets, null, 2), { mode: 0o600 });
}

const ids = Array.from({ length: count }, (_, i) => i + 1);
const s3Port = (id: number) => basePort + id - 1;
const raftPort = (id: number) => basePort + 100 + id;
const peers = ids.map((id) => `${id}@127.0.0.1:${raftPort(id)}`).join(',');
const children = new Map<number, ChildProcess>();

for (const id of ids) {
  const child = spawn(process.execPath, ['src/main.ts'], {
    env: {
      ...process.env,
      TS3GW_NODE_ID: String(id),
      TS3GW_PEERS: peers,
      TS3GW_CLUSTER_SECRET: secrets.clusterSecret,
      TS3GW_ROOT_ACCESS_KEY: secrets.accessKey,
      TS3GW_ROOT_SECRET_KEY: secrets.secretKey,
      TS3GW_DATA_DIR: join(root, `node${id}`),
      TS3GW_S3_HOST: '127.0.0.1',
      TS3GW_S3_PORT: String(s3Port(id)),
      TS3GW_RAFT_HOST: '127.0.0.1',
      TS3GW_RAFT_PORT: String(raftPort(id)),
      TS3GW_LOG_LEVEL: process.env['TS3GW_LOG_LEVEL'] ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.set(id, child);
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[node${id}] ${line}\n`));
  }
  child.on('exit', (code, signal) => {
    process.stdout.write(`[node${id}] exited (${signal ?? code})\n`);
    children.delete(id);
    if (children.size === 0) process.exit(0);
  });
}

process.stdout.write(
  `\nts3gw local cluster: ${count} node(s)\n` +
    ids.map((id) => `  node${id}: S3 http://127.0.0.1:${s3Port(id)}  raft 127.0.0.1:${raftPort(id)}  data ${join(root, `node${id}`)}`).join('\n') +
    `\n\n  export AWS_ACCESS_KEY_ID=${secrets.accessKey} AWS_SECRET_ACCESS_KEY=${secrets.secretKey} AWS_DEFAULT_REGION=us-east-1\n` +
    `  aws --endpoint-url http://127.0.0.1:${s3Port(1)} s3 mb s3://demo\n\nCtrl-C stops the cluster.\n\n`,
);

let stopping = false;
const stopAll = () => {
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, 10_000).unref();
};
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);
