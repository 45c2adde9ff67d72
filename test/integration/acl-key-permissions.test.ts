/**
 * Goal: per-key, per-bucket permissions (issue #18, "Identity and access"): a key given read,
 * write or owner on bucket A may do exactly that much there and nothing in bucket B, whatever
 * B's ACL, in every operation family (listing, object reads, object writes, multipart, copy,
 * bucket configuration, ACLs); revoking takes effect; a disabled key is refused.
 * Method: one real server; keys are made and scoped with the real `ts3ctl keys` CLI as a child
 * process, each used through its own AWS SDK v3 client; every refused write is followed by a
 * read proving it changed nothing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketAclCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { eventually } from '../helpers/cluster.ts';
import { removeDir, s3Client, s3ErrorOf, startServer, TEST_ACCESS_KEY, TEST_SECRET_KEY, type TestServer } from '../helpers/server.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

interface Ctx {
  server: TestServer;
  root: S3Client;
  a: string;
  b: string;
}
const test = anyTest as TestFn<Ctx>;

async function ts3ctl(server: TestServer, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['src/cli/ts3ctl.ts', ...args, '--endpoint', server.url], {
      cwd: ROOT,
      env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: TEST_SECRET_KEY },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** A new key scoped to `bucket` with `permission`, through ts3ctl. */
async function scopedKey(t: { context: Ctx; is(a: unknown, b: unknown, m?: string): void }, bucket: string, permission: string): Promise<{ id: string; s3: S3Client }> {
  const server = t.context.server;
  const created = await ts3ctl(server, 'keys', 'create', '--json', '--description', `${permission} on ${bucket}`);
  t.is(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { accessKeyId: string; secretAccessKey: string };
  const allowed = await ts3ctl(server, 'keys', 'allow', key.accessKeyId, bucket, permission);
  t.is(allowed.code, 0, allowed.stderr);
  return { id: key.accessKeyId, s3: s3Client(server, { credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey } }) };
}

const denied = { name: 'AccessDenied', status: 403 };

test.before(async (t) => {
  const server = await startServer();
  const root = s3Client(server);
  const a = `perm-a-${process.pid}`;
  const b = `perm-b-${process.pid}`;
  for (const bucket of [a, b]) {
    // B lets any key read it through its ACL: a scoped key must still not.
    await root.send(new CreateBucketCommand({ Bucket: bucket, ObjectOwnership: 'ObjectWriter', ...(bucket === b ? { ACL: 'authenticated-read' } : {}) }));
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: `in ${bucket}`, ...(bucket === b ? { ACL: 'authenticated-read' } : {}) }));
  }
  t.context = { server, root, a, b };
});

test.after.always(async (t) => {
  await t.context.server?.stop();
  if (t.context.server) await removeDir(t.context.server.dataDir);
});

/** The requests of each family a key may or may not make on a bucket. */
function families(s3: S3Client, bucket: string, source: string) {
  return {
    list: () => s3.send(new ListObjectsV2Command({ Bucket: bucket })),
    head: () => s3.send(new HeadBucketCommand({ Bucket: bucket })),
    get: () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' })),
    put: () => s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'written', Body: 'w' })),
    delete: () => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k' })),
    multipart: () => s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp' })),
    copy: () => s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copied', CopySource: `${source}/k` })),
    tagging: () => s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } })),
    getAcl: () => s3.send(new GetBucketAclCommand({ Bucket: bucket })),
    putAcl: () => s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read' })),
  };
}

async function outcome(request: () => Promise<unknown>): Promise<string> {
  try {
    await request();
    return 'ok';
  } catch (err) {
    const e = await s3ErrorOf(Promise.reject(err));
    // A HEAD answer has no body, so the SDK cannot name its error: the 403 says it.
    return e.status === 403 && (e.name === 'Unknown' || e.name === 'Forbidden') ? 'AccessDenied' : e.name;
  }
}

async function outcomes(s3: S3Client, bucket: string, source: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  // One at a time, in order: delete comes after get, so get still finds the object.
  for (const [name, request] of Object.entries(families(s3, bucket, source))) out[name] = await outcome(request);
  return out;
}

test.serial('a read-only key on A lists and reads A, writes nothing, and cannot read B despite its ACL', async (t) => {
  const { root, a, b } = t.context;
  const reader = await scopedKey(t, a, 'read');
  t.deepEqual(await outcomes(reader.s3, a, a), {
    list: 'ok',
    head: 'ok',
    get: 'ok',
    put: 'AccessDenied',
    delete: 'AccessDenied',
    multipart: 'AccessDenied',
    copy: 'AccessDenied',
    tagging: 'AccessDenied',
    getAcl: 'AccessDenied',
    putAcl: 'AccessDenied',
  });
  const inB = await outcomes(reader.s3, b, b);
  t.true(Object.values(inB).every((o) => o === 'AccessDenied'), JSON.stringify(inB));
  t.deepEqual(await s3ErrorOf(reader.s3.send(new CreateBucketCommand({ Bucket: `perm-new-${process.pid}` }))), denied);
  t.deepEqual((await reader.s3.send(new ListBucketsCommand({}))).Buckets?.map((x) => x.Name), [a]);
  // Nothing the refused requests tried is there.
  t.is(await (await root.send(new GetObjectCommand({ Bucket: a, Key: 'k' }))).Body?.transformToString(), `in ${a}`);
  t.deepEqual(await s3ErrorOf(root.send(new GetObjectCommand({ Bucket: a, Key: 'written' }))), { name: 'NoSuchKey', status: 404 });
  t.deepEqual(await s3ErrorOf(root.send(new GetBucketTaggingCommand({ Bucket: a }))), { name: 'NoSuchTagSet', status: 404 });
});

test.serial('a write key on A also writes, copies and uploads there, but changes no configuration or ACL; owner may', async (t) => {
  const { root, a, b } = t.context;
  const writer = await scopedKey(t, a, 'write');
  const got = await outcomes(writer.s3, a, a);
  t.deepEqual(got, { list: 'ok', head: 'ok', get: 'ok', put: 'ok', delete: 'ok', multipart: 'ok', copy: 'NoSuchKey', tagging: 'AccessDenied', getAcl: 'AccessDenied', putAcl: 'AccessDenied' });
  await root.send(new PutObjectCommand({ Bucket: a, Key: 'k', Body: `in ${a}` }));
  t.is(await outcome(() => writer.s3.send(new CopyObjectCommand({ Bucket: a, Key: 'copied', CopySource: `${a}/k` }))), 'ok');
  t.is(await outcome(() => writer.s3.send(new CopyObjectCommand({ Bucket: a, Key: 'from-b', CopySource: `${b}/k` }))), 'AccessDenied', 'a copy reads its source with the key\'s permissions');

  const owner = await scopedKey(t, a, 'owner');
  t.is(await outcome(() => owner.s3.send(new PutBucketTaggingCommand({ Bucket: a, Tagging: { TagSet: [{ Key: 'team', Value: 'x' }] } }))), 'ok');
  t.is(await outcome(() => owner.s3.send(new GetBucketAclCommand({ Bucket: a }))), 'ok');
  t.is(await outcome(() => owner.s3.send(new PutBucketTaggingCommand({ Bucket: b, Tagging: { TagSet: [{ Key: 'team', Value: 'x' }] } }))), 'AccessDenied');
  t.deepEqual(await s3ErrorOf(root.send(new GetBucketTaggingCommand({ Bucket: b }))), { name: 'NoSuchTagSet', status: 404 });
});

test.serial('revoke takes the permission away; keys list shows scopes; a disabled key is refused', async (t) => {
  const { server, a } = t.context;
  const key = await scopedKey(t, a, 'read');
  t.is(await outcome(() => key.s3.send(new ListObjectsV2Command({ Bucket: a }))), 'ok');
  const listed = await ts3ctl(server, 'keys', 'list');
  t.regex(listed.stdout, new RegExp(`${key.id}\\s+active\\s+no\\s+${a}:read`));
  t.is((await ts3ctl(server, 'keys', 'revoke', key.id, a)).code, 0);
  t.is(await outcome(() => key.s3.send(new ListObjectsV2Command({ Bucket: a }))), 'AccessDenied');
  t.is((await ts3ctl(server, 'keys', 'allow', key.id, a, 'everything')).code, 1, 'an unknown permission is refused');
  t.is((await ts3ctl(server, 'keys', 'allow', key.id, a, 'read')).code, 0);
  t.is(await outcome(() => key.s3.send(new ListObjectsV2Command({ Bucket: a }))), 'ok');
  t.is((await ts3ctl(server, 'keys', 'disable', key.id)).code, 0);
  t.is(await outcome(() => key.s3.send(new ListObjectsV2Command({ Bucket: a }))), 'InvalidAccessKeyId');
});

test.serial('a write key cannot name an ACL on what it writes (put, copy, multipart); an owner key can', async (t) => {
  const { root, a } = t.context;
  const writer = await scopedKey(t, a, 'write');
  const withAcl = (s3: S3Client, suffix: string) => ({
    put: () => s3.send(new PutObjectCommand({ Bucket: a, Key: `acl-put-${suffix}`, Body: 'w', ACL: 'public-read' })),
    grant: () => s3.send(new PutObjectCommand({ Bucket: a, Key: `acl-grant-${suffix}`, Body: 'w', GrantRead: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' })),
    copy: () => s3.send(new CopyObjectCommand({ Bucket: a, Key: `acl-copy-${suffix}`, CopySource: `${a}/k`, ACL: 'public-read' })),
    multipart: () => s3.send(new CreateMultipartUploadCommand({ Bucket: a, Key: `acl-mp-${suffix}`, ACL: 'public-read-write' })),
  });
  const refused: Record<string, string> = {};
  for (const [name, request] of Object.entries(withAcl(writer.s3, 'w'))) refused[name] = await outcome(request);
  t.deepEqual(refused, { put: 'AccessDenied', grant: 'AccessDenied', copy: 'AccessDenied', multipart: 'AccessDenied' });
  for (const key of ['acl-put-w', 'acl-grant-w', 'acl-copy-w']) t.deepEqual(await s3ErrorOf(root.send(new GetObjectCommand({ Bucket: a, Key: key }))), { name: 'NoSuchKey', status: 404 }, `${key} was not written`);
  t.is(await outcome(() => writer.s3.send(new PutObjectCommand({ Bucket: a, Key: 'acl-private', Body: 'w', ACL: 'private' }))), 'ok', 'private is no ACL');

  const owner = await scopedKey(t, a, 'owner');
  const allowed: Record<string, string> = {};
  for (const [name, request] of Object.entries(withAcl(owner.s3, 'o'))) allowed[name] = await outcome(request);
  t.deepEqual(allowed, { put: 'ok', grant: 'ok', copy: 'ok', multipart: 'ok' });
});

test.serial('a scope on an admin key is refused; a key keeps its scope through disable/enable; a deleted bucket takes its scopes along', async (t) => {
  const { server, root } = t.context;
  const created = await ts3ctl(server, 'keys', 'create', '--admin', '--json');
  t.is(created.code, 0, created.stderr);
  const adminKey = (JSON.parse(created.stdout) as { accessKeyId: string }).accessKeyId;
  const scoped = await ts3ctl(server, 'keys', 'allow', adminKey, t.context.a, 'read');
  t.is(scoped.code, 1, 'refused, not silently ignored');
  t.regex(scoped.stderr, /admin key/);

  const gone = `perm-gone-${process.pid}`;
  await root.send(new CreateBucketCommand({ Bucket: gone }));
  const key = await scopedKey(t, gone, 'write');
  t.is((await ts3ctl(server, 'keys', 'disable', key.id)).code, 0);
  t.is((await ts3ctl(server, 'keys', 'enable', key.id)).code, 0);
  t.regex((await ts3ctl(server, 'keys', 'list')).stdout, new RegExp(`${key.id}\\s+active\\s+no\\s+${gone}:write`), 'the scope survived the status changes');
  t.is(await outcome(() => key.s3.send(new PutObjectCommand({ Bucket: gone, Key: 'x', Body: 'x' }))), 'ok');
  await root.send(new DeleteObjectCommand({ Bucket: gone, Key: 'x' }));
  await root.send(new DeleteBucketCommand({ Bucket: gone }));
  await root.send(new CreateBucketCommand({ Bucket: gone }));
  // Nodes reload their key book once they applied a change (src/node/access-keys.ts): wait for it.
  const refused = await eventually(
    async () => ((await outcome(() => key.s3.send(new HeadBucketCommand({ Bucket: gone })))) === 'AccessDenied' ? true : undefined),
    15_000,
    'the key book drops the scope',
  );
  t.true(refused);
  t.is(await outcome(() => key.s3.send(new PutObjectCommand({ Bucket: gone, Key: 'y', Body: 'y' }))), 'AccessDenied', 'the old scope does not govern the new bucket');
  t.deepEqual(await s3ErrorOf(root.send(new GetObjectCommand({ Bucket: gone, Key: 'y' }))), { name: 'NoSuchKey', status: 404 });
  t.is(await outcome(() => key.s3.send(new ListObjectsV2Command({ Bucket: t.context.a }))), 'AccessDenied', 'and the key did not become unscoped');
});
