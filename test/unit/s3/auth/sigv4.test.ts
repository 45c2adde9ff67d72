/**
 * Goal: every SigV4 step in src/s3/auth/sigv4.ts reproduces the intermediate values AWS publishes.
 * Method: the worked examples of https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 * (GET Object with Range, PUT Object, GET Bucket Lifecycle, GET Bucket (List Objects)) and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html (presigned GET), each
 * checked step by step: canonical request text, string to sign, signature. Plus table tests of
 * UriEncode, path and query canonicalization and the bounded signing-key cache.
 */
import test from 'ava';
import {
  EMPTY_SHA256_HEX,
  SIGNING_KEY_CACHE_MAX,
  canonicalHeaderValue,
  canonicalHeaders,
  canonicalQueryString,
  canonicalRequest,
  canonicalUri,
  constantTimeEqualHex,
  credentialScope,
  deriveSigningKey,
  percentDecodeBytes,
  sha256Hex,
  signature,
  signedHeadersList,
  signingKey,
  signingKeyCacheSize,
  stringToSign,
  uriEncode,
} from '../../../../src/s3/auth/sigv4.ts';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const AMZ_DATE = '20130524T000000Z';
const SCOPE = '20130524/us-east-1/s3/aws4_request';

interface Example {
  name: string;
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: Record<string, string>;
  signedHeaders: string;
  payloadHash: string;
  presigned?: boolean;
  canonicalRequest: string;
  stringToSignHash?: string;
  signature: string;
}

const EXAMPLES: Example[] = [
  {
    name: 'GET Object (Range)',
    method: 'GET',
    rawPath: '/test.txt',
    rawQuery: '',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': EMPTY_SHA256_HEX,
      'x-amz-date': AMZ_DATE,
    },
    signedHeaders: 'host;range;x-amz-content-sha256;x-amz-date',
    payloadHash: EMPTY_SHA256_HEX,
    canonicalRequest: [
      'GET',
      '/test.txt',
      '',
      'host:examplebucket.s3.amazonaws.com',
      'range:bytes=0-9',
      `x-amz-content-sha256:${EMPTY_SHA256_HEX}`,
      'x-amz-date:20130524T000000Z',
      '',
      'host;range;x-amz-content-sha256;x-amz-date',
      EMPTY_SHA256_HEX,
    ].join('\n'),
    stringToSignHash: '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
    signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  },
  {
    name: 'PUT Object',
    method: 'PUT',
    // The request line in the AWS example is `PUT test$file.text`: '$' travels unencoded.
    rawPath: '/test$file.text',
    rawQuery: '',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      date: 'Fri, 24 May 2013 00:00:00 GMT',
      'x-amz-date': AMZ_DATE,
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    },
    signedHeaders: 'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
    payloadHash: '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    canonicalRequest: [
      'PUT',
      '/test%24file.text',
      '',
      'date:Fri, 24 May 2013 00:00:00 GMT',
      'host:examplebucket.s3.amazonaws.com',
      'x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      'x-amz-date:20130524T000000Z',
      'x-amz-storage-class:REDUCED_REDUNDANCY',
      '',
      'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
      '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    ].join('\n'),
    stringToSignHash: '9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d',
    signature: '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
  },
  {
    name: 'GET Bucket Lifecycle',
    method: 'GET',
    rawPath: '/',
    rawQuery: 'lifecycle',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      'x-amz-date': AMZ_DATE,
      'x-amz-content-sha256': EMPTY_SHA256_HEX,
    },
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    payloadHash: EMPTY_SHA256_HEX,
    canonicalRequest: [
      'GET',
      '/',
      'lifecycle=',
      'host:examplebucket.s3.amazonaws.com',
      `x-amz-content-sha256:${EMPTY_SHA256_HEX}`,
      'x-amz-date:20130524T000000Z',
      '',
      'host;x-amz-content-sha256;x-amz-date',
      EMPTY_SHA256_HEX,
    ].join('\n'),
    stringToSignHash: '9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca',
    signature: 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
  },
  {
    name: 'GET Bucket (List Objects)',
    method: 'GET',
    rawPath: '/',
    rawQuery: 'max-keys=2&prefix=J',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      'x-amz-date': AMZ_DATE,
      'x-amz-content-sha256': EMPTY_SHA256_HEX,
    },
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    payloadHash: EMPTY_SHA256_HEX,
    canonicalRequest: [
      'GET',
      '/',
      'max-keys=2&prefix=J',
      'host:examplebucket.s3.amazonaws.com',
      `x-amz-content-sha256:${EMPTY_SHA256_HEX}`,
      'x-amz-date:20130524T000000Z',
      '',
      'host;x-amz-content-sha256;x-amz-date',
      EMPTY_SHA256_HEX,
    ].join('\n'),
    stringToSignHash: 'df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7',
    signature: '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
  },
  {
    name: 'presigned GET Object',
    method: 'GET',
    rawPath: '/test.txt',
    rawQuery:
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
      '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
      '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    headers: { host: 'examplebucket.s3.amazonaws.com' },
    signedHeaders: 'host',
    payloadHash: 'UNSIGNED-PAYLOAD',
    presigned: true,
    canonicalRequest: [
      'GET',
      '/test.txt',
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host',
      'host:examplebucket.s3.amazonaws.com',
      '',
      'host',
      'UNSIGNED-PAYLOAD',
    ].join('\n'),
    stringToSignHash: '3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04',
    signature: 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
  },
];

for (const ex of EXAMPLES) {
  test(`AWS example ${ex.name}: canonical request, string to sign, signature`, (t) => {
    const creq = canonicalRequest(
      ex.method,
      canonicalUri(ex.rawPath),
      canonicalQueryString(ex.rawQuery, ex.presigned === true),
      canonicalHeaders(ex.headers, signedHeadersList(ex.signedHeaders)),
      ex.signedHeaders,
      ex.payloadHash,
    );
    t.is(creq, ex.canonicalRequest, 'canonical request');
    const creqHash = sha256Hex(creq);
    if (ex.stringToSignHash !== undefined) t.is(creqHash, ex.stringToSignHash, 'hash of canonical request');
    const sts = stringToSign(AMZ_DATE, SCOPE, creqHash);
    t.is(sts, `AWS4-HMAC-SHA256\n${AMZ_DATE}\n${SCOPE}\n${creqHash}`);
    t.is(signature(signingKey(SECRET, '20130524', 'us-east-1', 's3'), sts), ex.signature, 'signature');
  });
}

test('credentialScope', (t) => {
  t.is(credentialScope('20130524', 'us-east-1', 's3'), SCOPE);
});

test('uriEncode keeps unreserved characters and encodes everything else once, upper-case', (t) => {
  t.is(uriEncode('AZaz09-._~', true), 'AZaz09-._~');
  t.is(uriEncode('a b+c*d$e=f&g', true), 'a%20b%2Bc%2Ad%24e%3Df%26g');
  t.is(uriEncode('a/b', true), 'a%2Fb');
  t.is(uriEncode('a/b', false), 'a/b');
  t.is(uriEncode('é', true), '%C3%A9');
  t.is(uriEncode("!'()", true), '%21%27%28%29');
  t.is(uriEncode('%', true), '%25');
});

test('percentDecodeBytes is lenient and handles + per context', (t) => {
  t.is(percentDecodeBytes('a%2fb%2Fc', false).toString(), 'a/b/c');
  t.is(percentDecodeBytes('100%', false).toString(), '100%');
  t.is(percentDecodeBytes('%zz%4', false).toString(), '%zz%4');
  t.is(percentDecodeBytes('a+b', false).toString(), 'a+b');
  t.is(percentDecodeBytes('a+b', true).toString(), 'a b');
  t.deepEqual([...percentDecodeBytes('%ff', false)], [0xff]);
});

test('canonicalUri: S3 neither normalizes nor double-encodes', (t) => {
  t.is(canonicalUri(''), '/');
  t.is(canonicalUri('/'), '/');
  t.is(canonicalUri('/bucket/a%20b'), '/bucket/a%20b');
  t.is(canonicalUri('/bucket/a b'), '/bucket/a%20b');
  t.is(canonicalUri('/bucket/a%2Fb'), '/bucket/a%2Fb', 'encoded slash inside a key stays encoded');
  t.is(canonicalUri('/bucket/a%2fb'), '/bucket/a%2Fb', 'hex case is normalized');
  t.is(canonicalUri('/bucket//x/./../y'), '/bucket//x/./../y', 'no dot-segment or slash normalization');
  t.is(canonicalUri('/bucket/%E2%82%AC+'), '/bucket/%E2%82%AC%2B', '+ in a path is a literal plus');
  t.is(canonicalUri('/bucket/a%25b'), '/bucket/a%25b', 'encoded percent is not decoded twice');
});

test('canonicalQueryString sorts by encoded key then value and encodes both', (t) => {
  t.is(canonicalQueryString(''), '');
  t.is(canonicalQueryString('b=2&a=1&a=0'), 'a=0&a=1&b=2');
  t.is(canonicalQueryString('uploads'), 'uploads=');
  t.is(canonicalQueryString('prefix=a/b&delimiter=%2F'), 'delimiter=%2F&prefix=a%2Fb');
  t.is(canonicalQueryString('prefix=a%20b'), 'prefix=a%20b');
  t.is(canonicalQueryString('prefix=a+b'), 'prefix=a%20b');
  t.is(canonicalQueryString('k=%7e'), 'k=~');
  t.is(canonicalQueryString('a=1&&b=2&'), 'a=1&b=2');
  // Sorting is by encoded bytes: upper-case before lower-case, '-' before letters.
  t.is(canonicalQueryString('x-id=1&X-Amz-Date=2&list-type=2'), 'X-Amz-Date=2&list-type=2&x-id=1');
  t.is(
    canonicalQueryString('X-Amz-Signature=abc&X-Amz-Date=x', true),
    'X-Amz-Date=x',
    'presigned: X-Amz-Signature excluded',
  );
  t.is(canonicalQueryString('X-Amz-Signature=abc', false), 'X-Amz-Signature=abc');
});

test('canonicalHeaderValue trims and collapses inner whitespace', (t) => {
  t.is(canonicalHeaderValue('  a   b  c '), 'a b c');
  t.is(canonicalHeaderValue(['a ', ' b']), 'a,b');
  t.is(canonicalHeaderValue(undefined), '');
  t.is(canonicalHeaderValue('"a   b"'), '"a b"');
  t.is(canonicalHeaderValue('a\t \tb'), 'a b');
});

test('signing key derivation matches the cached key, and the cache is bounded', (t) => {
  const k1 = deriveSigningKey(SECRET, '20130524', 'us-east-1', 's3');
  t.deepEqual(signingKey(SECRET, '20130524', 'us-east-1', 's3'), k1);
  for (let i = 0; i < SIGNING_KEY_CACHE_MAX + 10; i++) signingKey(`secret-${i}`, '20130524', 'us-east-1', 's3');
  t.true(signingKeyCacheSize() <= SIGNING_KEY_CACHE_MAX);
  t.deepEqual(signingKey(SECRET, '20130524', 'us-east-1', 's3'), k1, 'evicted key is recomputed identically');
});

test('constantTimeEqualHex', (t) => {
  t.true(constantTimeEqualHex('abc', 'abc'));
  t.false(constantTimeEqualHex('abc', 'abd'));
  t.false(constantTimeEqualHex('abc', 'abcd'));
  t.false(constantTimeEqualHex('abc', ''));
});
