/**
 * A quick probe of one small-object path, for profiling rather than reporting: a fresh ts3gw,
 * 4 KiB PUTs (MODE=put) or GETs of 64 objects (MODE=get) by C workers for S seconds after a 1 s
 * warm-up; prints ops/s and the server's CPU per op. STRACE=1 attaches `strace` (STRACE_ARGS,
 * default "-c -f") to the server for the measured part. Profile the server with
 * TS3GW_TEST_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" (written when it stops).
 *   C=64 S=5 MODE=put node test/bench/small-probe.ts
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { freshPayload, makeClient, startTs3gw, runCleanups, processCpuSeconds } from './s3-bench.ts';

const c = Number(process.env.C ?? 1);
const seconds = Number(process.env.S ?? 5);
const mode = process.env.MODE ?? 'put';
const strace = process.env.STRACE === '1';
const dir = await mkdtemp(join(os.tmpdir(), 'ts3gw-probe-'));
const server = await startTs3gw(join(dir, 'd'));
const client = makeClient(server);
await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
const body = freshPayload(4096);
for (let i = 0; i < 64; i++) await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `g${i}`, Body: body }));
// warmup
let stop = Date.now() + 1000;
async function worker(w: number, count: { n: number }) {
  let i = 0;
  while (Date.now() < stop) {
    if (mode === 'put') await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `k/${w}/${i++}`, Body: body }));
    else { const r = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: `g${(w + i++) % 64}` })); await r.Body!.transformToByteArray(); }
    count.n++;
  }
}
await Promise.all(Array.from({ length: c }, (_, w) => worker(w, { n: 0 })));
let st: ReturnType<typeof spawn> | undefined;
let stOut = '';
if (strace) {
  st = spawn('strace', (process.env.STRACE_ARGS ?? '-c -f').split(' ').concat(['-p', String(server.pid)]), { stdio: ['ignore', 'pipe', 'pipe'] });
  st.stderr!.on('data', (d) => (stOut += d));
  // strace prints nothing when it has attached; give it a moment so the first ops are counted.
  await new Promise((r) => setTimeout(r, 300));
}
const count = { n: 0 };
const cpu0 = processCpuSeconds(server.pid);
const t0 = performance.now();
stop = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: c }, (_, w) => worker(w + 1000, count)));
const el = (performance.now() - t0) / 1000;
const cpu = processCpuSeconds(server.pid) - cpu0;
if (st) { st.kill('SIGINT'); await new Promise((r) => st!.once('exit', r)); }
console.log(`${mode} c=${c}: ${(count.n / el).toFixed(1)} ops/s, server cpu ${((cpu * 1000) / count.n).toFixed(3)} ms/op, ops ${count.n}`);
if (strace) console.log(stOut.split('\n').slice(0, 30).join('\n'));
client.destroy();
await runCleanups();
await rm(dir, { recursive: true, force: true });
