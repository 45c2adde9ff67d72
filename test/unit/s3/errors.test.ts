/**
 * Goal: one S3 error table covers every code the server can send (fastify's
 * test:validator:integrity spirit). Method: scan src/ for S3Error('Code' …) and the auth module's
 * code list, and check each against the table; check statuses are HTTP error statuses.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { S3_AUTH_ERROR_CODES } from '../../../src/s3/auth/errors.ts';
import { S3_ERRORS, S3Error, toS3Error } from '../../../src/s3/errors.ts';
import { StoreError } from '../../../src/util/errors.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('every code thrown in src/ is in the table', (t) => {
  const used = new Set<string>();
  for (const file of sources('src')) {
    for (const m of readFileSync(file, 'utf8').matchAll(/new S3(?:Auth)?Error\(\s*'([A-Za-z]+)'/g)) used.add(m[1]!);
  }
  t.true(used.size > 20, 'the scan found the code base');
  for (const code of [...used, ...S3_AUTH_ERROR_CODES]) t.true(Object.hasOwn(S3_ERRORS, code), `${code} is in the S3 error table`);
});

test('statuses are errors (or 304) and messages are set', (t) => {
  for (const [code, spec] of Object.entries(S3_ERRORS)) {
    t.true(spec.status === 304 || (spec.status >= 400 && spec.status < 600), code);
    t.true(spec.message.length > 0, code);
  }
});

test('coded errors of lower layers map to S3 codes; unknown errors become InternalError', (t) => {
  t.is(toS3Error(new StoreError('META_ERR_NO_SUCH_KEY', 'x')).code, 'NoSuchKey');
  t.is(toS3Error(new StoreError('META_ERR_BUCKET_NOT_EMPTY', 'x')).status, 409);
  t.is(toS3Error(new Error('boom')).code, 'InternalError');
  t.is(toS3Error(new S3Error('SlowDown')).status, 503);
});
