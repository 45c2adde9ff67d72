/**
 * Goal: configuration merges defaults < file < env < flags, and an invalid configuration is
 * reported with every problem at once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../../../src/config/config.ts';

test('defaults: S3 on 0.0.0.0:9000 from ./data in us-east-1', (t) => {
  const c = loadConfig({ env: {}, argv: [] });
  t.like(c, { s3Host: '0.0.0.0', s3Port: 9000, dataDir: './data', region: 'us-east-1', chunkSizeBytes: 4 * 1024 * 1024 });
  t.is(c.rootAccessKey, undefined);
});

test('flags win over env, env over file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-config-'));
  const file = join(dir, 'c.json');
  await writeFile(file, JSON.stringify({ s3Port: 1, region: 'eu-west-1', dataDir: '/f' }));
  const c = loadConfig({ env: { TS3GW_CONFIG: file, TS3GW_S3_PORT: '2', TS3GW_DATA_DIR: '/e' }, argv: ['--data-dir', '/flag'] });
  t.like(c, { s3Port: 2, region: 'eu-west-1', dataDir: '/flag' });
  await rm(dir, { recursive: true });
});

test('every problem is listed in one error', (t) => {
  const err = t.throws(() =>
    loadConfig({ env: { TS3GW_S3_PORT: 'abc', TS3GW_ROOT_ACCESS_KEY: 'only-key', TS3GW_LOG_LEVEL: 'loud' }, argv: ['--bogus'] }),
  ) as Error & { code: string; meta: { problems: string[] } };
  t.is(err.code, 'CONFIG_ERR_INVALID');
  t.true(err.meta.problems.length >= 4, err.message);
  t.regex(err.message, /TS3GW_S3_PORT/);
  t.regex(err.message, /must be set together/);
  t.regex(err.message, /bogus/);
  t.regex(err.message, /loud/);
});

test('the cluster secret must be printable ASCII (it travels in header values between nodes)', (t) => {
  for (const secret of ['with a space inside-123', 'line\nbreak-0123456789', 'tab\there-0123456789']) {
    const err = t.throws(() => loadConfig({ env: { TS3GW_CLUSTER_SECRET: secret }, argv: [] })) as Error & { meta: { problems: string[] } };
    t.true(err.meta.problems.some((p) => p.includes('printable ASCII')), err.message);
  }
  t.is(loadConfig({ env: { TS3GW_CLUSTER_SECRET: 'Zx9_-.~!0123456789abcdef' }, argv: [] }).clusterSecret, 'Zx9_-.~!0123456789abcdef');
});
