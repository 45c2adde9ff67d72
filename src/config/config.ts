/**
 * Typed configuration from defaults, an optional JSON file, TS3GW_* environment variables and
 * command-line flags (later sources win). validate() reports every problem at once, so an
 * operator fixes a bad config in one round instead of one error per restart.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { StoreError } from '../util/errors.ts';

/** The whole configuration of one node. */
export interface Config {
  /** Directory for metadata, chunks and credentials. */
  dataDir: string;
  s3Host: string;
  s3Port: number;
  /** Region this endpoint serves; SigV4 credential scopes must name it. */
  region: string;
  /** Base domain for virtual-hosted-style requests; unset means path-style only. */
  domain: string | undefined;
  rootAccessKey: string | undefined;
  rootSecretKey: string | undefined;
  chunkSizeBytes: number;
  inlineMaxBytes: number;
  objectSizeBytesMax: number;
  logLevel: string;
  /** This node's Raft id (a positive integer, unique in the cluster). */
  nodeId: number;
  /** Static bootstrap peers `id@host:port,…` (this node included); unset: a cluster of one. */
  peers: string | undefined;
  raftHost: string;
  raftPort: number;
  /** Shared secret every inter-node call carries; required with peers. */
  clusterSecret: string | undefined;
  raftTickMs: number;
  raftElectionTicks: number;
  /** Compact the Raft log (snapshot point) every this many applied entries. */
  raftSnapshotEntries: number;
  /** Leader answers strong reads from its lease (no heartbeat round); assumes bounded clock drift. */
  raftLeaseReads: boolean;
  /**
   * A node with a new data directory whose id is a member of a formed cluster takes that
   * member's place (its disk was lost) instead of being refused: a StatefulSet pod with a new PVC.
   */
  replace: boolean;
  /**
   * Join an existing cluster instead of founding one: seeds `host:raftPort,…` to find it through
   * gossip and ask to be admitted (see joinSeeds), or `true` to start with an empty log and wait
   * for an operator to add this node by hand. Unset (or `false`): found a cluster.
   */
  join: string | undefined;
  /** Voters the cluster wants (the leader promotes caught-up learners up to this many). */
  votersTarget: number;
  /** host:port other nodes reach this node's Raft (and gossip) endpoint at; default derived. */
  advertiseRaft: string | undefined;
  /** Gossip protocol period: one failure-detection probe per period. */
  gossipPeriodMs: number;
  /** How long a suspected member has to refute before gossip declares it dead. */
  gossipSuspicionMs: number;
  /** How long a joining node keeps asking its seeds before it gives up. */
  joinTimeoutSeconds: number;
  /** Cluster id to join; founders derive it from TS3GW_PEERS. */
  clusterId: string | undefined;
  /** The S3 URL other nodes use to reach this one; default derived from the listen address. */
  advertiseUrl: string | undefined;
  /** Relative capacity of this node for data placement. */
  weight: number;
  /** Failure domain (rack, zone) of this node; replicas spread across zones first. */
  zone: string | undefined;
  /** An unreferenced chunk younger than this is never collected; must exceed the longest in-flight write. */
  gcGraceSeconds: number;
  /** Pause between chunk maintenance passes (gc, repair, rebalance) and between scrub cycles. */
  maintenanceIntervalMs: number;
  /** Chunks examined per second by a maintenance pass. */
  maintenanceChunksPerSecond: number;
  /** Bytes per second moved between nodes by repair and rebalance. */
  maintenanceBytesPerSecond: number;
  /** Bytes per second re-hashed by the scrubber. */
  scrubBytesPerSecond: number;
  /** Chaos suite only: a JSON file the node polls for injected clock and disk faults (src/faults/); unset in production. */
  faultsFile: string | undefined;
  /** PEM certificate (chain) file of the S3 endpoint: set with s3TlsKey, S3 is served over HTTPS (files reloaded on change). */
  s3TlsCert: string | undefined;
  /** PEM private key file of the S3 endpoint. */
  s3TlsKey: string | undefined;
  /**
   * PEM file of the CA(s) that sign the nodes' certificates: peers' HTTPS S3 endpoints are
   * trusted by it, and with tlsCert/tlsKey it is the CA of mutual TLS between nodes.
   */
  tlsCa: string | undefined;
  /** PEM certificate of this node for mutual TLS on the Raft (gRPC) port; needs tlsKey and tlsCa. */
  tlsCert: string | undefined;
  /** PEM private key of this node for mutual TLS. */
  tlsKey: string | undefined;
}

/** Configuration problems; `problems` lists every one found. */
export const CONFIG_ERR_INVALID = 'CONFIG_ERR_INVALID';

type Field = keyof Config;

/** Each setting: its env variable, flag, type and default. */
const FIELDS: Record<Field, { env: string; flag: string; type: 'string' | 'int' | 'bool' | 'optional'; default: string | number | undefined }> = {
  dataDir: { env: 'TS3GW_DATA_DIR', flag: 'data-dir', type: 'string', default: './data' },
  s3Host: { env: 'TS3GW_S3_HOST', flag: 's3-host', type: 'string', default: '0.0.0.0' },
  s3Port: { env: 'TS3GW_S3_PORT', flag: 's3-port', type: 'int', default: 9000 },
  region: { env: 'TS3GW_REGION', flag: 'region', type: 'string', default: 'us-east-1' },
  domain: { env: 'TS3GW_DOMAIN', flag: 'domain', type: 'optional', default: undefined },
  rootAccessKey: { env: 'TS3GW_ROOT_ACCESS_KEY', flag: 'root-access-key', type: 'optional', default: undefined },
  rootSecretKey: { env: 'TS3GW_ROOT_SECRET_KEY', flag: 'root-secret-key', type: 'optional', default: undefined },
  chunkSizeBytes: { env: 'TS3GW_CHUNK_SIZE_BYTES', flag: 'chunk-size-bytes', type: 'int', default: 4 * 1024 * 1024 },
  inlineMaxBytes: { env: 'TS3GW_INLINE_MAX_BYTES', flag: 'inline-max-bytes', type: 'int', default: 64 * 1024 },
  objectSizeBytesMax: { env: 'TS3GW_OBJECT_SIZE_BYTES_MAX', flag: 'object-size-bytes-max', type: 'int', default: 5 * 1024 ** 3 },
  logLevel: { env: 'TS3GW_LOG_LEVEL', flag: 'log-level', type: 'string', default: 'info' },
  // 0: not given. A node joining through seeds is then given an id; any other node is node 1.
  nodeId: { env: 'TS3GW_NODE_ID', flag: 'node-id', type: 'int', default: 0 },
  peers: { env: 'TS3GW_PEERS', flag: 'peers', type: 'optional', default: undefined },
  raftHost: { env: 'TS3GW_RAFT_HOST', flag: 'raft-host', type: 'string', default: '0.0.0.0' },
  raftPort: { env: 'TS3GW_RAFT_PORT', flag: 'raft-port', type: 'int', default: 9001 },
  clusterSecret: { env: 'TS3GW_CLUSTER_SECRET', flag: 'cluster-secret', type: 'optional', default: undefined },
  raftTickMs: { env: 'TS3GW_RAFT_TICK_MS', flag: 'raft-tick-ms', type: 'int', default: 100 },
  raftElectionTicks: { env: 'TS3GW_RAFT_ELECTION_TICKS', flag: 'raft-election-ticks', type: 'int', default: 10 },
  raftSnapshotEntries: { env: 'TS3GW_RAFT_SNAPSHOT_ENTRIES', flag: 'raft-snapshot-entries', type: 'int', default: 10_000 },
  raftLeaseReads: { env: 'TS3GW_RAFT_LEASE_READS', flag: 'raft-lease-reads', type: 'bool', default: 'false' },
  replace: { env: 'TS3GW_REPLACE', flag: 'replace', type: 'bool', default: 'false' },
  join: { env: 'TS3GW_JOIN', flag: 'join', type: 'optional', default: undefined },
  votersTarget: { env: 'TS3GW_VOTERS', flag: 'voters', type: 'int', default: 3 },
  advertiseRaft: { env: 'TS3GW_ADVERTISE_RAFT', flag: 'advertise-raft', type: 'optional', default: undefined },
  gossipPeriodMs: { env: 'TS3GW_GOSSIP_PERIOD_MS', flag: 'gossip-period-ms', type: 'int', default: 1_000 },
  gossipSuspicionMs: { env: 'TS3GW_GOSSIP_SUSPICION_MS', flag: 'gossip-suspicion-ms', type: 'int', default: 5_000 },
  joinTimeoutSeconds: { env: 'TS3GW_JOIN_TIMEOUT_SECONDS', flag: 'join-timeout-seconds', type: 'int', default: 600 },
  clusterId: { env: 'TS3GW_CLUSTER_ID', flag: 'cluster-id', type: 'optional', default: undefined },
  advertiseUrl: { env: 'TS3GW_ADVERTISE_URL', flag: 'advertise-url', type: 'optional', default: undefined },
  weight: { env: 'TS3GW_WEIGHT', flag: 'weight', type: 'int', default: 1 },
  zone: { env: 'TS3GW_ZONE', flag: 'zone', type: 'optional', default: undefined },
  gcGraceSeconds: { env: 'TS3GW_GC_GRACE_SECONDS', flag: 'gc-grace-seconds', type: 'int', default: 3_600 },
  maintenanceIntervalMs: { env: 'TS3GW_MAINTENANCE_INTERVAL_MS', flag: 'maintenance-interval-ms', type: 'int', default: 60_000 },
  maintenanceChunksPerSecond: { env: 'TS3GW_MAINTENANCE_CHUNKS_PER_SECOND', flag: 'maintenance-chunks-per-second', type: 'int', default: 2_000 },
  maintenanceBytesPerSecond: { env: 'TS3GW_MAINTENANCE_BYTES_PER_SECOND', flag: 'maintenance-bytes-per-second', type: 'int', default: 64 * 1024 * 1024 },
  scrubBytesPerSecond: { env: 'TS3GW_SCRUB_BYTES_PER_SECOND', flag: 'scrub-bytes-per-second', type: 'int', default: 8 * 1024 * 1024 },
  faultsFile: { env: 'TS3GW_FAULTS_FILE', flag: 'faults-file', type: 'optional', default: undefined },
  s3TlsCert: { env: 'TS3GW_S3_TLS_CERT', flag: 's3-tls-cert', type: 'optional', default: undefined },
  s3TlsKey: { env: 'TS3GW_S3_TLS_KEY', flag: 's3-tls-key', type: 'optional', default: undefined },
  tlsCa: { env: 'TS3GW_TLS_CA', flag: 'tls-ca', type: 'optional', default: undefined },
  tlsCert: { env: 'TS3GW_TLS_CERT', flag: 'tls-cert', type: 'optional', default: undefined },
  tlsKey: { env: 'TS3GW_TLS_KEY', flag: 'tls-key', type: 'optional', default: undefined },
};

/** Where configuration comes from; injected so tests need no process globals. */
export interface ConfigSources {
  env: Record<string, string | undefined>;
  argv: string[];
  /** Host name for TS3GW_NODE_ID=ordinal when neither TS3GW_POD_NAME nor HOSTNAME is set; os.hostname() by default. */
  hostname?: string;
}

/** Loads and validates the configuration; throws CONFIG_ERR_INVALID listing every problem. */
export function loadConfig(sources: ConfigSources): Config {
  const problems: string[] = [];
  const options = Object.fromEntries(Object.values(FIELDS).map((f) => [f.flag, { type: f.type === 'bool' ? ('boolean' as const) : ('string' as const) }]));
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({ args: sources.argv, options: { ...options, config: { type: 'string' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    problems.push((err as Error).message);
  }
  const configFile = (flags['config'] as string | undefined) ?? sources.env['TS3GW_CONFIG'];
  let file: Record<string, unknown> = {};
  if (configFile !== undefined) {
    try {
      file = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      problems.push(`config file ${configFile}: ${(err as Error).message}`);
    }
    for (const name of Object.keys(file)) if (!(name in FIELDS)) problems.push(`config file ${configFile}: unknown setting "${name}"`);
  }

  const config: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(FIELDS) as [Field, (typeof FIELDS)[Field]][]) {
    const flag = flags[field.flag];
    const given = typeof flag === 'string' || typeof flag === 'boolean';
    const raw = given ? flag : (sources.env[field.env] ?? file[name] ?? field.default);
    const origin = given ? `--${field.flag}` : sources.env[field.env] !== undefined ? field.env : name;
    if (field.type === 'bool') {
      if (raw !== 'true' && raw !== 'false' && raw !== true && raw !== false) problems.push(`${origin}: expected true or false, got "${String(raw)}"`);
      config[name] = raw === 'true' || raw === true;
    } else if (field.type === 'int') {
      // TS3GW_NODE_ID=ordinal: a StatefulSet pod takes its id from its name (see ordinalNodeId).
      const ordinal = name === 'nodeId' && raw === 'ordinal' ? ordinalNodeId(sources) : undefined;
      const n = ordinal !== undefined ? ordinal.nodeId : typeof raw === 'number' ? raw : Number(raw);
      if (ordinal?.problem !== undefined) problems.push(`${origin}: ${ordinal.problem}`);
      else if (!Number.isSafeInteger(n) || n < 0) problems.push(`${origin}: expected a non-negative integer, got "${String(raw)}"`);
      config[name] = n;
    } else {
      if (raw !== undefined && typeof raw !== 'string') problems.push(`${origin}: expected a string`);
      config[name] = raw === '' ? undefined : raw;
    }
  }
  const c = config as unknown as Config;
  if (c.join === 'false') c.join = undefined;
  if (c.nodeId === 0 && joinSeeds(c) === undefined) c.nodeId = 1;
  problems.push(...validate(c));
  if (problems.length > 0) {
    throw new StoreError(CONFIG_ERR_INVALID, `invalid configuration:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return c;
}

/** Every problem of an assembled configuration. */
export function validate(c: Config): string[] {
  const problems: string[] = [];
  if (!c.dataDir) problems.push('dataDir must not be empty');
  if (!(c.s3Port >= 0 && c.s3Port <= 65535)) problems.push(`s3Port ${c.s3Port} is not a TCP port`);
  if (!/^[a-z0-9-]+$/.test(c.region ?? '')) problems.push(`region "${c.region}" is not a region name`);
  if ((c.rootAccessKey === undefined) !== (c.rootSecretKey === undefined)) {
    problems.push('TS3GW_ROOT_ACCESS_KEY and TS3GW_ROOT_SECRET_KEY must be set together');
  }
  if (c.rootAccessKey !== undefined && !/^[A-Za-z0-9_-]{3,128}$/.test(c.rootAccessKey)) problems.push('root access key must be 3-128 characters of [A-Za-z0-9_-]');
  if (c.rootSecretKey !== undefined && c.rootSecretKey.length < 8) problems.push('root secret key must be at least 8 characters');
  if (c.chunkSizeBytes < 64 * 1024 || c.chunkSizeBytes > 16 * 1024 * 1024) problems.push('chunkSizeBytes must be between 64 KiB and 16 MiB');
  if (c.inlineMaxBytes > c.chunkSizeBytes) problems.push('inlineMaxBytes must not exceed chunkSizeBytes');
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(c.logLevel)) problems.push(`logLevel "${c.logLevel}" is not a pino level`);
  if (!(c.nodeId >= 1) && !(c.nodeId === 0 && joinSeeds(c) !== undefined)) problems.push('nodeId must be a positive integer');
  if (!(c.votersTarget >= 1 && c.votersTarget <= 7)) problems.push('votersTarget (TS3GW_VOTERS) must be 1..7 (3 or 5 in practice)');
  if (c.advertiseRaft !== undefined && !/^[^\s/@]+:\d{1,5}$/.test(c.advertiseRaft)) problems.push(`advertiseRaft "${c.advertiseRaft}" must be host:port`);
  if (!(c.gossipPeriodMs >= 50)) problems.push('gossipPeriodMs must be at least 50');
  if (!(c.gossipSuspicionMs >= c.gossipPeriodMs)) problems.push('gossipSuspicionMs must be at least one gossip period');
  if (!(c.joinTimeoutSeconds >= 1)) problems.push('joinTimeoutSeconds must be at least 1');
  if (!(c.raftPort >= 0 && c.raftPort <= 65535)) problems.push(`raftPort ${c.raftPort} is not a TCP port`);
  if (!(c.raftTickMs >= 1)) problems.push('raftTickMs must be at least 1');
  if (!(c.weight >= 1)) problems.push('weight must be a positive integer');
  if (c.advertiseUrl !== undefined && !/^https?:\/\/[^/\s]+$/.test(c.advertiseUrl)) problems.push(`advertiseUrl "${c.advertiseUrl}" must look like http://host:port`);
  if (!(c.raftSnapshotEntries >= 10)) problems.push('raftSnapshotEntries must be at least 10');
  if (!(c.raftElectionTicks >= 3)) problems.push('raftElectionTicks must be at least 3');
  if (c.peers !== undefined) {
    try {
      const peers = parsePeers(c.peers);
      // A node the founders' list does not name joins through them (see joinSeeds).
      if (peers.length > 1 && c.clusterSecret === undefined) problems.push('TS3GW_CLUSTER_SECRET is required when TS3GW_PEERS names other nodes');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (c.join === 'true' && (c.peers === undefined || c.clusterId === undefined)) problems.push('joining by hand (TS3GW_JOIN=true) needs TS3GW_PEERS (how to reach the cluster) and TS3GW_CLUSTER_ID');
  if (c.join !== undefined && c.join !== 'true') {
    const bad = c.join.split(',').map((s) => s.trim()).filter((s) => !/^[^\s/@]+:\d{1,5}$/.test(s));
    if (bad.length > 0) problems.push(`TS3GW_JOIN: "${bad.join('", "')}" is not host:port (the seeds' Raft endpoints), nor true`);
    if (c.clusterSecret === undefined) problems.push('joining through seeds (TS3GW_JOIN) needs TS3GW_CLUSTER_SECRET, the secret the cluster was started with');
  }
  // A grace of a few seconds is only safe where writes are tiny (tests); production keeps hours.
  if (!(c.gcGraceSeconds >= 1)) problems.push('gcGraceSeconds must be at least 1');
  if (!(c.maintenanceIntervalMs >= 100)) problems.push('maintenanceIntervalMs must be at least 100');
  if (!(c.maintenanceChunksPerSecond >= 1)) problems.push('maintenanceChunksPerSecond must be at least 1');
  if (!(c.maintenanceBytesPerSecond >= 64 * 1024)) problems.push('maintenanceBytesPerSecond must be at least 64 KiB/s');
  if (!(c.scrubBytesPerSecond >= 64 * 1024)) problems.push('scrubBytesPerSecond must be at least 64 KiB/s');
  if (c.clusterSecret !== undefined && c.clusterSecret.length < 16) problems.push('clusterSecret must be at least 16 characters');
  // It travels in HTTP header values between nodes.
  if (c.clusterSecret !== undefined && !/^[\x21-\x7e]+$/.test(c.clusterSecret)) problems.push('clusterSecret must be printable ASCII without spaces');
  if ((c.s3TlsCert === undefined) !== (c.s3TlsKey === undefined)) problems.push('S3 TLS needs both TS3GW_S3_TLS_CERT and TS3GW_S3_TLS_KEY');
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) problems.push('mutual TLS needs both TS3GW_TLS_CERT and TS3GW_TLS_KEY');
  if (c.tlsCert !== undefined && c.tlsCa === undefined) problems.push('mutual TLS (TS3GW_TLS_CERT) needs TS3GW_TLS_CA, the CA that signs every node\'s certificate');
  return problems;
}

/** The seeds of a join through gossip (`TS3GW_JOIN=host:port,…`), or undefined when not joining so. */
export function joinSeeds(c: Pick<Config, 'join' | 'peers' | 'nodeId'>): string[] | undefined {
  // TS3GW_PEERS names the founders; a node not among them (a StatefulSet scaled past its
  // founding count) joins through them.
  if (c.join === undefined && c.peers !== undefined && c.nodeId > 0) {
    try {
      const peers = parsePeers(c.peers);
      if (peers.length > 0 && !peers.some((p) => p.id === c.nodeId)) return peers.map((p) => p.raftAddress);
    } catch {
      // Reported by validate().
    }
  }
  if (c.join === undefined || c.join === 'true' || c.join === 'false') return undefined;
  const seeds = c.join.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return seeds.length > 0 ? seeds : undefined;
}

/** A static peer: Raft id and the host:port of its Raft endpoint. */
export interface PeerSpec {
  id: number;
  raftAddress: string;
}

/** Parses `id@host:port,…`; throws TypeError naming the bad part. */
export function parsePeers(text: string): PeerSpec[] {
  const peers: PeerSpec[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^(\d+)@([^\s@]+):(\d{1,5})$/.exec(part);
    if (!m || Number(m[1]) < 1) throw new TypeError(`TS3GW_PEERS: "${part}" is not id@host:port`);
    if (peers.some((p) => p.id === Number(m[1]))) throw new TypeError(`TS3GW_PEERS: node id ${m[1]} appears twice`);
    peers.push({ id: Number(m[1]), raftAddress: `${m[2]}:${m[3]}` });
  }
  if (peers.length === 0) throw new TypeError('TS3GW_PEERS is empty');
  return peers;
}

/** Every environment variable the configuration reads: one per setting, TS3GW_CONFIG and TS3GW_POD_NAME. */
export function configEnvNames(): string[] {
  return [...Object.values(FIELDS).map((f) => f.env), 'TS3GW_CONFIG', 'TS3GW_POD_NAME'];
}

/**
 * The node id of a StatefulSet pod for TS3GW_NODE_ID=ordinal: the ordinal at the end of the pod's
 * name plus one (pod ts3gw-0 is node 1, ts3gw-4 node 5), since Raft ids start at 1. The name is
 * TS3GW_POD_NAME (the chart sets it from the downward API), else HOSTNAME (container runtimes set
 * it to the pod name), else the OS host name. The id is as stable as the pod's name, which is what
 * binds it to its volume; a name without a trailing -N is a problem, not a guess.
 */
export function ordinalNodeId(sources: ConfigSources): { nodeId: number; problem?: string } {
  const name = sources.env['TS3GW_POD_NAME'] || sources.env['HOSTNAME'] || sources.hostname || hostname();
  const m = /-(\d{1,9})$/.exec(name);
  if (!m) return { nodeId: Number.NaN, problem: `"ordinal" needs a host name ending in -N (a StatefulSet pod name), got "${name}"` };
  return { nodeId: Number(m[1]) + 1 };
}
