/**
 * Goal: the Grafana dashboard (ops/grafana/ts3gw.json, also shipped by the Helm chart) and the
 * Prometheus alert rules (ops/prometheus/alerts.yml) only name metrics a node exposes, with
 * labels those metrics have, and the alerts operators need are there (no quorum, leader
 * flapping, under-replicated chunks, disk almost full).
 * Method: both files are parsed; every ts3gw_* series in every expression is looked up in a
 * registry built by the node's own createMetrics, fed the counter names of the real components
 * (chunk maintenance, chunk wire, gossip, audit log), as node.ts feeds it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { AuditLog } from '../../../src/audit/audit-log.ts';
import { newMaintenanceStats } from '../../../src/chunks/maintenance-types.ts';
import { ChunkWireServer } from '../../../src/forward/chunk-wire-server.ts';
import { PeerChunks } from '../../../src/forward/peer-chunks.ts';
import { createMetrics } from '../../../src/metrics/metrics.ts';
import { ChunkStoreCensus } from '../../../src/node/chunk-store-census.ts';
import { emptyGossipStats } from '../../../src/node/membership.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;

/** Metric name → its label names, as the node's registry has them. */
async function nodeMetrics(): Promise<Map<string, { type: string; labels: Set<string> }>> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-ops-'));
  try {
    const audit = await AuditLog.open(join(dir, 'audit.log'));
    const wire = new ChunkWireServer(
      { authorize: () => false, chunkBytesMax: 1, putStream: async () => undefined, openRead: async () => undefined, verify: async () => false },
      { refusalCodes: new Set(), logger: { warn() {} } },
    );
    const peers = new PeerChunks({ clusterId: 'c', clusterSecret: 's', urlOf: () => undefined, chunkBytesMax: 1 });
    const counters = { ...(newMaintenanceStats() as unknown as Record<string, number>), ...wire.stats(), ...peers.stats(), ...emptyGossipStats(), ...audit.stats(), ...new ChunkStoreCensus({ list: async function* () {}, stat: async () => undefined }, { warn() {} }).stats() };
    await audit.close();
    await peers.close();
    const registry = new Registry();
    createMetrics(registry, {
      raft: () => ({ term: 1, commitIndex: 1, appliedIndex: 1, isLeader: true, hasLeader: true, role: 'leader', logBytes: 1 }),
      counters: () => counters,
      disk: async () => ({ totalBytes: 2, freeBytes: 1 }),
    });
    const metrics = new Map<string, { type: string; labels: Set<string> }>();
    for (const m of registry.getMetricsAsArray()) {
      const labels = new Set((m as unknown as { labelNames?: string[] }).labelNames ?? []);
      metrics.set(m.name, { type: String(m.type), labels });
      if (String(m.type) === 'histogram') {
        metrics.set(`${m.name}_bucket`, { type: 'histogram', labels: new Set([...labels, 'le']) });
        metrics.set(`${m.name}_count`, { type: 'histogram', labels });
        metrics.set(`${m.name}_sum`, { type: 'histogram', labels });
      }
    }
    return metrics;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Labels every scraped series carries besides its own. */
const TARGET_LABELS = new Set(['job', 'instance']);

/** Problems with the ts3gw series of one PromQL expression: unknown metrics, unknown labels. */
function problemsOf(expr: string, metrics: Map<string, { labels: Set<string> }>): string[] {
  const problems: string[] = [];
  for (const m of expr.matchAll(/\b(ts3gw_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const name = m[1]!;
    const known = metrics.get(name);
    if (!known) {
      problems.push(`unknown metric ${name}`);
      continue;
    }
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)/g)) {
      if (!known.labels.has(l[1]!) && !TARGET_LABELS.has(l[1]!)) problems.push(`${name} has no label ${l[1]}`);
    }
  }
  return problems;
}

interface Rule {
  alert: string;
  expr: string;
  labels?: { severity?: string };
  annotations?: { summary?: string; description?: string };
}

test('every alert rule names metrics and labels the node exposes; the four required alerts exist', async (t) => {
  const metrics = await nodeMetrics();
  const file = parse(await readFile(join(ROOT, 'ops/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  const rules = file.groups.flatMap((g) => g.rules);
  t.true(rules.length >= 4);
  for (const rule of rules) {
    t.deepEqual(problemsOf(rule.expr, metrics), [], `${rule.alert}: ${rule.expr}`);
    t.true(/ts3gw_/.test(rule.expr), `${rule.alert} watches a ts3gw metric`);
    t.true(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${rule.alert} has a severity`);
    t.truthy(rule.annotations?.summary, `${rule.alert} has a summary`);
  }
  const names = new Set(rules.map((r) => r.alert));
  for (const wanted of ['TS3GWNoQuorum', 'TS3GWLeaderFlapping', 'TS3GWUnderReplicatedChunks', 'TS3GWDiskAlmostFull']) t.true(names.has(wanted), `${wanted} is shipped`);
  t.is(names.size, rules.length, 'alert names are unique');
});

test('every dashboard panel queries metrics and labels the node exposes', async (t) => {
  const metrics = await nodeMetrics();
  const dashboard = JSON.parse(await readFile(join(ROOT, 'ops/grafana/ts3gw.json'), 'utf8')) as {
    uid: string;
    panels: Array<{ id: number; type: string; title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ name: string; query: unknown }> };
  };
  t.truthy(dashboard.uid);
  const graphs = dashboard.panels.filter((p) => p.type !== 'row');
  t.true(graphs.length >= 20);
  t.is(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
  const used = new Set<string>();
  for (const panel of graphs) {
    t.true((panel.targets ?? []).length > 0, `${panel.title} has a query`);
    for (const target of panel.targets ?? []) {
      t.deepEqual(problemsOf(target.expr, metrics), [], `${panel.title}: ${target.expr}`);
      for (const m of target.expr.matchAll(/\bts3gw_[a-z0-9_]+/g)) used.add(m[0].replace(/_(bucket|count|sum)$/, ''));
    }
  }
  for (const v of dashboard.templating.list) t.deepEqual(problemsOf(JSON.stringify(v.query ?? ''), metrics), [], `variable ${v.name}`);
  // The list: S3, Raft, chunk store and maintenance, gossip, process.
  for (const wanted of ['ts3gw_s3_operations_total', 'ts3gw_s3_operation_duration_seconds', 'ts3gw_raft_leader_changes_total', 'ts3gw_raft_apply_lag_entries', 'ts3gw_raft_log_persist_duration_seconds', 'ts3gw_disk_free_bytes', 'ts3gw_chunk_store_bytes', 'ts3gw_repair_unavailable_chunks_total', 'ts3gw_gossip_members_alive', 'ts3gw_process_resident_memory_bytes']) {
    t.true(used.has(wanted), `the dashboard shows ${wanted}`);
  }
});

test('the Helm chart ships the same dashboard (its ConfigMap for the Grafana sidecar)', async (t) => {
  const [ops, chart] = await Promise.all([readFile(join(ROOT, 'ops/grafana/ts3gw.json'), 'utf8'), readFile(join(ROOT, 'helm/ts3gw/files/dashboard.json'), 'utf8')]);
  t.is(chart, ops, 'copy ops/grafana/ts3gw.json to helm/ts3gw/files/dashboard.json');
});
