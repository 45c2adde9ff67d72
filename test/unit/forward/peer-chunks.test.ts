/**
 * Goal: PeerChunks uses the chunk wire where the peer speaks it and the HTTP chunk endpoint where
 * it does not (an older node during a rolling upgrade, a proxy that drops upgrades), without the
 * caller noticing; wrong credentials are not mistaken for an old peer.
 * Method: a real node:http server on loopback that serves only the HTTP chunk endpoint (a Map
 * behind it) and counts the upgrade attempts it answers as plain requests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { INTERNAL_AUTH_HEADER } from '../../../src/forward/chunk-wire.ts';
import { PeerAuthVerifier, peerAuthKey } from '../../../src/util/peer-auth.ts';
import { PeerChunks } from '../../../src/forward/peer-chunks.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** An HTTP-only chunk server, as a node without the chunk wire would be. */
async function httpOnlyPeer(secret: string) {
  const chunks = new Map<string, Buffer>();
  const verifier = new PeerAuthVerifier(peerAuthKey(secret));
  let upgradeAttempts = 0;
  const server = http.createServer(async (req, res) => {
    if (req.headers.upgrade) upgradeAttempts++;
    if (!verifier.verify(req.headers[INTERNAL_AUTH_HEADER], 'chunks', 'c').ok) return void res.writeHead(403).end();
    const id = /^\/_ts3gw\/chunks\/([0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    if (!id) return void res.writeHead(400).end('not a chunk id');
    if (req.method === 'PUT') {
      const parts: Buffer[] = [];
      for await (const p of req) parts.push(p as Buffer);
      const body = Buffer.concat(parts);
      if (sha(body) !== id) return void res.writeHead(400).end('hash mismatch');
      chunks.set(id, body);
      return void res.writeHead(204).end();
    }
    const data = chunks.get(id);
    if (!data) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(data.length) }).end(req.method === 'HEAD' ? undefined : data);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    chunks,
    upgradeAttempts: () => upgradeAttempts,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('a peer without the chunk wire is served over HTTP, and asked to upgrade only once', async (t) => {
  const peer = await httpOnlyPeer('s');
  const chunks = new PeerChunks({ clusterId: 'c', clusterSecret: 's', urlOf: (id) => (id === 7 ? peer.url : undefined), chunkBytesMax: 1 << 20 });
  try {
    const data = randomBytes(50_000);
    await chunks.put(7, sha(data), data);
    t.true(peer.chunks.get(sha(data))?.equals(data));
    t.true((await chunks.get(7, sha(data)))?.equals(data));
    const read = await chunks.read(7, sha(data));
    t.true(read?.bytes.equals(data));
    read?.release();
    t.true(await chunks.has(7, sha(data)));
    t.false(await chunks.has(7, sha(Buffer.from('absent'))));
    t.is(peer.upgradeAttempts(), 1, 'the refusal is remembered');
  } finally {
    await chunks.close();
    peer.close();
  }
});

test('wrong credentials fail the call instead of falling back to HTTP', async (t) => {
  const peer = await httpOnlyPeer('right');
  const chunks = new PeerChunks({ clusterId: 'c', clusterSecret: 'wrong', urlOf: () => peer.url, chunkBytesMax: 1 << 20 });
  try {
    const data = randomBytes(10);
    await t.throwsAsync(chunks.put(1, sha(data), data), { message: /403/ });
    t.is(peer.chunks.size, 0);
  } finally {
    await chunks.close();
    peer.close();
  }
});
