/**
 * Goal: the bucket-policy evaluator decides as IAM does for the subset it accepts: wildcards in
 * actions and resources, principals by key id or "*", explicit Deny over Allow, and nothing said
 * when no statement matches. Method: pure functions on parsed policies; a hostile wildcard
 * pattern must not take exponential time.
 */
import test from 'ava';
import { parsePolicy, policyDecision, wildcardMatch } from '../../../src/s3/authz/policy.ts';

test('wildcards: * any run (also none), ? one character, case as given', (t) => {
  t.true(wildcardMatch('arn:aws:s3:::b/*', 'arn:aws:s3:::b/a/b/c'));
  t.true(wildcardMatch('arn:aws:s3:::b/*', 'arn:aws:s3:::b/'));
  t.false(wildcardMatch('arn:aws:s3:::b/*', 'arn:aws:s3:::b'));
  t.true(wildcardMatch('s3:get*', 's3:getobject'));
  t.true(wildcardMatch('a?c', 'abc'));
  t.false(wildcardMatch('a?c', 'ac'));
  t.false(wildcardMatch('A*', 'abc'));
  t.false(wildcardMatch(`${'*a'.repeat(30)}b`, 'a'.repeat(200)), 'a hostile pattern ends (linear backtracking)');
});

test('decision: Deny wins, Allow grants, principals and resources must match', (t) => {
  const policy = parsePolicy(
    JSON.stringify({
      Statement: [
        { Effect: 'Allow', Principal: '*', Action: ['s3:GetObject', 's3:ListBucket'], Resource: ['arn:aws:s3:::bkt', 'arn:aws:s3:::bkt/*'] },
        { Effect: 'Deny', Principal: { AWS: ['bob', 'arn:aws:iam::carol:root'] }, Action: 's3:*', Resource: 'arn:aws:s3:::bkt/secret/*' },
      ],
    }),
    'bkt',
  );
  const anon = { kind: 'anonymous' } as const;
  const bob = { kind: 'user', id: 'bob' } as const;
  const carol = { kind: 'user', id: 'carol' } as const;
  t.is(policyDecision(policy, anon, 's3:GetObject', 'arn:aws:s3:::bkt/secret/x'), 'allow', 'the Deny names bob and carol only');
  t.is(policyDecision(policy, bob, 's3:GetObject', 'arn:aws:s3:::bkt/secret/x'), 'deny');
  t.is(policyDecision(policy, carol, 's3:GetObject', 'arn:aws:s3:::bkt/secret/x'), 'deny', 'arn:aws:iam::<id>:root names the key');
  t.is(policyDecision(policy, bob, 's3:GetObject', 'arn:aws:s3:::bkt/open'), 'allow');
  t.is(policyDecision(policy, bob, 's3:PutObject', 'arn:aws:s3:::bkt/open'), 'none');
  t.is(policyDecision(policy, anon, 's3:ListBucket', 'arn:aws:s3:::bkt'), 'allow');
  t.is(policyDecision(undefined, anon, 's3:GetObject', 'arn:aws:s3:::bkt/x'), 'none');
});

test('parse: refuses what is not a policy of this bucket, and what it would not evaluate', (t) => {
  const ok = { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::bkt/*' };
  const code = (doc: unknown) => {
    try {
      parsePolicy(typeof doc === 'string' ? doc : JSON.stringify(doc), 'bkt');
      return 'ok';
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  t.is(code({ Statement: ok }), 'ok', 'a single statement object');
  t.is(code('[]'), 'MalformedPolicy');
  t.is(code({ Statement: [] }), 'MalformedPolicy');
  t.is(code({ Version: '2020-01-01', Statement: [ok] }), 'MalformedPolicy');
  t.is(code({ Statement: [{ ...ok, Resource: 'arn:aws:s3:::other/*' }] }), 'MalformedPolicy');
  t.is(code({ Statement: [{ ...ok, Resource: '*' }] }), 'MalformedPolicy');
  t.is(code({ Statement: [{ ...ok, Principal: { Service: 'logging.s3.amazonaws.com' } }] }), 'NotImplemented');
  t.is(code({ Statement: [{ ...ok, NotAction: 's3:PutObject' }] }), 'NotImplemented');
  t.is(code(`{"Statement":[${JSON.stringify(ok)}],"Pad":"${'x'.repeat(21 * 1024)}"}`), 'MalformedPolicy', 'over 20 KB');
});
