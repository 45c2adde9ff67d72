/**
 * Goal: S3 over TLS works with the AWS SDK, the certificate is swapped when its files change
 * (no restart, new connections get the new one), and a cluster whose nodes serve S3 over TLS
 * moves chunks between them over HTTPS, trusting the cluster's CA, with the request id of the
 * S3 request they serve (the peers log their part under it).
 *
 * Method: a CA and node certificates (IP SAN 127.0.0.1) generated in the test with Debian's
 * openssl; real server processes with TS3GW_S3_TLS_CERT/KEY (and TS3GW_TLS_CA for the cluster);
 * the AWS SDK v3 with an HTTPS agent that trusts only that CA. The served certificate is read
 * from a fresh TLS handshake (its serial number), polled until the rotated one appears.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import test from 'ava';
import { chunkInventory, eventually, startCluster } from '../helpers/cluster.ts';
import { removeDir, startServer, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY, type TestServer } from '../helpers/server.ts';

const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

/** A CA in `dir` (ca.pem, ca.key). */
function makeCa(dir: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ts3gw test CA');
}

/** A certificate for 127.0.0.1 signed by the CA in `dir`: `<name>.pem`, `<name>.key`; returns its serial (hex). */
async function makeCert(dir: string, name: string): Promise<string> {
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${name === 'renewed' ? '2222' : '1111'}`, '-out', `${name}.pem`, '-days', '2', '-extfile', 'san.ext');
  return name === 'renewed' ? '2222' : '1111';
}

function s3Over(url: string, ca: Buffer): S3Client {
  return new S3Client({
    endpoint: url,
    region: TEST_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY },
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca, keepAlive: false }) }),
  });
}

/** The serial number of the certificate a fresh handshake gets. */
async function servedSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial.replace(/^0+/, '').toUpperCase());
    });
    socket.once('error', reject);
  });
}

test.serial('S3 over TLS with the AWS SDK; the certificate is reloaded when its files change', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-tls-'));
  let server: TestServer | undefined;
  try {
    makeCa(dir);
    await makeCert(dir, 'first');
    // The served files: rotated in place later, as a renewed secret would be.
    await writeFile(join(dir, 'tls.pem'), await readFile(join(dir, 'first.pem')));
    await writeFile(join(dir, 'tls.key'), await readFile(join(dir, 'first.key')));
    const ca = await readFile(join(dir, 'ca.pem'));
    server = await startServer({ env: { TS3GW_S3_TLS_CERT: join(dir, 'tls.pem'), TS3GW_S3_TLS_KEY: join(dir, 'tls.key') } });
    t.true(server.url.startsWith('https://127.0.0.1:'), server.url);

    const s3 = s3Over(server.url, ca);
    await s3.send(new CreateBucketCommand({ Bucket: 'tls-bucket' }));
    const body = Buffer.alloc(300 * 1024, 7);
    await s3.send(new PutObjectCommand({ Bucket: 'tls-bucket', Key: 'k', Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'tls-bucket', Key: 'k' }));
    t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    // Plain HTTP is not served on the TLS port, and a client that does not trust the CA refuses it.
    await t.throwsAsync(fetch(server.url.replace('https:', 'http:') + '/health/live'));
    await t.throwsAsync(new S3Client({ endpoint: server.url, region: TEST_REGION, forcePathStyle: true, credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY }, maxAttempts: 1 }).send(new GetObjectCommand({ Bucket: 'tls-bucket', Key: 'k' })));
    t.is(await servedSerial(server.port, ca), '1111');

    const renewed = await makeCert(dir, 'renewed');
    await writeFile(join(dir, 'tls.pem'), await readFile(join(dir, 'renewed.pem')));
    await writeFile(join(dir, 'tls.key'), await readFile(join(dir, 'renewed.key')));
    const deadline = performance.now() + 30_000;
    let serial = await servedSerial(server.port, ca);
    while (serial !== renewed && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      serial = await servedSerial(server.port, ca);
    }
    t.is(serial, renewed, 'new connections get the renewed certificate');
    const again = await s3Over(server.url, ca).send(new GetObjectCommand({ Bucket: 'tls-bucket', Key: 'k' }));
    t.is((await again.Body!.transformToByteArray()).byteLength, body.byteLength);
  } finally {
    await server?.stop();
    if (server) await removeDir(server.dataDir);
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('a cluster serving S3 over TLS moves chunks between its nodes over HTTPS', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-tls-'));
  makeCa(dir);
  await makeCert(dir, 'node');
  const ca = await readFile(join(dir, 'ca.pem'));
  const cluster = await startCluster(3, { TS3GW_S3_TLS_CERT: join(dir, 'node.pem'), TS3GW_S3_TLS_KEY: join(dir, 'node.key'), TS3GW_TLS_CA: join(dir, 'ca.pem'), TS3GW_LOG_LEVEL: 'info' });
  try {
    const [a, , c] = [...cluster.nodes.values()];
    const writer = s3Over(a!.server.url, ca);
    const deadline = performance.now() + 30_000;
    // The first write waits for a leader and for every node to know the others' S3 URLs.
    for (;;) {
      try {
        await writer.send(new CreateBucketCommand({ Bucket: 'tls-cluster' }));
        break;
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // Node registration goes through the log: probe writes until every node's ring knows all
    // three and each holds a chunk, which node 1 sent nodes 2 and 3 over HTTPS.
    await eventually(
      async () => {
        await writer.send(new PutObjectCommand({ Bucket: 'tls-cluster', Key: 'probe', Body: randomBytes(100_000) }));
        const counts = await Promise.all([1, 2, 3].map(async (id) => (await chunkInventory(cluster.nodes.get(id)!.dataDir)).size));
        return counts.every((n) => n > 0) ? true : undefined;
      },
      30_000,
      'chunks to reach every node',
    );
    // Two 4 MiB chunks and a tail; node 3 reads back whatever it lacks from the others, over HTTPS too.
    const body = randomBytes(9 * 1024 * 1024);
    const put = await writer.send(new PutObjectCommand({ Bucket: 'tls-cluster', Key: 'big', Body: body }));
    const got = await s3Over(c!.server.url, ca).send(new GetObjectCommand({ Bucket: 'tls-cluster', Key: 'big' }));
    t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    // The peers logged the chunk transfers under the PUT's own request id (x-ts3gw-request-id).
    const requestId = put.$metadata.requestId!;
    t.regex(requestId, /^[0-9A-F]{16}$/);
    const underPutId = (id: number) => cluster.nodes.get(id)!.server.output.some((l) => l.includes(`"reqId":"${requestId}"`) && l.includes('/_ts3gw/chunks/'));
    await eventually(async () => (underPutId(2) || underPutId(3) ? true : undefined), 10_000, "a peer to log the PUT's chunk transfer");
    t.true(underPutId(2) || underPutId(3), "a peer logged its part of the PUT under the PUT's request id");
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
