/**
 * Goal: with mutual TLS configured (TS3GW_TLS_CA/CERT/KEY) the Raft port takes only peers whose
 * certificate the cluster's CA signed: a node holding the right cluster secret but a certificate
 * of another CA, or none, cannot send Raft messages, and the refusal is logged; a cluster of
 * nodes with good certificates forms and serves.
 *
 * Method: a CA, a node certificate (IP SAN 127.0.0.1) and a rogue CA with its own certificate
 * generated with openssl; a real 3-node cluster. The intruder is a real GrpcTransport in the test
 * process claiming to be node 2 (its cluster id and incarnation read from node 2's data
 * directory, the right secret) that sends node 1 a heartbeat 50 terms ahead: node 1's term does
 * not move for the rogue certificate or for plain HTTP/2, and does for the good certificate (the
 * control that proves the probe reaches Raft).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { makeMessage, MessageType } from '../../src/raft/index.ts';
import { GrpcTransport, type PeerTls } from '../../src/rpc/grpc-transport.ts';
import { eventually, startCluster, TEST_CLUSTER_SECRET, type TestCluster } from '../helpers/cluster.ts';
import { s3Client } from '../helpers/server.ts';

const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

/** A CA named `ca` in `dir` and a certificate `name` for 127.0.0.1 it signs. */
async function issue(dir: string, ca: string, name: string): Promise<void> {
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`);
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'san.ext');
}

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

let dir: string;
let cluster: TestCluster;
let goodTls: PeerTls;
let rogueTls: PeerTls;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ts3gw-mtls-'));
  await issue(dir, 'cluster-ca', 'node');
  await issue(dir, 'rogue-ca', 'rogue');
  const read = (f: string) => readFile(join(dir, f));
  goodTls = { ca: await read('cluster-ca.pem'), cert: await read('node.pem'), key: await read('node.key') };
  // The rogue trusts the cluster's CA (it can verify the server) but holds a certificate of its own CA.
  rogueTls = { ca: await read('cluster-ca.pem'), cert: await read('rogue.pem'), key: await read('rogue.key') };
  cluster = await startCluster(3, { TS3GW_TLS_CA: join(dir, 'cluster-ca.pem'), TS3GW_TLS_CERT: join(dir, 'node.pem'), TS3GW_TLS_KEY: join(dir, 'node.key') });
});
test.after.always(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function intruder(tls: PeerTls | undefined, clusterId: string, incarnation: string, target: string): GrpcTransport {
  const transport = new GrpcTransport({
    nodeId: 2,
    listenAddress: '127.0.0.1:0',
    clusterId,
    clusterSecret: TEST_CLUSTER_SECRET,
    incarnation,
    checkIncarnation: () => true,
    logger: { warn() {}, info() {} },
    ...(tls ? { tls } : {}),
  });
  transport.setPeers([{ id: 1, raftAddress: target }]);
  return transport;
}

test.serial('a cluster with mutual TLS forms and serves; objects go through every node', async (t) => {
  const s3 = s3Client(cluster.nodes.get(1)!.server);
  await eventually(async () => (await s3.send(new CreateBucketCommand({ Bucket: 'mtls' }))) && true, 30_000, 'a leader over mutual TLS');
  await s3.send(new PutObjectCommand({ Bucket: 'mtls', Key: 'k', Body: 'over mutual TLS' }));
  for (const node of cluster.nodes.values()) {
    const got = await s3Client(node.server).send(new GetObjectCommand({ Bucket: 'mtls', Key: 'k' }));
    t.is(await got.Body!.transformToString(), 'over mutual TLS');
  }
});

test.serial('a peer without a certificate of the cluster CA cannot send Raft messages, though it holds the secret; logged', async (t) => {
  const node1 = cluster.nodes.get(1)!;
  const identity = JSON.parse(await readFile(join(cluster.nodes.get(2)!.dataDir, 'raft', 'identity.json'), 'utf8')) as { clusterId: string; incarnation: string };
  await until(async () => (await fetch(`${node1.server.url}/health/ready`)).status === 200);
  const term = await metric(node1.server.url, 'ts3gw_raft_term');
  const heartbeat = () => makeMessage({ type: MessageType.Heartbeat, from: 2, to: 1, term: term + 50 });
  const handler = { onMessages() {}, onPropose: async () => new Uint8Array(0), onSnapshot: async () => false };
  const target = `127.0.0.1:${node1.raftPort}`;

  for (const [what, tls] of [['a certificate of another CA', rogueTls], ['no TLS at all', undefined]] as const) {
    const refusals = () => node1.server.output.filter((l) => l.includes('refused a TLS handshake')).length;
    const before = refusals();
    const bad = intruder(tls, identity.clusterId, identity.incarnation, target);
    await bad.start(handler);
    try {
      // The handshake fails before any HTTP/2 frame, so nothing the intruder sent can have reached Raft.
      await until(() => {
        bad.send([heartbeat()]);
        return refusals() > before;
      });
      t.true(refusals() > before, `node 1 logged the refused handshake (${what})`);
      t.true((await metric(node1.server.url, 'ts3gw_raft_term')) < term + 50, `${what}: node 1 did not take the intruder's term`);
    } finally {
      await bad.close();
    }
  }

  const good = intruder(goodTls, identity.clusterId, identity.incarnation, target);
  await good.start(handler);
  try {
    await until(async () => {
      good.send([heartbeat()]);
      return (await metric(node1.server.url, 'ts3gw_raft_term')) >= term + 50;
    });
    t.true((await metric(node1.server.url, 'ts3gw_raft_term')) >= term + 50, 'with the cluster CA certificate the same probe is obeyed');
  } finally {
    await good.close();
  }
});
