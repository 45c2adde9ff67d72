#!/usr/bin/env node
/**
 * ts3ctl — the operator's command line over the admin API of any node.
 *
 *   ts3ctl status                         the cluster at a glance, one row per node
 *   ts3ctl nodes                          members: role, addresses, gossip state, ring share
 *   ts3ctl decommission <node> [--wait [--timeout S]]   drain a node's chunks to others, then remove it
 *   ts3ctl is-safe-to-remove <node>       whether removing it now would lose quorum or data
 *   ts3ctl replace <node> [--wait [--timeout S]]   give a dead node's place to a new node started with its id
 *   ts3ctl keys list | create [--admin] [--description D] | delete|disable|enable <key> | allow <key> <bucket> read|write|owner | revoke <key> <bucket>
 *   ts3ctl audit verify [--file PATH]     check a node's audit log for edited, deleted or reordered lines (local, no key)
 *
 * Options: --endpoint URL (TS3GW_ENDPOINT, default http://127.0.0.1:9000), --access-key /
 * --secret-key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or TS3GW_ROOT_ACCESS_KEY /
 * TS3GW_ROOT_SECRET_KEY), --region (us-east-1), --json for machine-readable output.
 * Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage.
 */
import { parseArgs } from 'node:util';
import { type AdminTarget, adminRequest } from './admin-client.ts';
import { decommission, isSafeToRemove } from './decommission.ts';
import { replace } from './replace.ts';
import { formatBytes, table } from './format.ts';
import { keys } from './keys.ts';
import { audit } from './audit.ts';

/** What GET /cluster answers. */
export interface ClusterAnswer {
  nodeId: number;
  clusterId: string;
  role: string;
  leader: number;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  voters: number[];
  learners: number[];
  disk?: { totalBytes: number; freeBytes: number };
}

/** What GET /nodes answers. */
export interface NodesAnswer {
  nodeId: number;
  leader: number;
  term: number;
  lastIndex: number;
  nodes: Array<{
    nodeId: number;
    role: string;
    raftAddress?: string;
    s3Url?: string;
    zone?: string;
    gossip: string;
    ringSharePercent: number;
    match?: number;
    lagEntries?: number;
    draining?: boolean;
  }>;
}

const USAGE = `usage: ts3ctl <status|nodes|decommission <node> [--wait]|is-safe-to-remove <node>|replace <node> [--wait]|keys list|create|delete|disable|enable|allow|revoke> [--endpoint URL] [--access-key K --secret-key S] [--region R] [--json]`;

/** Thrown for a wrong command line (exit 2). */
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      endpoint: { type: 'string' },
      'access-key': { type: 'string' },
      'secret-key': { type: 'string' },
      region: { type: 'string' },
      json: { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      admin: { type: 'boolean', default: false },
      description: { type: 'string' },
      file: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const env = process.env;
  if (values.help || positionals.length === 0) throw new UsageError(USAGE);
  // Reads a local file: needs no endpoint and no key.
  if (positionals[0] === 'audit') return audit(positionals.slice(1), { json: values.json, ...(values.file ? { file: values.file } : {}) }, (t) => process.stdout.write(`${t}\n`));
  const accessKeyId = values['access-key'] ?? env['AWS_ACCESS_KEY_ID'] ?? env['TS3GW_ROOT_ACCESS_KEY'];
  const secretAccessKey = values['secret-key'] ?? env['AWS_SECRET_ACCESS_KEY'] ?? env['TS3GW_ROOT_SECRET_KEY'];
  if (!accessKeyId || !secretAccessKey) throw new UsageError('ts3ctl needs the root key: --access-key/--secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY');
  const target: AdminTarget = {
    endpoint: values.endpoint ?? env['TS3GW_ENDPOINT'] ?? 'http://127.0.0.1:9000',
    accessKeyId,
    secretAccessKey,
    region: values.region ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
  };
  const [command, arg] = positionals;
  const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  switch (command) {
    case 'status':
      return status(target, values.json, out);
    case 'nodes':
      return nodes(target, values.json, out);
    case 'decommission':
      return decommission(target, nodeArg(arg), { wait: values.wait, json: values.json, ...(values.timeout ? { timeoutSeconds: Number(values.timeout) } : {}) }, out);
    case 'is-safe-to-remove':
      return isSafeToRemove(target, nodeArg(arg), values.json, out);
    case 'replace':
      return replace(target, nodeArg(arg), { wait: values.wait, json: values.json, ...(values.timeout ? { timeoutSeconds: Number(values.timeout) } : {}) }, out);
    case 'keys':
      return keys(target, positionals.slice(1), { json: values.json, admin: values.admin, ...(values.description ? { description: values.description } : {}) }, out);
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

function nodeArg(arg: string | undefined): number {
  const id = Number(arg);
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`a node id (a positive integer) is needed, got "${arg ?? ''}"`);
  return id;
}

/** GET, failing with the API's own message on anything but 200. */
export async function getOk<T>(target: AdminTarget, path: string): Promise<T> {
  const res = await adminRequest<T & { message?: string }>(target, 'GET', path);
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.body.message ?? JSON.stringify(res.body)}`);
  return res.body;
}

/** The leader's view of the members when one is known and reachable, else the endpoint's. */
async function leaderNodes(target: AdminTarget): Promise<NodesAnswer> {
  const here = await getOk<NodesAnswer>(target, '/nodes');
  const leaderUrl = here.nodes.find((n) => n.nodeId === here.leader)?.s3Url;
  if (here.leader === here.nodeId || !leaderUrl) return here;
  try {
    return await getOk<NodesAnswer>({ ...target, endpoint: leaderUrl }, '/nodes');
  } catch {
    // Leader unreachable from here: the endpoint's view still answers roles and gossip.
    return here;
  }
}

async function status(target: AdminTarget, json: boolean, out: (s: string) => void): Promise<number> {
  const cluster = await getOk<ClusterAnswer>(target, '/cluster');
  const members = await leaderNodes(target);
  // Each node reports its own applied index and disk; an unreachable one shows as such.
  const perNode = await Promise.all(
    members.nodes.map(async (n) => {
      if (!n.s3Url) return { ...n, reachable: false as const };
      try {
        return { ...n, reachable: true as const, self: await getOk<ClusterAnswer>({ ...target, endpoint: n.s3Url }, '/cluster') };
      } catch {
        return { ...n, reachable: false as const };
      }
    }),
  );
  if (json) {
    out(JSON.stringify({ clusterId: cluster.clusterId, leader: members.leader, term: members.term, commitIndex: cluster.commitIndex, nodes: perNode }, null, 2));
    return 0;
  }
  out(`cluster ${cluster.clusterId}  leader ${members.leader || 'none'}  term ${members.term}  commit ${cluster.commitIndex}  voters ${cluster.voters.join(',')}${cluster.learners.length ? `  learners ${cluster.learners.join(',')}` : ''}`);
  out(
    table(
      ['NODE', 'ROLE', 'STATE', 'APPLIED', 'LAG', 'RING', 'DISK USED', 'S3'],
      perNode.map((n) => [
        `${n.nodeId}${n.nodeId === members.leader ? '*' : ''}`,
        n.draining ? `${n.role} (draining)` : n.role,
        n.reachable ? (n.gossip === 'self' ? 'alive' : n.gossip) : 'unreachable',
        n.reachable ? String(n.self.appliedIndex) : '-',
        n.lagEntries === undefined ? '-' : String(n.lagEntries),
        `${n.ringSharePercent.toFixed(1)}%`,
        n.reachable && n.self.disk ? `${formatBytes(n.self.disk.totalBytes - n.self.disk.freeBytes)} / ${formatBytes(n.self.disk.totalBytes)}` : '-',
        n.s3Url ?? '-',
      ]),
    ),
  );
  return 0;
}

async function nodes(target: AdminTarget, json: boolean, out: (s: string) => void): Promise<number> {
  const members = await leaderNodes(target);
  if (json) {
    out(JSON.stringify(members, null, 2));
    return 0;
  }
  out(
    table(
      ['NODE', 'ROLE', 'GOSSIP', 'RAFT', 'S3', 'ZONE', 'RING'],
      members.nodes.map((n) => [
        `${n.nodeId}${n.nodeId === members.leader ? '*' : ''}`,
        n.draining ? `${n.role} (draining)` : n.role,
        n.gossip === 'self' ? 'alive' : n.gossip,
        n.raftAddress ?? '-',
        n.s3Url ?? '-',
        n.zone ?? '-',
        `${n.ringSharePercent.toFixed(1)}%`,
      ]),
    ),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ts3ctl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
