/**
 * Prometheus metrics of a node (prom-client), Lodestar style: createMetrics(registry) builds
 * every metric once; modules get the typed result. Names are ts3gw_<subsystem>_<name>_<unit>.
 * Values that other modules already keep (Raft state, chunk maintenance and transfer counters) are read at
 * scrape time through collect callbacks rather than mirrored on every change; events (a request
 * answered, a proposal applied, a leader change, an fsync) are recorded as they happen.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';

/** Raft roles, each a value of ts3gw_raft_role's `role` label. */
export const RAFT_ROLES = ['follower', 'candidate', 'precandidate', 'leader'] as const;

/** Live values read when Prometheus scrapes. */
export interface MetricSources {
  raft(): { term: number; commitIndex: number; appliedIndex: number; isLeader: boolean; hasLeader: boolean; role?: string; logBytes?: number };
  /** Counters and gauges whose names already follow ts3gw_* (chunk maintenance, chunk wire). */
  counters(): Record<string, number>;
  /** The data directory's file system, when known (may be async: statfs). */
  disk?(): Promise<{ totalBytes: number; freeBytes: number } | undefined>;
}

/** Latency buckets of storage and consensus steps (seconds). */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Builds the node's metrics on `registry`. */
export function createMetrics(registry: Registry, sources: MetricSources) {
  collectDefaultMetrics({ register: registry, prefix: 'ts3gw_' });
  const s3Requests = new Counter({
    name: 'ts3gw_s3_requests_total',
    help: 'S3 requests answered, by method and HTTP status.',
    labelNames: ['method', 'status'] as const,
    registers: [registry],
  });
  const s3Latency = new Histogram({
    name: 'ts3gw_s3_request_duration_seconds',
    help: 'Time from request arrival to the end of the response.',
    labelNames: ['method'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const s3Operations = new Counter({
    name: 'ts3gw_s3_operations_total',
    help: 'S3 requests answered, by operation (GetObject, PutObject, …) and HTTP status.',
    labelNames: ['operation', 'status'] as const,
    registers: [registry],
  });
  const s3OperationLatency = new Histogram({
    name: 'ts3gw_s3_operation_duration_seconds',
    help: 'Time from request arrival to the end of the response, by S3 operation.',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const s3Received = new Counter({ name: 'ts3gw_s3_received_bytes_total', help: 'Bytes read from S3 client connections (request heads and bodies).', registers: [registry] });
  const s3Sent = new Counter({ name: 'ts3gw_s3_sent_bytes_total', help: 'Bytes written to S3 client connections (response heads and bodies).', registers: [registry] });
  const s3InFlight = new Gauge({ name: 'ts3gw_s3_requests_in_flight', help: 'S3 requests being answered now.', registers: [registry] });

  const raftGauge = (name: string, help: string, pick: (r: ReturnType<MetricSources['raft']>) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(sources.raft()));
      },
    });
  raftGauge('ts3gw_raft_term', 'Current Raft term.', (r) => r.term);
  raftGauge('ts3gw_raft_commit_index', 'Highest log index known committed.', (r) => r.commitIndex);
  raftGauge('ts3gw_raft_applied_index', 'Highest log index applied to the metadata store.', (r) => r.appliedIndex);
  raftGauge('ts3gw_raft_apply_lag_entries', 'Committed entries not yet applied here (commit index - applied index).', (r) => Math.max(0, r.commitIndex - r.appliedIndex));
  raftGauge('ts3gw_raft_is_leader', '1 when this node is the Raft leader.', (r) => (r.isLeader ? 1 : 0));
  raftGauge('ts3gw_raft_has_leader', '1 when this node knows a leader (0 in a minority or an election).', (r) => (r.hasLeader ? 1 : 0));
  raftGauge('ts3gw_raft_log_bytes', 'Size of the Raft log file (entries behind the last snapshot point are compacted away).', (r) => r.logBytes ?? 0);
  new Gauge({
    name: 'ts3gw_raft_role',
    help: '1 for the role this node has now (follower, candidate, precandidate, leader), 0 for the others.',
    labelNames: ['role'] as const,
    registers: [registry],
    collect() {
      const role = (sources.raft().role ?? '').toLowerCase().replace(/^state/, '');
      for (const r of RAFT_ROLES) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  const proposals = new Counter({ name: 'ts3gw_raft_proposals_total', help: 'Metadata commands proposed through this node, by outcome (applied, failed).', labelNames: ['outcome'] as const, registers: [registry] });
  const proposalLatency = new Histogram({ name: 'ts3gw_raft_proposal_duration_seconds', help: 'From proposing a command to its apply on this node.', buckets: FAST_BUCKETS, registers: [registry] });
  const leaderChanges = new Counter({ name: 'ts3gw_raft_leader_changes_total', help: 'Times this node saw the leader change (to another node or to none).', registers: [registry] });
  const persistLatency = new Histogram({
    name: 'ts3gw_raft_log_persist_duration_seconds',
    help: 'Writing one batch of Raft entries and HardState; synced="true" includes its fsync.',
    labelNames: ['synced'] as const,
    buckets: FAST_BUCKETS,
    registers: [registry],
  });
  const compactions = new Histogram({ name: 'ts3gw_raft_snapshot_duration_seconds', help: 'Taking a snapshot point and compacting the log behind it.', buckets: FAST_BUCKETS, registers: [registry] });
  const snapshotInstalls = new Histogram({ name: 'ts3gw_raft_snapshot_install_duration_seconds', help: 'Installing a snapshot sent by the leader.', buckets: [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300], registers: [registry] });
  const snapshotBytes = new Gauge({ name: 'ts3gw_raft_snapshot_install_bytes', help: 'Size of the last snapshot installed from the leader.', registers: [registry] });

  new Gauge({
    name: 'ts3gw_disk_total_bytes',
    help: 'Size of the file system holding the data directory.',
    registers: [registry],
    async collect() {
      const disk = await sources.disk?.();
      if (disk) this.set(disk.totalBytes);
    },
  });
  new Gauge({
    name: 'ts3gw_disk_free_bytes',
    help: 'Bytes free for this node on the file system holding the data directory.',
    registers: [registry],
    async collect() {
      const disk = await sources.disk?.();
      if (disk) this.set(disk.freeBytes);
    },
  });

  const names = Object.keys(sources.counters()).filter((n) => /^ts3gw_[a-z0-9_]+$/.test(n));
  for (const name of names) {
    new Gauge({
      name,
      help: `${name.replace(/^ts3gw_/, '').replace(/_/g, ' ')}.`,
      registers: [registry],
      collect() {
        this.set(sources.counters()[name] ?? 0);
      },
    });
  }
  return {
    /** Records one answered S3 request (by method: kept for dashboards that predate operations). */
    observeRequest(method: string, status: number, seconds: number): void {
      s3Requests.inc({ method, status: String(status) });
      s3Latency.observe({ method }, seconds);
    },
    /** Records one answered S3 request by operation, with the bytes its connection moved. */
    observeOperation(operation: string, status: number, seconds: number, receivedBytes: number, sentBytes: number): void {
      s3Operations.inc({ operation, status: String(status) });
      s3OperationLatency.observe({ operation }, seconds);
      if (receivedBytes > 0) s3Received.inc(receivedBytes);
      if (sentBytes > 0) s3Sent.inc(sentBytes);
    },
    /** A request started (+1) or finished (-1). */
    inFlight(delta: 1 | -1): void {
      s3InFlight.inc(delta);
    },
    /** Hooks for the Raft host (consensus/observer.ts's shape). */
    consensus: {
      proposalDone(seconds: number, ok: boolean): void {
        proposals.inc({ outcome: ok ? 'applied' : 'failed' });
        proposalLatency.observe(seconds);
      },
      leaderChanged(): void {
        leaderChanges.inc();
      },
      persisted(seconds: number, synced: boolean): void {
        persistLatency.observe({ synced: synced ? 'true' : 'false' }, seconds);
      },
      compacted(seconds: number): void {
        compactions.observe(seconds);
      },
      snapshotInstalled(seconds: number, bytes: number): void {
        snapshotInstalls.observe(seconds);
        snapshotBytes.set(bytes);
      },
    },
  };
}

/** The metrics of a node, as modules receive them. */
export type Metrics = ReturnType<typeof createMetrics>;
