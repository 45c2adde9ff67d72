/**
 * Goal: configuration merges defaults < file < env < flags, and an invalid configuration is
 * reported with every problem at once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { configEnvNames, joinSeeds, loadConfig, ordinalNodeId } from '../../../src/config/config.ts';

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

test('TS3GW_NODE_ID=ordinal: a StatefulSet pod is node ordinal+1, from TS3GW_POD_NAME, then HOSTNAME, then the host name', (t) => {
  const id = (env: Record<string, string>, hostname?: string) =>
    loadConfig({ env: { TS3GW_NODE_ID: 'ordinal', ...env }, argv: [], ...(hostname !== undefined ? { hostname } : {}) }).nodeId;
  t.is(id({ TS3GW_POD_NAME: 'ts3gw-0' }), 1);
  t.is(id({ TS3GW_POD_NAME: 'my-release-ts3gw-4', HOSTNAME: 'other-7' }), 5, 'the downward-API pod name wins over HOSTNAME');
  t.is(id({ HOSTNAME: 'ts3gw-12' }, 'ignored-3'), 13);
  t.is(id({}, 'store-2'), 3);
  t.is(loadConfig({ env: {}, argv: ['--node-id', 'ordinal'], hostname: 'ts3gw-1' }).nodeId, 2, 'the flag takes it too');
  t.is(ordinalNodeId({ env: { TS3GW_POD_NAME: 'ts3gw-2' }, argv: [] }).nodeId, 3);
  // With a peer list: a founder is named by it; pod 3 of a 3-founder list is not, and joins
  // through the founders (a StatefulSet scaled past its founding count).
  const peers = '1@ts3gw-0.h:9001,2@ts3gw-1.h:9001,3@ts3gw-2.h:9001';
  const secret = 'Zx9_-.~!0123456789abcdef';
  const founder = loadConfig({ env: { TS3GW_NODE_ID: 'ordinal', TS3GW_POD_NAME: 'ts3gw-2', TS3GW_PEERS: peers, TS3GW_CLUSTER_SECRET: secret }, argv: [] });
  t.is(founder.nodeId, 3);
  t.is(joinSeeds(founder), undefined, 'a founder founds');
  const extra = loadConfig({ env: { TS3GW_NODE_ID: 'ordinal', TS3GW_POD_NAME: 'ts3gw-3', TS3GW_PEERS: peers, TS3GW_CLUSTER_SECRET: secret }, argv: [] });
  t.is(extra.nodeId, 4);
  t.deepEqual(joinSeeds(extra), ['ts3gw-0.h:9001', 'ts3gw-1.h:9001', 'ts3gw-2.h:9001'], 'a node past the founders joins through them');
  t.is(joinSeeds(loadConfig({ env: { TS3GW_PEERS: peers, TS3GW_CLUSTER_SECRET: secret }, argv: [] })), undefined, 'no id given: node 1, a founder, as before');
});

test('TS3GW_NODE_ID=ordinal refuses a name without a trailing ordinal instead of guessing', (t) => {
  for (const name of ['ts3gw', 'ts3gw-', 'ts3gw-x', 'ts3gw-1a']) {
    const err = t.throws(() => loadConfig({ env: { TS3GW_NODE_ID: 'ordinal', TS3GW_POD_NAME: name }, argv: [] })) as Error & { meta: { problems: string[] } };
    t.true(err.meta.problems.some((p) => p.startsWith('TS3GW_NODE_ID: "ordinal" needs a host name ending in -N')), `${name}: ${err.message}`);
  }
  t.throws(() => loadConfig({ env: { TS3GW_NODE_ID: 'ordinals', TS3GW_POD_NAME: 'ts3gw-0' }, argv: [] }), { message: /TS3GW_NODE_ID: expected a non-negative integer/ });
});

test('configEnvNames lists every variable the configuration reads, once', (t) => {
  const names = configEnvNames();
  t.is(new Set(names).size, names.length);
  for (const n of ['TS3GW_NODE_ID', 'TS3GW_PEERS', 'TS3GW_DATA_DIR', 'TS3GW_ZONE', 'TS3GW_CONFIG', 'TS3GW_POD_NAME']) t.true(names.includes(n), n);
  // Each setting's variable is read: a bad value for an integer one is reported under its name.
  for (const n of ['TS3GW_S3_PORT', 'TS3GW_RAFT_TICK_MS', 'TS3GW_WEIGHT']) {
    t.throws(() => loadConfig({ env: { [n]: 'x' }, argv: [] }), { message: new RegExp(n) });
  }
});
