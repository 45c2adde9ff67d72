/**
 * Goal: the start/stop behaviour a user sees. A first start without credentials generates a key
 * pair, stores it (mode 0600) and prints it once; the next start reuses it silently. SIGTERM
 * shuts down gracefully (exit 0). An invalid configuration exits 2 and lists every problem.
 * Method: real `node src/main.ts` processes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import { eventually } from '../helpers/cluster.ts';
import { removeDir, s3Client, startServer } from '../helpers/server.ts';
import { signRequest } from '../helpers/signer.ts';

test('generated credentials are stored, printed once, and work; SIGTERM exits 0', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ts3gw-life-'));
  try {
    const first = await startServer({ dataDir, env: { TS3GW_ROOT_ACCESS_KEY: '', TS3GW_ROOT_SECRET_KEY: '' } });
    const stored = JSON.parse(await readFile(join(dataDir, 'credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
    t.is((await stat(join(dataDir, 'credentials.json'))).mode & 0o777, 0o600);
    // The serving line comes after the credentials block, so the output already holds it.
    t.true(first.output.some((l) => l.includes(`AWS_SECRET_ACCESS_KEY=${stored.secretAccessKey}`)), 'printed on first start');
    const s3 = new S3Client({
      endpoint: first.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: stored.accessKeyId, secretAccessKey: stored.secretAccessKey },
    });
    await s3.send(new ListBucketsCommand({}));
    t.is(await first.stop(), 0, 'graceful exit on SIGTERM');

    const second = await startServer({ dataDir, env: { TS3GW_ROOT_ACCESS_KEY: '', TS3GW_ROOT_SECRET_KEY: '' } });
    t.false(second.output.some((l) => l.includes('AWS_SECRET_ACCESS_KEY')), 'not printed again');
    await new S3Client({
      endpoint: second.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: stored.accessKeyId, secretAccessKey: stored.secretAccessKey },
    }).send(new ListBucketsCommand({}));
    t.is(await second.stop(), 0);
  } finally {
    await removeDir(dataDir);
  }
});

test('an invalid configuration exits 2 and lists every problem', (t) => {
  const res = spawnSync(process.execPath, ['src/main.ts', '--s3-port', 'not-a-port'], {
    cwd: new URL('../../', import.meta.url).pathname,
    env: { ...process.env, TS3GW_LOG_LEVEL: 'loud', TS3GW_ROOT_ACCESS_KEY: 'only-the-key' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.is(res.status, 2);
  t.regex(res.stderr, /s3-port/);
  t.regex(res.stderr, /loud/);
  t.regex(res.stderr, /must be set together/);
});

test('SIGTERM lets an in-flight request finish, then closes its kept-alive connection and exits 0 at once', async (t) => {
  const server = await startServer({ env: { TS3GW_LOG_LEVEL: 'info' } });
  try {
    const s3 = s3Client(server);
    await s3.send(new CreateBucketCommand({ Bucket: 'drain' }));
    const host = new URL(server.url).host;
    const body = 'hello world';
    const { headers } = signRequest({ method: 'PUT', host, path: '/drain/slow', body, headers: { 'content-length': String(body.length), expect: '100-continue' } });
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (b: Buffer) => {
      answer += b.toString('latin1');
    });
    // The head with Expect: 100-continue: once the 100 came back, the request is authenticated
    // and in its handler (a request that arrives after the shutdown began is refused, 503).
    // Then half the body, SIGTERM while the request is in flight, and the rest.
    socket.write(`PUT /drain/slow HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
    await eventually(async () => (answer.startsWith('HTTP/1.1 100') ? true : undefined), 15_000, 'the 100 Continue');
    answer = '';
    socket.write(body.slice(0, 5));
    const exited = once(server.proc, 'exit');
    const stoppedAt = Date.now();
    server.proc.kill('SIGTERM');
    await eventually(async () => (server.output.some((l) => l.includes('shutting down')) ? true : undefined), 10_000, 'the shutdown to begin');
    socket.write(body.slice(5));
    const [code] = (await exited) as [number | null];
    t.regex(answer, /^HTTP\/1\.1 200/, 'the in-flight PUT was answered');
    // The client kept its connection open; the node closed it instead of waiting out the 72 s
    // keep-alive timeout (which the 20 s shutdown bound would cut with exit 1).
    t.is(code, 0, server.output.slice(-5).join('\n'));
    t.true(Date.now() - stoppedAt < 15_000, `exited ${Date.now() - stoppedAt} ms after SIGTERM`);
    socket.destroy();
  } finally {
    await server.kill();
    await removeDir(server.dataDir);
  }
});
