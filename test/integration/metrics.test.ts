/**
 * Goal: operators can scrape Prometheus metrics and probe health on the S3 port without
 * credentials: request counts and latency, Raft state, chunk maintenance counters.
 * Method: a real server process; plain HTTP GETs after a few S3 requests.
 */
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { removeDir, s3Client, startServer } from '../helpers/server.ts';

test('GET /metrics exposes request, Raft and maintenance metrics; health endpoints answer', async (t) => {
  const server = await startServer();
  try {
    const s3 = s3Client(server);
    await s3.send(new CreateBucketCommand({ Bucket: 'metrics-test' }));
    await s3.send(new PutObjectCommand({ Bucket: 'metrics-test', Key: 'k', Body: 'v' }));
    const res = await fetch(`${server.url}/metrics`);
    t.is(res.status, 200);
    const text = await res.text();
    t.regex(text, /ts3gw_s3_requests_total\{method="PUT",status="200"\} [1-9]/);
    t.regex(text, /ts3gw_s3_request_duration_seconds_bucket/);
    t.regex(text, /ts3gw_raft_is_leader 1/);
    t.regex(text, /ts3gw_raft_applied_index [1-9]/);
    t.regex(text, /ts3gw_gc_deleted_chunks_total \d/);
    t.regex(text, /ts3gw_chunk_wire_server_sessions \d/);
    t.regex(text, /ts3gw_chunk_wire_client_requests_total \d/);
    t.regex(text, /ts3gw_chunk_wire_http_fallbacks_total \d/);
    t.regex(text, /ts3gw_process_resident_memory_bytes \d/);
    t.is((await fetch(`${server.url}/health/live`)).status, 200);
    t.is((await fetch(`${server.url}/health/ready`)).status, 200);
  } finally {
    await server.stop();
    await removeDir(server.dataDir);
  }
});
