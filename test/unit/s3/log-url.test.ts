/**
 * Goal: the access log never shows a presigned URL's credentials (SigV4 X-Amz-Signature,
 * X-Amz-Credential, X-Amz-Security-Token; SigV2 Signature, AWSAccessKeyId), whatever their case
 * or encoding, and keeps everything else of the URL as received. Method: redactUrl on URLs made
 * by the test signer's presign and by hand.
 */
import test from 'ava';
import { REDACTED, redactUrl } from '../../../src/s3/log-url.ts';
import { presign, TEST_CREDENTIALS } from '../../helpers/signer.ts';

test('a SigV4 presigned URL keeps its path and parameters but not its signature or credential', (t) => {
  const pathAndQuery = presign({ method: 'GET', host: 'localhost:9000', path: '/b/dir/a%20b.txt', query: 'X-Amz-Security-Token=tok', expiresSeconds: 60 });
  const logged = redactUrl(pathAndQuery);
  t.true(logged.startsWith('/b/dir/a%20b.txt?'));
  t.false(logged.includes(TEST_CREDENTIALS.accessKeyId), logged);
  const signature = new URLSearchParams(pathAndQuery.split('?')[1]).get('X-Amz-Signature');
  t.truthy(signature);
  t.false(logged.includes(signature!), logged);
  t.regex(logged, new RegExp(`X-Amz-Signature=${REDACTED}`));
  t.regex(logged, /X-Amz-Algorithm=AWS4-HMAC-SHA256/);
  t.regex(logged, /X-Amz-Expires=60/);
  t.regex(logged, new RegExp(`X-Amz-Security-Token=${REDACTED}`));
});

test('SigV2, any case, encoded names and valueless parameters; other URLs stay byte for byte', (t) => {
  t.is(redactUrl('/b/k?AWSAccessKeyId=AKID&Expires=1&Signature=abc%2Bdef'), `/b/k?AWSAccessKeyId=${REDACTED}&Expires=1&Signature=${REDACTED}`);
  t.is(redactUrl('/b/k?x-amz-signature=s&X-AMZ-CREDENTIAL=c&X-Amz-Security-Token=t'), `/b/k?x-amz-signature=${REDACTED}&X-AMZ-CREDENTIAL=${REDACTED}&X-Amz-Security-Token=${REDACTED}`);
  t.is(redactUrl('/b/k?X%2DAmz%2DSignature=s&%ZZ=1'), `/b/k?X%2DAmz%2DSignature=${REDACTED}&%ZZ=1`);
  t.is(redactUrl('/b/k?Signature'), `/b/k?Signature=${REDACTED}`);
  for (const url of ['/', '/b', '/b/k?uploads', '/b?list-type=2&prefix=a%2Fb&continuation-token=x', '/b/k?versionId=Signature']) t.is(redactUrl(url), url);
});
