/**
 * Goal: the pure parts of PostObject follow AWS's POST policy rules: policy decoding (AWS's `\$`
 * and `\v` escapes, JSON escapes, case-insensitive operators, content-length-range bounds),
 * condition matching (field names case-insensitive, values exact, `starts-with` with an empty
 * prefix, the `{"field": "value"}` form, Content-Type lists), coverage of every field except
 * AWS's exempt ones and x-ignore-*, and the `tagging` field's XML.
 * Method: table-driven calls of parsePolicy / checkConditions / tagsFromXmlField / policyJsonText;
 * every refusal is checked by its S3 error code and message.
 */
import test from 'ava';
import { S3Error } from '../../../../src/s3/errors.ts';
import { type Condition, checkConditions, parsePolicy, policyJsonText, tagsFromXmlField } from '../../../../src/s3/handlers/post-object.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const policyOf = (conditions: unknown[], expiration = '2030-01-01T00:00:00.000Z') => b64(JSON.stringify({ expiration, conditions }));

function s3code(fn: () => unknown): { code: string; message: string } | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3Error) return { code: err.code, message: err.message };
    throw err;
  }
  return undefined;
}

const V4_EXEMPT = new Set(['x-amz-signature', 'file', 'policy']);
const V2_EXEMPT = new Set(['awsaccesskeyid', 'signature', 'file', 'policy']);

test('policyJsonText: \\$ and \\v become JSON, other escapes are left to JSON', (t) => {
  t.is(policyJsonText('"a\\$b"'), '"a$b"');
  t.is(policyJsonText('"\\\\$"'), '"\\\\$"', 'an escaped backslash before $ stays');
  t.is(JSON.parse(policyJsonText('"x\\vy"')), 'x\u000by');
  t.is(JSON.parse(policyJsonText('"\\u00e9\\n\\"\\/"')), 'é\n"/');
});

test('parsePolicy: escaped values, all three condition forms, operator case, numeric-string ranges', (t) => {
  const text =
    '{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [' +
    '{"bucket": "b"}, ["StartS-With", "$Key", "user/\\$home/"], ["EQ", "$x-amz-meta-a", "caf\\u00e9 \\\\ \\"q\\""], ' +
    '{"$success_action_status": "201"}, ["content-length-range", "1", 1048576]]}';
  const { expirationMs, conditions } = parsePolicy(b64(text));
  t.is(expirationMs, Date.UTC(2030, 0, 1));
  t.deepEqual(conditions, [
    { op: 'eq', field: 'bucket', value: 'b' },
    { op: 'starts-with', field: 'key', value: 'user/$home/' },
    { op: 'eq', field: 'x-amz-meta-a', value: 'café \\ "q"' },
    { op: 'eq', field: 'success_action_status', value: '201' },
    { op: 'range', min: 1, max: 1048576 },
  ]);
});

const BAD_POLICIES: Array<[string, string]> = [
  ['not base64 JSON', b64('{not json')],
  ['no expiration', b64(JSON.stringify({ conditions: [] }))],
  ['bad expiration', policyOf([], 'next week')],
  ['no conditions', b64(JSON.stringify({ expiration: '2030-01-01T00:00:00Z' }))],
  ['unknown operator', policyOf([['ends-with', '$key', 'x']])],
  ['field without $', policyOf([['eq', 'key', 'x']])],
  ['bare $', policyOf([['eq', '$', 'x']])],
  ['non-string value', policyOf([['eq', '$key', 1]])],
  ['two-key object', policyOf([{ a: 'x', b: 'y' }])],
  ['range max < min', policyOf([['content-length-range', 10, 5]])],
  ['negative range', policyOf([['content-length-range', -1, 5]])],
  ['range of words', policyOf([['content-length-range', 'a', 'b']])],
  ['a number as condition', policyOf([42])],
];
for (const [name, policy] of BAD_POLICIES) {
  test(`parsePolicy refuses ${name}: InvalidPolicyDocument`, (t) => {
    t.is(s3code(() => parsePolicy(policy))?.code, 'InvalidPolicyDocument');
  });
}

const cond = (c: unknown[]) => parsePolicy(policyOf(c)).conditions;
const fieldsOf = (o: Record<string, string>) => new Map(Object.entries(o));

test('checkConditions: field names case-insensitive, values exact, starts-with "" matches anything', (t) => {
  const conditions = cond([{ Bucket: 'b' }, ['starts-with', '$KEY', ''], ['eq', '$Content-Type', 'text/plain'], { 'X-Amz-Meta-Tag': 'v' }]);
  const fields = fieldsOf({ key: 'anything/at/all', 'content-type': 'text/plain', 'x-amz-meta-tag': 'v', policy: 'p', 'x-amz-signature': 's' });
  t.deepEqual(checkConditions(conditions, fields, 'b', V4_EXEMPT), { min: 0, max: Number.MAX_SAFE_INTEGER });
  const failed = s3code(() => checkConditions(conditions, fieldsOf({ ...Object.fromEntries(fields), 'content-type': 'Text/Plain' }), 'b', V4_EXEMPT));
  t.is(failed?.code, 'AccessDenied');
  t.is(failed?.message, 'Invalid according to Policy: Policy Condition failed: ["eq", "$content-type", "text/plain"]');
});

test('checkConditions: the wrong bucket is AccessDenied', (t) => {
  const r = s3code(() => checkConditions(cond([{ bucket: 'mine' }]), fieldsOf({}), 'other', V4_EXEMPT));
  t.is(r?.code, 'AccessDenied');
  t.regex(r!.message, /Policy Condition failed: \["eq", "\$bucket", "mine"\]/);
});

test('checkConditions: a condition on a field the form lacks fails (eq), starts-with "" passes', (t) => {
  t.is(s3code(() => checkConditions(cond([{ success_action_status: '201' }]), fieldsOf({}), 'b', V4_EXEMPT))?.code, 'AccessDenied');
  t.notThrows(() => checkConditions(cond([['starts-with', '$x-amz-meta-tag', '']]), fieldsOf({}), 'b', V4_EXEMPT));
});

test('checkConditions: starts-with on Content-Type checks each listed type', (t) => {
  const c = cond([['starts-with', '$Content-Type', 'image/']]);
  t.notThrows(() => checkConditions(c, fieldsOf({ 'content-type': 'image/png, image/jpeg' }), 'b', V4_EXEMPT));
  t.is(s3code(() => checkConditions(c, fieldsOf({ 'content-type': 'image/png, text/html' }), 'b', V4_EXEMPT))?.code, 'AccessDenied');
});

test('checkConditions: every field must be covered except the exempt ones and x-ignore-*', (t) => {
  const c = cond([['starts-with', '$key', '']]);
  t.notThrows(() => checkConditions(c, fieldsOf({ key: 'k', policy: 'p', 'x-amz-signature': 's', 'x-ignore-me': '1', 'x-ignore-x': '2' }), 'b', V4_EXEMPT));
  t.notThrows(() => checkConditions(c, fieldsOf({ key: 'k', policy: 'p', awsaccesskeyid: 'a', signature: 's' }), 'b', V2_EXEMPT));
  const v4extra = s3code(() => checkConditions(c, fieldsOf({ key: 'k', awsaccesskeyid: 'a', 'x-amz-meta-a': '1' }), 'b', V4_EXEMPT));
  t.is(v4extra?.code, 'AccessDenied');
  t.is(v4extra?.message, 'Invalid according to Policy: Extra input fields: awsaccesskeyid, x-amz-meta-a');
  t.is(s3code(() => checkConditions(c, fieldsOf({ key: 'k', 'x-amz-signature': 's' }), 'b', V2_EXEMPT))?.code, 'AccessDenied', 'x-amz-signature is exempt only for SigV4');
});

test('checkConditions: the last content-length-range applies', (t) => {
  const c: Condition[] = cond([['content-length-range', 0, 10], ['content-length-range', 5, 20]]);
  t.deepEqual(checkConditions(c, fieldsOf({}), 'b', V4_EXEMPT), { min: 5, max: 20 });
});

test('tagsFromXmlField: entities decoded; malformed XML and bad tags refused', (t) => {
  t.is(tagsFromXmlField(undefined), undefined);
  t.deepEqual(tagsFromXmlField('<Tagging><TagSet><Tag><Key>caf&#233;</Key><Value>x y&#x2B;z</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>'), [
    { key: 'café', value: 'x y+z' },
    { key: 'c', value: '' },
  ]);
  t.deepEqual(tagsFromXmlField('<Tagging><TagSet></TagSet></Tagging>'), []);
  t.is(s3code(() => tagsFromXmlField('<Tagging><TagSet><Tag><Key>a</Key>'))?.code, 'MalformedXML');
  t.is(s3code(() => tagsFromXmlField('<Other/>'))?.code, 'MalformedXML');
  t.is(s3code(() => tagsFromXmlField('<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>'))?.code, 'MalformedXML');
  t.is(s3code(() => tagsFromXmlField('<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>'))?.code, 'InvalidTag');
  const eleven = Array.from({ length: 11 }, (_, i) => `<Tag><Key>k${i}</Key><Value>v</Value></Tag>`).join('');
  t.is(s3code(() => tagsFromXmlField(`<Tagging><TagSet>${eleven}</TagSet></Tagging>`))?.code, 'InvalidTag');
});
