/**
 * Goal: gossip datagrams are heard only from nodes that know the cluster secret, and malformed
 * or foreign ones are dropped (and counted) without reaching the protocol. Method: real UDP
 * sockets on 127.0.0.1; waits poll a counter with a deadline.
 */
import dgram from 'node:dgram';
import test from 'ava';
import type { GossipMessage } from '../../../src/membership/gossip.ts';
import { splitHostPort, UdpGossipTransport } from '../../../src/membership/udp-transport.ts';

const SECRET = 'gossip-test-secret-0123456789';
const ping = (from: string): GossipMessage => ({ type: 'ping', seq: 1, from: { address: from, incarnation: 0, state: 'alive', meta: { nodeId: 1, raftAddress: from, s3Url: 'http://x:1' } }, updates: [] });

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

test('a message from a node with the secret arrives; the wrong secret, garbage and bad shapes are dropped and counted', async (t) => {
  const a = await UdpGossipTransport.bind('127.0.0.1', 0, SECRET);
  const b = await UdpGossipTransport.bind('127.0.0.1', 0, SECRET);
  const stranger = await UdpGossipTransport.bind('127.0.0.1', 0, 'another-secret-0123456789abc');
  const raw = dgram.createSocket('udp4');
  try {
    const got: GossipMessage[] = [];
    b.onMessage((m) => got.push(m));
    a.send(`127.0.0.1:${b.port}`, ping(`127.0.0.1:${a.port}`));
    await until(() => got.length === 1);
    t.deepEqual(got, [ping(`127.0.0.1:${a.port}`)]);
    stranger.send(`127.0.0.1:${b.port}`, ping('evil:1'));
    raw.send(Buffer.from('not a gossip datagram at all, but long enough to have a mac'), b.port, '127.0.0.1');
    await until(() => b.stats().ts3gw_gossip_rejected_messages_total === 2);
    t.is(b.stats().ts3gw_gossip_rejected_messages_total, 2);
    t.is(got.length, 1, 'nothing else reached the protocol');
    t.is(b.stats().ts3gw_gossip_received_messages_total, 1);
  } finally {
    raw.close();
    await Promise.all([a.close(), b.close(), stranger.close()]);
  }
});

test('addresses: host:port and [v6]:port parse; others do not', (t) => {
  t.deepEqual(splitHostPort('10.0.0.1:9001'), { host: '10.0.0.1', port: 9001 });
  t.deepEqual(splitHostPort('[::1]:9001'), { host: '::1', port: 9001 });
  t.deepEqual(splitHostPort('ts3gw-0.ts3gw.ns.svc:9001'), { host: 'ts3gw-0.ts3gw.ns.svc', port: 9001 });
  for (const bad of ['nohost', 'h:0', 'h:70000', ':9001', 'a:b:9001']) t.is(splitHostPort(bad), undefined, bad);
});
