/**
 * Goal: the IAM wildcard matcher ('*' any run, '?' one character) agrees with the definition on
 * every pattern and text, including patterns wider than one 32-bit state word, and a policy
 * crafted to make a backtracking matcher slow is parsed with its limits and still decided
 * correctly. Method: fast-check against a brute-force recursive oracle over a small alphabet
 * (so that matches and near-misses are both common); parsePolicy on oversized resources.
 */
import test from 'ava';
import fc from 'fast-check';
import { parsePolicy, policyDecision, POLICY_RESOURCE_CHARS_MAX, POLICY_RESOURCES_MAX } from '../../../src/s3/authz/policy.ts';
import { wildcardMatch } from '../../../src/s3/authz/wildcard.ts';
import { S3Error } from '../../../src/s3/errors.ts';

/** The definition, by exhaustive recursion (memoised): fine for short strings only. */
function oracle(pattern: string, text: string): boolean {
  const memo = new Map<string, boolean>();
  const go = (p: number, t: number): boolean => {
    const k = `${p},${t}`;
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    let r: boolean;
    if (p === pattern.length) r = t === text.length;
    else if (pattern[p] === '*') r = go(p + 1, t) || (t < text.length && go(p, t + 1));
    else r = t < text.length && (pattern[p] === '?' || pattern[p] === text[t]) && go(p + 1, t + 1);
    memo.set(k, r);
    return r;
  };
  return go(0, 0);
}

const patterns = (maxLength: number) => fc.array(fc.constantFrom('a', 'b', '*', '?', '/'), { maxLength }).map((cs) => cs.join(''));
const texts = (maxLength: number) => fc.array(fc.constantFrom('a', 'b', '/', 'c'), { maxLength }).map((cs) => cs.join(''));

test('agrees with the definition on short patterns and texts', (t) => {
  fc.assert(
    fc.property(patterns(12), texts(14), (p, s) => wildcardMatch(p, s) === oracle(p, s)),
    { numRuns: 5000 },
  );
  t.pass();
});

test('agrees with the definition on patterns of more than 32 and 64 states (carry between words)', (t) => {
  fc.assert(
    fc.property(patterns(90), texts(100), (p, s) => wildcardMatch(p, s) === oracle(p, s)),
    { numRuns: 1000 },
  );
  // A text made to match a long pattern, so that the accepting state really is reached.
  fc.assert(
    fc.property(texts(100), fc.array(fc.nat(), { maxLength: 30 }), (s, holes) => {
      const chars = [...s];
      for (const h of holes) if (chars.length > 0) chars[h % chars.length] = h % 2 === 0 ? '?' : '*';
      const p = chars.join('');
      return wildcardMatch(p, s) === oracle(p, s) && oracle(p, s);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('a crafted policy is still decided, and oversized resources or too many of them are MalformedPolicy', (t) => {
  const bucket = 'b';
  const hostile = `arn:aws:s3:::b/*${'a'.repeat(1000)}c`;
  const policy = parsePolicy(
    JSON.stringify({ Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: [...Array.from({ length: 19 }, (_, i) => `arn:aws:s3:::b/${i}*`), hostile] }] }),
    bucket,
  );
  const key = 'a'.repeat(1010);
  t.is(policyDecision(policy, { kind: 'anonymous' }, 's3:GetObject', `arn:aws:s3:::b/${key}`), 'none');
  t.is(policyDecision(policy, { kind: 'anonymous' }, 's3:GetObject', `arn:aws:s3:::b/${key}c`), 'deny');

  const code = (f: () => unknown) => {
    try {
      f();
      return 'accepted';
    } catch (err) {
      return err instanceof S3Error ? err.code : String(err);
    }
  };
  const tooLong = `arn:aws:s3:::b/${'x'.repeat(POLICY_RESOURCE_CHARS_MAX)}`;
  t.is(code(() => parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: tooLong }] }), bucket)), 'MalformedPolicy');
  // Within 20 KB, but one resource more than the limit.
  const statement = (n: number) => ({ Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: Array.from({ length: n }, () => 'arn:aws:s3:::b') });
  const many = [...Array.from({ length: POLICY_RESOURCES_MAX / 100 }, () => statement(100)), statement(1)];
  const text = JSON.stringify({ Statement: many });
  t.true(Buffer.byteLength(text) <= 20 * 1024, `${Buffer.byteLength(text)} bytes`);
  t.throws(() => parsePolicy(text, bucket), { instanceOf: S3Error, message: /at most 1000 resources/ });
  t.is(code(() => parsePolicy(JSON.stringify({ Statement: many.slice(1) }), bucket)), 'accepted', 'the limit itself is fine');
});
