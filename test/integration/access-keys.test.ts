/**
 * Goal: access keys beyond the root key, managed with ts3ctl: a key created through one node
 * signs S3 requests on every node; only admin keys (and root) may use the admin API; a disabled
 * or deleted key is refused with InvalidAccessKeyId; the secret is shown once and is in neither
 * the Raft log nor the metadata store in clear. Method: a real 3-node cluster and the real
 * ts3ctl as a child process; the data directories are searched byte for byte for the secret.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, ListBucketsCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import test from 'ava';
import { admin, eventually, startCluster, waitForLeader } from '../helpers/cluster.ts';
import { TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY } from '../helpers/server.ts';
import { RawS3 } from '../helpers/signer.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

async function ts3ctl(endpoint: string, creds: { id: string; secret: string }, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['src/cli/ts3ctl.ts', ...args, '--endpoint', endpoint], {
      cwd: ROOT,
      env: { ...process.env, AWS_ACCESS_KEY_ID: creds.id, AWS_SECRET_ACCESS_KEY: creds.secret },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

const s3As = (url: string, id: string, secret: string) => new S3Client({ endpoint: url, region: TEST_REGION, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: id, secretAccessKey: secret } });
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof S3ServiceException ? err.name : String(err);
  }
}

async function filesContain(dir: string, needle: Buffer): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) hits.push(path);
  }
  return hits;
}

test('keys: created on one node, usable on all, admin-gated, disabled and deleted keys refused, secret never stored in clear', async (t) => {
  const cluster = await startCluster(3);
  try {
    await waitForLeader(cluster);
    const urls = [1, 2, 3].map((id) => cluster.nodes.get(id)!.server.url);
    const root = { id: TEST_ACCESS_KEY, secret: TEST_SECRET_KEY };
    const created = await ts3ctl(urls[0]!, root, 'keys', 'create', '--description', 'app key');
    t.is(created.code, 0, created.stderr);
    const id = /AWS_ACCESS_KEY_ID=(\S+)/.exec(created.stdout)?.[1];
    const secret = /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(created.stdout)?.[1];
    t.truthy(id && secret, created.stdout);

    // Usable on every node once applied there.
    for (const url of urls) await eventually(async () => ((await codeOf(s3As(url, id!, secret!).send(new ListBucketsCommand({})))) === 'ok' ? true : undefined), 15_000, `the new key on ${url}`);
    t.is(await codeOf(s3As(urls[1]!, id!, secret!).send(new CreateBucketCommand({ Bucket: 'made-by-app-key' }))), 'ok');
    t.is(await codeOf(s3As(urls[1]!, id!, 'wrong-secret-0123456789').send(new ListBucketsCommand({}))), 'SignatureDoesNotMatch');

    // Not an admin key: the admin API refuses it; an admin key may list keys.
    const asApp = await ts3ctl(urls[2]!, { id: id!, secret: secret! }, 'keys', 'list');
    t.is(asApp.code, 1);
    t.regex(asApp.stderr, /403 .*root key or an admin key/);
    const adminCreated = await ts3ctl(urls[0]!, root, 'keys', 'create', '--admin', '--json');
    const adminKey = JSON.parse(adminCreated.stdout) as { accessKeyId: string; secretAccessKey: string; admin: boolean };
    t.true(adminKey.admin);
    const listed = await eventually(async () => {
      const r = await ts3ctl(urls[2]!, { id: adminKey.accessKeyId, secret: adminKey.secretAccessKey }, 'keys', 'list', '--json');
      return r.code === 0 ? (JSON.parse(r.stdout) as { keys: Array<{ accessKeyId: string; description?: string; secretAccessKey?: string }> }) : undefined;
    }, 15_000, 'the admin key listing keys');
    t.deepEqual(listed.keys.map((k) => k.accessKeyId).sort(), [id!, adminKey.accessKeyId].sort());
    t.true(listed.keys.every((k) => k.secretAccessKey === undefined), 'no secret in a listing');
    t.is(listed.keys.find((k) => k.accessKeyId === id)?.description, 'app key');

    // The secret is nowhere in clear: not in the Raft log, not in LevelDB.
    for (const n of cluster.nodes.values()) t.deepEqual(await filesContain(n.dataDir, Buffer.from(secret!)), [], `node ${n.id} stores no clear secret`);

    // Disabled: refused everywhere; enabled again: works; deleted: refused.
    t.is((await ts3ctl(urls[0]!, root, 'keys', 'disable', id!)).code, 0);
    for (const url of urls) await eventually(async () => ((await codeOf(s3As(url, id!, secret!).send(new ListBucketsCommand({})))) === 'InvalidAccessKeyId' ? true : undefined), 15_000, `disabled on ${url}`);
    t.is((await ts3ctl(urls[0]!, root, 'keys', 'enable', id!)).code, 0);
    await eventually(async () => ((await codeOf(s3As(urls[2]!, id!, secret!).send(new ListBucketsCommand({})))) === 'ok' ? true : undefined), 15_000, 'enabled again');
    t.is((await ts3ctl(urls[1]!, root, 'keys', 'delete', id!)).code, 0);
    for (const url of urls) await eventually(async () => ((await codeOf(s3As(url, id!, secret!).send(new ListBucketsCommand({})))) === 'InvalidAccessKeyId' ? true : undefined), 15_000, `deleted on ${url}`);
    const gone = await ts3ctl(urls[1]!, root, 'keys', 'delete', id!);
    t.is(gone.code, 1);
    t.regex(gone.stderr, /404/);
    const rootDelete = await admin(urls[0]!, 'DELETE', '/keys', `id=${TEST_ACCESS_KEY}`);
    t.is(rootDelete.status, 400, 'the root key is not managed through the API');
    // The root key still works, with the raw signer too.
    const raw = new RawS3(urls[2]!);
    t.is((await raw.signed('GET', '/')).status, 200);
    await raw.close();
  } finally {
    await cluster.stop();
  }
});
