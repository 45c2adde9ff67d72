/**
 * Goal: every S3 error code that authentication, payload verification and checksum verification
 * can throw has an entry (HTTP status, message) in the router's one S3 error table, and errors
 * are recognized by code across module boundaries.
 * Method: compare S3_AUTH_ERROR_CODES with S3_ERRORS; check toS3Error keeps code and message.
 */
import test from 'ava';
import { S3AuthError, S3_AUTH_ERROR_CODES, isS3AuthError } from '../../../../src/s3/auth/errors.ts';
import { S3_ERRORS, toS3Error } from '../../../../src/s3/errors.ts';

test('every auth error code is in the S3 error table', (t) => {
  for (const code of S3_AUTH_ERROR_CODES) t.true(Object.hasOwn(S3_ERRORS, code), code);
});

test('toS3Error keeps the code and message of an S3AuthError', (t) => {
  const e = toS3Error(new S3AuthError('SignatureDoesNotMatch', 'nope'));
  t.is(e.code, 'SignatureDoesNotMatch');
  t.is(e.status, 403);
  t.is(e.message, 'nope');
});

test('isS3AuthError checks by code, not instanceof', (t) => {
  t.true(isS3AuthError({ code: 'BadDigest' }, 'BadDigest'));
  t.true(isS3AuthError(new S3AuthError('BadDigest', 'x')));
  t.false(isS3AuthError({ code: 'NoSuchKey' }));
  t.false(isS3AuthError(null));
  t.false(isS3AuthError(new S3AuthError('BadDigest', 'x'), 'InvalidDigest'));
});
