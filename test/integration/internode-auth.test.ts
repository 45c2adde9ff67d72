/**
 * Goal: inter-node traffic is authenticated by the cluster secret without the secret on the
 * wire: a node holding the wrong secret cannot send Raft messages, join, or move chunks; a
 * captured token cannot be replayed; the secret header of old no longer opens anything; each
 * refusal is logged with its reason and no node logs a secret.
 *
 * Method: a real 3-node cluster (one process per node). The intruder is a real GrpcTransport in
 * the test process that claims to be node 2 (right cluster id and incarnation, read from node 2's
 * data directory) and sends node 1 a heartbeat 50 terms ahead: refused with the wrong secret
 * (node 1's term does not move, its log says why), and, as the control that proves the probe
 * works, obeyed with the right one. The S3 port's join and chunk endpoints get raw requests.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { GrpcTransport } from '../../src/rpc/grpc-transport.ts';
import { makeMessage, MessageType } from '../../src/raft/index.ts';
import { PEER_AUTH_HEADER, peerAuthKey, peerAuthToken } from '../../src/util/peer-auth.ts';
import { startCluster, TEST_CLUSTER_SECRET, type TestCluster } from '../helpers/cluster.ts';

const WRONG_SECRET = 'not-the-cluster-secret-0123456789';
const CHUNK_ID = 'ab'.repeat(32);

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Polls `cond` until it holds, at most `ms`; callers assert after. */
async function until(cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond()) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

function intruder(secret: string, clusterId: string, incarnation: string, target: string): GrpcTransport {
  const transport = new GrpcTransport({
    nodeId: 2,
    listenAddress: '127.0.0.1:0',
    clusterId,
    clusterSecret: secret,
    incarnation,
    checkIncarnation: () => true,
    logger: { warn() {}, info() {} },
  });
  transport.setPeers([{ id: 1, raftAddress: target }]);
  return transport;
}

let cluster: TestCluster;

test.before(async () => {
  cluster = await startCluster(3);
});
test.after.always(async () => {
  await cluster?.stop();
});

test.serial('a wrong cluster secret cannot send Raft messages; the refusal is logged; the right one can', async (t) => {
  const node1 = cluster.nodes.get(1)!;
  const node2 = cluster.nodes.get(2)!;
  const identity = JSON.parse(await readFile(join(node2.dataDir, 'raft', 'identity.json'), 'utf8')) as { clusterId: string; incarnation: string };
  await until(async () => (await metric(node1.server.url, 'ts3gw_raft_term')) > 0 && (await fetch(`${node1.server.url}/health/ready`)).status === 200);
  const term = await metric(node1.server.url, 'ts3gw_raft_term');
  const heartbeat = () => makeMessage({ type: MessageType.Heartbeat, from: 2, to: 1, term: term + 50 });

  const bad = intruder(WRONG_SECRET, identity.clusterId, identity.incarnation, `127.0.0.1:${node1.raftPort}`);
  await bad.start({ onMessages() {}, onPropose: async () => new Uint8Array(0), onSnapshot: async () => false });
  try {
    const refused = () => node1.server.output.some((l) => l.includes('refused a gRPC call: wrong cluster credentials') && l.includes('bad peer auth MAC'));
    await until(() => {
      bad.send([heartbeat()]);
      return refused();
    });
    t.true(refused(), 'node 1 logged the refusal with its reason');
    t.true((await metric(node1.server.url, 'ts3gw_raft_term')) < term + 50, 'the intruder did not move node 1 to its term');
  } finally {
    await bad.close();
  }

  // Control: the same probe with the right secret is obeyed, so the refusal above was the secret's doing.
  const good = intruder(TEST_CLUSTER_SECRET, identity.clusterId, identity.incarnation, `127.0.0.1:${node1.raftPort}`);
  await good.start({ onMessages() {}, onPropose: async () => new Uint8Array(0), onSnapshot: async () => false });
  try {
    await until(async () => {
      good.send([heartbeat()]);
      return (await metric(node1.server.url, 'ts3gw_raft_term')) >= term + 50;
    });
    t.true((await metric(node1.server.url, 'ts3gw_raft_term')) >= term + 50);
  } finally {
    await good.close();
  }
});

test.serial('join and chunk endpoints take only a fresh token made with the cluster secret', async (t) => {
  const node1 = cluster.nodes.get(1)!;
  const identity = JSON.parse(await readFile(join(node1.dataDir, 'raft', 'identity.json'), 'utf8')) as { clusterId: string };
  const key = peerAuthKey(TEST_CLUSTER_SECRET);
  const postJoin = (headers: Record<string, string>) =>
    fetch(`${node1.server.url}/_ts3gw/join`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
  const getChunk = (headers: Record<string, string>) => fetch(`${node1.server.url}/_ts3gw/chunks/${CHUNK_ID}`, { headers: { 'x-ts3gw-cluster-id': identity.clusterId, ...headers } });

  t.is((await postJoin({ [PEER_AUTH_HEADER]: peerAuthToken(peerAuthKey(WRONG_SECRET), 'join', '') })).status, 403);
  t.is((await postJoin({ 'x-ts3gw-cluster-secret': TEST_CLUSTER_SECRET })).status, 403, 'the secret itself is no credential any more');
  t.is((await postJoin({ [PEER_AUTH_HEADER]: peerAuthToken(key, 'chunks', identity.clusterId) })).status, 403, 'a token for another purpose');
  const token = peerAuthToken(key, 'join', '');
  t.is((await postJoin({ [PEER_AUTH_HEADER]: token })).status, 400, 'the right token passes (and the empty request is then refused as such)');
  t.is((await postJoin({ [PEER_AUTH_HEADER]: token })).status, 403, 'the same token again is a replay');

  t.is((await getChunk({ [PEER_AUTH_HEADER]: peerAuthToken(peerAuthKey(WRONG_SECRET), 'chunks', identity.clusterId) })).status, 403);
  t.is((await getChunk({ 'x-ts3gw-cluster-secret': TEST_CLUSTER_SECRET })).status, 403);
  t.is((await getChunk({ [PEER_AUTH_HEADER]: peerAuthToken(key, 'chunks', identity.clusterId) })).status, 404, 'the right token reaches the store');

  await until(() => node1.server.output.some((l) => l.includes('refused an internal request') && l.includes('replayed')));
  t.true(node1.server.output.some((l) => l.includes('refused an internal request') && l.includes('replayed')), 'the replay was logged');
  for (const node of cluster.nodes.values()) {
    const text = node.server.output.join('\n');
    t.false(text.includes(TEST_CLUSTER_SECRET), `node ${node.id} logged the cluster secret`);
    t.false(text.includes(WRONG_SECRET), `node ${node.id} logged the intruder's secret`);
  }
});
