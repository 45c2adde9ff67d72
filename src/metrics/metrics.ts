/**
 * Prometheus metrics of a node (prom-client), Lodestar style: createMetrics(registry) builds
 * every metric once; modules get the typed result. Names are ts3gw_<subsystem>_<name>_<unit>.
 * Values that other modules already keep (Raft state, chunk maintenance and transfer counters) are read at
 * scrape time through collect callbacks rather than mirrored on every change.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';

/** Live values read when Prometheus scrapes. */
export interface MetricSources {
  raft(): { term: number; commitIndex: number; appliedIndex: number; isLeader: boolean; hasLeader: boolean };
  /** Counters and gauges whose names already follow ts3gw_* (chunk maintenance, chunk wire). */
  counters(): Record<string, number>;
}

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
  raftGauge('ts3gw_raft_is_leader', '1 when this node is the Raft leader.', (r) => (r.isLeader ? 1 : 0));
  raftGauge('ts3gw_raft_has_leader', '1 when this node knows a leader (0 in a minority or an election).', (r) => (r.hasLeader ? 1 : 0));
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
    /** Records one answered S3 request. */
    observeRequest(method: string, status: number, seconds: number): void {
      s3Requests.inc({ method, status: String(status) });
      s3Latency.observe({ method }, seconds);
    },
  };
}

/** The metrics of a node, as modules receive them. */
export type Metrics = ReturnType<typeof createMetrics>;
