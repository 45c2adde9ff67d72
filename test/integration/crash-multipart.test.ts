/**
 * Goal: CompleteMultipartUpload is atomic across kill -9. After a crash at any moment of a
 * completion and a restart on the same data directory, the key holds either the complete new
 * object (right size, bytes and multipart ETag) or nothing, and ListMultipartUploads / ListParts
 * agree: the upload is listed with all its parts exactly when the object is absent. A completion
 * that was acknowledged before the kill is always there.
 *
 * Method: one data directory, several rounds. Each round creates an upload of its own key,
 * uploads three parts (5 MiB, 5 MiB, 1 KiB), sends the completion and kills the server after a
 * delay that differs per round (0 ms = before the request is read, up to well after it is
 * answered), restarts it and checks every round's key so far.
 *
 *   round r:  create ─ part1 ─ part2 ─ part3 ─ complete ──(delay_r)──► kill -9 ─► restart ─► check all
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import test, { type ExecutionContext } from 'ava';
import { removeDir, s3Client, startServer, type TestServer } from '../helpers/server.ts';

/** The running server, module-level: after.always does not see a test's own context. */
const current: { server?: TestServer; dataDir?: string } = {};
const MiB = 1024 * 1024;
const BUCKET = 'crash-mpu';
/** Milliseconds between sending the completion and the kill, one round each. */
const KILL_DELAYS_MS = [0, 2, 5, 10, 20, 35, 50, 80, 400];

test.after.always(async () => {
  await current.server?.kill();
  if (current.dataDir) await removeDir(current.dataDir);
});

interface Round {
  key: string;
  uploadId: string;
  body: Buffer;
  etag: string;
  acknowledged: boolean;
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest();

test('kill -9 during CompleteMultipartUpload: the object is complete or absent, and the upload listing agrees', async (t) => {
  let server = await startServer();
  current.server = server;
  current.dataDir = server.dataDir;
  // Every client is destroyed at the end so no keep-alive socket holds the worker open.
  const clients: ReturnType<typeof s3Client>[] = [];
  const client = () => {
    const c = s3Client(server);
    clients.push(c);
    return c;
  };
  await client().send(new CreateBucketCommand({ Bucket: BUCKET }));
  const rounds: Round[] = [];
  let present = 0;
  for (const [r, delay] of KILL_DELAYS_MS.entries()) {
    const s3 = client();
    const key = `round-${r}`;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1024)];
    const list = [];
    for (const [i, body] of parts.entries()) {
      const res = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: body }));
      list.push({ ETag: res.ETag, PartNumber: i + 1 });
    }
    const round: Round = {
      key,
      uploadId: UploadId!,
      body: Buffer.concat(parts),
      etag: `"${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-3"`,
      acknowledged: false,
    };
    rounds.push(round);
    const completion = s3
      .send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: list } }))
      .then(
        (res) => {
          t.is(res.ETag, round.etag, `round ${r}: completion ETag`);
          round.acknowledged = true;
        },
        () => undefined, // the kill cut it off: its fate is what the check below decides
      );
    await new Promise((resolve) => setTimeout(resolve, delay));
    await server.kill();
    await completion;
    server = await startServer({ dataDir: server.dataDir });
    current.server = server;
    present = await checkAll(t, client(), rounds);
  }
  for (const c of clients) c.destroy();
  t.log(`completed after restart: ${present} of ${rounds.length}; acknowledged before the kill: ${rounds.filter((r) => r.acknowledged).length}`);
});

/** Checks every round's key against the upload listing; returns how many objects are complete. */
async function checkAll(t: ExecutionContext, s3: ReturnType<typeof s3Client>, rounds: Round[]): Promise<number> {
  let complete = 0;
  const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? [];
  const listed = new Set(uploads.map((u) => `${u.Key}/${u.UploadId}`));
  for (const round of rounds) {
    let body: Buffer | undefined;
    let etag: string | undefined;
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: round.key }));
      etag = got.ETag;
      body = Buffer.from(await got.Body!.transformToByteArray());
    } catch (err) {
      if (!(err instanceof S3ServiceException && err.name === 'NoSuchKey')) throw err;
    }
    const inListing = listed.has(`${round.key}/${round.uploadId}`);
    if (body !== undefined) {
      t.is(etag, round.etag, `${round.key}: ETag of the completed object`);
      t.true(body.equals(round.body), `${round.key}: bytes of the completed object`);
      t.false(inListing, `${round.key}: a completed upload is not listed`);
      complete++;
    } else {
      t.false(round.acknowledged, `${round.key}: an acknowledged completion survived`);
      t.true(inListing, `${round.key}: an incomplete upload is still listed`);
      const parts = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: round.key, UploadId: round.uploadId }));
      t.deepEqual(parts.Parts?.map((p) => p.Size), [5 * MiB, 5 * MiB, 1024], `${round.key}: all parts are still there`);
    }
  }
  return complete;
}
