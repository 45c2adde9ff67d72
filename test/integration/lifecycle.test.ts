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
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import { removeDir, startServer } from '../helpers/server.ts';

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
