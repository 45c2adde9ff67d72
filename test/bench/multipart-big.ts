/**
 * `npm run bench:multipart` — one huge multipart upload and download against a fresh ts3gw: the
 * @aws-sdk/lib-storage Upload helper (queueSize BENCH_MP_QUEUE, default 8) pushes BENCH_MP_GIB GiB (default 10) in
 * BENCH_MP_PART_MIB parts (default 16), then the object is read back streamed and hashed. Reports
 * MiB/s both ways and the server's peak RSS (VmHWM and sampled VmRSS from /proc), as a table and
 * JSON in bench-results/. Bytes are generated on the fly (1 MiB blocks stamped with their index,
 * so no two chunks are equal and content-addressed dedup cannot flatter the numbers).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { removeDir, s3Client, startServer } from '../helpers/server.ts';

const MiB = 1024 * 1024;
const GIB = Number(process.env['BENCH_MP_GIB'] ?? 10);
const PART_MIB = Number(process.env['BENCH_MP_PART_MIB'] ?? 16);
const QUEUE = Number(process.env['BENCH_MP_QUEUE'] ?? 8);
const totalBytes = Math.round(GIB * 1024 * MiB);

async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function generated(bytes: number, hash: ReturnType<typeof createHash>): Readable {
  const block = randomBytes(MiB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.push(null);
        return;
      }
      const piece = Buffer.from(block.subarray(0, Math.min(MiB, bytes - sent)));
      piece.writeDoubleBE(sent, 0);
      sent += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
}

const fs = await statfs('/tmp');
if (fs.bavail * fs.bsize < totalBytes * 1.3 + 2 * 1024 * MiB) {
  console.log(`skipped: needs ${((totalBytes * 1.3) / 1024 ** 3).toFixed(1)} GiB free in /tmp`);
  process.exit(0);
}
const server = await startServer({ env: { TS3GW_LOG_LEVEL: 'warn' } });
const pid = server.proc.pid!;
let peakSampled = 0;
const sampler = setInterval(() => {
  rssOf(pid).then(
    (r) => {
      peakSampled = Math.max(peakSampled, r.rss);
    },
    () => undefined,
  );
}, 100);
try {
  const s3 = s3Client(server, { requestHandler: { requestTimeout: 600_000 } as never });
  await s3.send(new CreateBucketCommand({ Bucket: 'bench-mp' }));
  const startRss = await rssOf(pid);
  const upHash = createHash('sha256');
  let t0 = performance.now();
  await new Upload({
    client: s3,
    queueSize: QUEUE,
    partSize: PART_MIB * MiB,
    params: { Bucket: 'bench-mp', Key: 'huge', Body: generated(totalBytes, upHash) },
  }).done();
  const upSeconds = (performance.now() - t0) / 1000;
  const afterPut = await rssOf(pid);
  t0 = performance.now();
  const res = await s3.send(new GetObjectCommand({ Bucket: 'bench-mp', Key: 'huge' }));
  const downHash = createHash('sha256');
  let got = 0;
  for await (const piece of res.Body as Readable) {
    downHash.update(piece as Buffer);
    got += (piece as Buffer).length;
  }
  const downSeconds = (performance.now() - t0) / 1000;
  const end = await rssOf(pid);
  const ok = got === totalBytes && upHash.digest('hex') === downHash.digest('hex');
  const result = {
    gib: GIB,
    partMiB: PART_MIB,
    queueSize: QUEUE,
    parts: Math.ceil(totalBytes / (PART_MIB * MiB)),
    uploadSeconds: Number(upSeconds.toFixed(1)),
    uploadMiBps: Number((totalBytes / MiB / upSeconds).toFixed(1)),
    downloadSeconds: Number(downSeconds.toFixed(1)),
    downloadMiBps: Number((totalBytes / MiB / downSeconds).toFixed(1)),
    bytesVerified: ok,
    rssStartMiB: Math.round(startRss.rss / MiB),
    rssAfterPutMiB: Math.round(afterPut.rss / MiB),
    peakRssSampledMiB: Math.round(peakSampled / MiB),
    peakRssHwmMiB: Math.round(end.hwm / MiB),
  };
  console.table([result]);
  await mkdir('bench-results', { recursive: true });
  await writeFile(`bench-results/multipart-big-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, JSON.stringify(result, null, 2));
  if (!ok) process.exitCode = 1;
} finally {
  clearInterval(sampler);
  await server.kill();
  await removeDir(server.dataDir);
}
