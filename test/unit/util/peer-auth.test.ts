/**
 * Goal: a peer auth token proves the cluster secret without carrying it, and is good for one
 * use, one purpose and one cluster within the clock window.
 * Method: tokens made and verified in memory with an injected clock; every way a token can be
 * wrong is tried against a verifier that accepts the right one.
 */
import test from 'ava';
import { checkReplyProof, PEER_AUTH_SKEW_MS, PeerAuthVerifier, peerAuthKey, peerAuthToken, replyProof } from '../../../src/util/peer-auth.ts';

const SECRET = 'a-cluster-secret-of-some-length';
const key = peerAuthKey(SECRET);

test('a fresh token verifies once and names its sender; the secret is not in it', (t) => {
  const verifier = new PeerAuthVerifier(key);
  const token = peerAuthToken(key, 'raft', 'c1', '7');
  t.false(token.includes(SECRET));
  t.deepEqual(verifier.verify(token, 'raft', 'c1'), { ok: true, sender: '7' });
  t.deepEqual(verifier.verify(token, 'raft', 'c1'), { ok: false, reason: 'peer auth token replayed' });
  t.true(verifier.verify(peerAuthToken(key, 'raft', 'c1', '7'), 'raft', 'c1').ok, 'a new token for the same call is fine');
});

test('a token from another secret, cluster or purpose, or an edited one, is refused', (t) => {
  const verifier = new PeerAuthVerifier(key);
  const wrongKey = peerAuthKey('another-cluster-secret-xxxxxxxx');
  const bad = (token: unknown, purpose: 'raft' | 'chunks' = 'raft', cluster = 'c1') => {
    const verdict = verifier.verify(token, purpose, cluster);
    return verdict.ok ? 'accepted' : verdict.reason;
  };
  t.regex(bad(peerAuthToken(wrongKey, 'raft', 'c1')), /bad peer auth MAC/);
  t.regex(bad(peerAuthToken(key, 'raft', 'c2')), /bad peer auth MAC/);
  t.regex(bad(peerAuthToken(key, 'chunks', 'c1')), /bad peer auth MAC/);
  t.regex(bad(peerAuthToken(key, 'raft', 'c1', '2').replace('.2.', '.3.')), /bad peer auth MAC/, 'the sender is covered');
  const stamped = peerAuthToken(key, 'raft', 'c1').split('.');
  stamped[1] = String(Number(stamped[1]) + 1);
  t.regex(bad(stamped.join('.')), /bad peer auth MAC/, 'the timestamp is covered');
  for (const malformed of [undefined, '', 'v2.1.2.3.4', 'v1.x.y', SECRET, 'v1.'.padEnd(300, 'a'), 42]) t.not(bad(malformed), 'accepted');
  t.is(bad([peerAuthToken(key, 'raft', 'c1')]), 'accepted', 'a header given once as a list is that value');
});

test('a token stamped too far from the verifier clock is refused, either way', (t) => {
  let now = 1_000_000_000_000;
  const verifier = new PeerAuthVerifier(key, { nowMs: () => now });
  const old = peerAuthToken(key, 'raft', 'c1', '', now - PEER_AUTH_SKEW_MS - 1);
  const future = peerAuthToken(key, 'raft', 'c1', '', now + PEER_AUTH_SKEW_MS + 1);
  const skewed = peerAuthToken(key, 'raft', 'c1', '', now - PEER_AUTH_SKEW_MS + 1000);
  t.false(verifier.verify(old, 'raft', 'c1').ok);
  t.false(verifier.verify(future, 'raft', 'c1').ok);
  t.true(verifier.verify(skewed, 'raft', 'c1').ok, 'a peer whose clock is behind by less than the window is heard');
  now += 2000;
  t.false(verifier.verify(skewed, 'raft', 'c1').ok);
});

test('when more nonces arrive than it remembers, nothing older than the forgotten ones is accepted', (t) => {
  const now = 1_000_000_000_000;
  const verifier = new PeerAuthVerifier(key, { nowMs: () => now, noncesMax: 3 });
  const tokens = [1, 2, 3, 4].map((i) => peerAuthToken(key, 'chunks', 'c', '', now - 100 + i));
  for (const token of tokens) t.true(verifier.verify(token, 'chunks', 'c').ok);
  // The first nonce was forgotten: its replay must still fail, and so must any token stamped no later.
  t.false(verifier.verify(tokens[0], 'chunks', 'c').ok);
  t.false(verifier.verify(peerAuthToken(key, 'chunks', 'c', '', now - 99), 'chunks', 'c').ok);
  t.true(verifier.verify(peerAuthToken(key, 'chunks', 'c', '', now), 'chunks', 'c').ok);
});

test('the reply proof binds the server to the token it answered', (t) => {
  const token = peerAuthToken(key, 'raft', 'c1', '1');
  t.true(checkReplyProof(key, token, replyProof(key, token)));
  t.false(checkReplyProof(key, token, replyProof(peerAuthKey('another-cluster-secret-xxxxxxxx'), token)));
  t.false(checkReplyProof(key, token, replyProof(key, peerAuthToken(key, 'raft', 'c1', '1'))));
  t.false(checkReplyProof(key, token, undefined));
});

test('a sender that could break the token format is a TypeError', (t) => {
  t.throws(() => peerAuthToken(key, 'raft', 'c1', 'a.b'), { instanceOf: TypeError });
});
