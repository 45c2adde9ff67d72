/**
 * Goal: operators can scrape Prometheus metrics and probe health on the S3 port without
 * credentials, and the metrics move with what the node does: S3 operations (counts by operation
 * and status, latency, bytes, in flight), Raft (proposals and their latency, fsyncs, role, apply
 * lag, snapshots, leader changes), disk space, chunk maintenance, gossip, audit, process.
 * Method: a real server process, plain HTTP GETs of /metrics before and after S3 requests made
 * with the AWS SDK; then a real 3-node cluster whose leadership is handed over through the admin
 * API, each node's metrics read before and after.
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { admin, eventually, startCluster, waitForLeader } from '../helpers/cluster.ts';
import { removeDir, s3Client, startServer } from '../helpers/server.ts';

/** One sample of a scrape: `name{labels}` exactly as exposed, or NaN when absent. */
function sample(text: string, series: string): number {
  const escaped = series.replace(/[{}()[\]\\.+*?^$|]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

test('GET /metrics exposes request, Raft, disk and maintenance metrics that move with S3 requests; health endpoints answer', async (t) => {
  const server = await startServer({ env: { TS3GW_RAFT_SNAPSHOT_ENTRIES: '10' } });
  try {
    const s3 = s3Client(server);
    const before = await scrape(server.url);
    const body = Buffer.alloc(200 * 1024, 1);
    await s3.send(new CreateBucketCommand({ Bucket: 'metrics-test' }));
    // More writes than TS3GW_RAFT_SNAPSHOT_ENTRIES: the log takes a snapshot point.
    for (let i = 0; i < 12; i++) await s3.send(new PutObjectCommand({ Bucket: 'metrics-test', Key: `k${i}`, Body: i === 0 ? body : 'v' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'metrics-test', Key: 'k0' }));
    t.is((await got.Body!.transformToByteArray()).byteLength, body.byteLength);
    await s3.send(new ListObjectsV2Command({ Bucket: 'metrics-test' }));
    const text = await eventually(async () => {
      const now = await scrape(server.url);
      return sample(now, 'ts3gw_raft_snapshot_duration_seconds_count') >= 1 ? now : undefined;
    }, 15_000, 'a snapshot point');

    t.regex(text, /ts3gw_s3_requests_total\{method="PUT",status="200"\} [1-9]/);
    t.regex(text, /ts3gw_s3_request_duration_seconds_bucket/);
    t.is(sample(text, 'ts3gw_s3_operations_total{operation="PutObject",status="200"}'), 12);
    t.is(sample(text, 'ts3gw_s3_operations_total{operation="CreateBucket",status="200"}'), 1);
    t.is(sample(text, 'ts3gw_s3_operations_total{operation="GetObject",status="200"}'), 1);
    t.is(sample(text, 'ts3gw_s3_operations_total{operation="ListObjectsV2",status="200"}'), 1);
    t.is(sample(text, 'ts3gw_s3_operation_duration_seconds_count{operation="PutObject"}'), 12);
    t.true(sample(text, 'ts3gw_s3_received_bytes_total') - (sample(before, 'ts3gw_s3_received_bytes_total') || 0) > body.byteLength, 'bytes in counted');
    t.true(sample(text, 'ts3gw_s3_sent_bytes_total') - (sample(before, 'ts3gw_s3_sent_bytes_total') || 0) > body.byteLength, 'bytes out counted');
    t.true(sample(text, 'ts3gw_s3_requests_in_flight') >= 1, 'the scrape itself is in flight');

    t.is(sample(text, 'ts3gw_raft_is_leader'), 1);
    t.is(sample(text, 'ts3gw_raft_role{role="leader"}'), 1);
    t.is(sample(text, 'ts3gw_raft_role{role="follower"}'), 0);
    t.true(sample(text, 'ts3gw_raft_applied_index') >= 13);
    t.true(sample(text, 'ts3gw_raft_apply_lag_entries') >= 0);
    t.true(sample(text, 'ts3gw_raft_leader_changes_total') >= 1, 'a single node elected itself');
    t.true(sample(text, 'ts3gw_raft_proposals_total{outcome="applied"}') - (sample(before, 'ts3gw_raft_proposals_total{outcome="applied"}') || 0) >= 13);
    t.true(sample(text, 'ts3gw_raft_proposal_duration_seconds_count') >= 13);
    t.true(sample(text, 'ts3gw_raft_log_persist_duration_seconds_count{synced="true"}') - (sample(before, 'ts3gw_raft_log_persist_duration_seconds_count{synced="true"}') || 0) >= 1, 'fsyncs timed');
    t.true(sample(text, 'ts3gw_raft_log_bytes') > 0);
    t.true(sample(text, 'ts3gw_disk_total_bytes') > 0);
    t.true(sample(text, 'ts3gw_disk_free_bytes') > 0);
    // The chunk census walks the store at start and then every few minutes: present, not yet exact.
    t.true(sample(text, 'ts3gw_chunk_store_chunks') >= 0);
    t.true(sample(text, 'ts3gw_chunk_store_bytes') >= 0);

    t.regex(text, /ts3gw_gc_deleted_chunks_total \d/);
    t.regex(text, /ts3gw_rebalance_misplaced_chunks \d/);
    t.regex(text, /ts3gw_chunk_wire_server_sessions \d/);
    t.regex(text, /ts3gw_chunk_wire_client_requests_total \d/);
    t.regex(text, /ts3gw_chunk_wire_http_fallbacks_total \d/);
    t.regex(text, /ts3gw_gossip_members_alive \d/);
    t.regex(text, /ts3gw_audit_entries_total \d/);
    t.regex(text, /ts3gw_process_resident_memory_bytes \d/);
    t.is((await fetch(`${server.url}/health/live`)).status, 200);
    t.is((await fetch(`${server.url}/health/ready`)).status, 200);
  } finally {
    await server.stop();
    await removeDir(server.dataDir);
  }
});

test('a leadership transfer moves every node\'s leader-change counter, term and role gauges', async (t) => {
  const cluster = await startCluster(3);
  try {
    const url = (id: number) => cluster.nodes.get(id)!.server.url;
    const oldLeader = await waitForLeader(cluster);
    const s3 = s3Client(cluster.nodes.get(oldLeader)!.server);
    await eventually(async () => (await s3.send(new CreateBucketCommand({ Bucket: 'leader-change' }))) && true, 15_000, 'a write through the leader');
    // Settle: every node has seen the current leader before the "before" samples.
    await eventually(async () => {
      const texts = await Promise.all([1, 2, 3].map((id) => scrape(url(id))));
      return texts.every((x) => sample(x, 'ts3gw_raft_has_leader') === 1) ? true : undefined;
    }, 15_000, 'every node to know the leader');
    const before = new Map(await Promise.all([1, 2, 3].map(async (id) => [id, await scrape(url(id))] as const)));
    t.is(sample(before.get(oldLeader)!, 'ts3gw_raft_role{role="leader"}'), 1);
    const target = [1, 2, 3].find((id) => id !== oldLeader)!;

    const res = await admin(url(oldLeader), 'POST', '/transfer-leader', `id=${target}`);
    t.true(res.status >= 200 && res.status < 300, JSON.stringify(res.body));
    const newLeader = await eventually(async () => {
      const leader = await waitForLeader(cluster);
      return leader === target ? leader : undefined;
    }, 20_000, `node ${target} to lead`);
    t.is(newLeader, target);

    const after = await eventually(async () => {
      const texts = new Map(await Promise.all([1, 2, 3].map(async (id) => [id, await scrape(url(id))] as const)));
      return sample(texts.get(target)!, 'ts3gw_raft_role{role="leader"}') === 1 && sample(texts.get(oldLeader)!, 'ts3gw_raft_role{role="leader"}') === 0 ? texts : undefined;
    }, 15_000, 'role gauges to follow the transfer');
    for (const id of [1, 2, 3]) {
      const b = before.get(id)!;
      const a = after.get(id)!;
      t.true(sample(a, 'ts3gw_raft_leader_changes_total') > sample(b, 'ts3gw_raft_leader_changes_total'), `node ${id} counted the leader change`);
      t.true(sample(a, 'ts3gw_raft_term') > sample(b, 'ts3gw_raft_term'), `node ${id} moved to the new term`);
    }
    t.is(sample(after.get(target)!, 'ts3gw_raft_is_leader'), 1);
    t.is(sample(after.get(oldLeader)!, 'ts3gw_raft_role{role="follower"}'), 1);
    t.true(sample(after.get(oldLeader)!, 'ts3gw_s3_operations_total{operation="CreateBucket",status="200"}') >= 1);
  } finally {
    await cluster.stop();
  }
});
