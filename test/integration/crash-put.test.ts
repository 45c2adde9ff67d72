/**
 * Goal: an acknowledged PUT survives kill -9, and no PUT is ever visible torn. After a crash and
 * restart on the same data directory, every object whose PUT was answered 200 is listed with
 * intact bytes, and every listed object (acknowledged or not: an ack can be lost in flight) holds
 * the complete content of its key, never a prefix, a mix of chunks, or a wrong size.
 *
 * Method: one data directory, three rounds. In each round several workers PUT a stream of new
 * keys whose content is a deterministic function of the key (AES-CTR keystream seeded by the
 * key's SHA-256), mixing inline objects (≤ 64 KiB, kept in metadata) and multi-chunk objects
 * (5–9 MiB, 4 MiB chunks). Once N PUTs of the round are acknowledged the server gets SIGKILL
 * while the other workers are mid-upload. The server is restarted on the same directory
 * (startServer({dataDir})) and the whole bucket (all rounds so far) is listed and read back:
 * acknowledged ⊆ listed, and listed objects match their key's content byte for byte
 * (SHA-256, size, and ETag = MD5).
 *
 *   round r:  workers ──PUT k1 ✓──PUT k2 ✓──PUT k3 ✗(killed mid-body)
 *             acks reach N ──► kill -9 ──► restart ──► check(all rounds) ──► round r+1
 */
import { createCipheriv, createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { removeDir, startServer, type TestServer } from '../helpers/server.ts';
import { keyPath, RawS3 } from '../helpers/signer.ts';

const test = anyTest as TestFn<{ server?: TestServer; dataDir?: string }>;

const BUCKET = 'crash-put';
const ROUNDS = 3;
const WORKERS = 4;
/** Acknowledged PUTs per round before the kill. */
const ACKS_BEFORE_KILL = [6, 9, 12] as const;
/** Upper bound on PUTs a worker attempts per round, so a round always ends. */
const PUTS_PER_WORKER_MAX = 30;
const INLINE_BYTES_MAX = 64 * 1024;
const MIB = 1024 * 1024;
const LIST_PAGE_KEYS = 1000;

test.after.always(async (t) => {
  await t.context.server?.kill();
  if (t.context.dataDir) await removeDir(t.context.dataDir);
});

/** Size of a key's object: every third key is multi-chunk (5–9 MiB), the rest inline (1 B–64 KiB). */
function sizeOf(key: string, index: number): number {
  const h = createHash('sha256').update(`size:${key}`).digest().readUInt32BE(0);
  return index % 3 === 2 ? 5 * MIB + (h % (4 * MIB + 1)) : 1 + (h % INLINE_BYTES_MAX);
}

/** The deterministic content of a key: an AES-256-CTR keystream keyed by SHA-256(key). */
function contentOf(key: string, size: number): Buffer {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(key).digest(), Buffer.alloc(16));
  return cipher.update(Buffer.alloc(size));
}

/** Keys encode their size so that a listed key's expected content is known without state. */
function keyFor(round: number, worker: number, index: number): { key: string; size: number } {
  const base = `r${round}/w${worker}/${String(index).padStart(3, '0')}`;
  const size = sizeOf(base, index);
  return { key: `${base}-${size}`, size };
}

function expectedOf(key: string): Buffer {
  const size = Number(/-(\d+)$/.exec(key)?.[1]);
  if (!Number.isSafeInteger(size)) throw new Error(`unexpected key ${key}`);
  return contentOf(key.slice(0, key.lastIndexOf('-')), size);
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5Hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** Every key in the bucket with its listed size (ListObjectsV2, all pages). */
async function listAll(raw: RawS3): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  for (;;) {
    const query = `list-type=2&max-keys=${LIST_PAGE_KEYS}${token ? `&continuation-token=${encodeURIComponent(token)}` : ''}`;
    const res = await raw.signed('GET', `/${BUCKET}`, { query });
    if (res.status !== 200) throw new Error(`list: ${res.status} ${res.text}`);
    for (const m of res.text.matchAll(/<Contents><Key>([^<]*)<\/Key>[\s\S]*?<Size>(\d+)<\/Size>/g)) out.set(m[1]!, Number(m[2]));
    token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(res.text)?.[1];
    if (!token) return out;
  }
}

/** Runs one round of concurrent PUTs and kills the server after `acksBeforeKill` acknowledgements. */
async function crashRound(server: TestServer, round: number, acksBeforeKill: number): Promise<{ acked: Set<string>; attempted: Set<string> }> {
  const acked = new Set<string>();
  const attempted = new Set<string>();
  let killed: Promise<void> | undefined;
  const worker = async (w: number) => {
    const raw = new RawS3(server.url);
    try {
      for (let i = 0; i < PUTS_PER_WORKER_MAX && !killed; i++) {
        const { key, size } = keyFor(round, w, i);
        const body = contentOf(key.slice(0, key.lastIndexOf('-')), size);
        attempted.add(key);
        let status: number;
        try {
          status = (await raw.signed('PUT', keyPath(BUCKET, key), { body })).status;
        } catch {
          // The connection died with the server: this PUT is unacknowledged.
          return;
        }
        if (status !== 200) throw new Error(`PUT ${key} answered ${status} before the kill`);
        acked.add(key);
        if (acked.size >= acksBeforeKill && !killed) killed = server.kill();
      }
    } finally {
      await raw.close().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  // Every worker may have run out of keys before the kill (slow disk): kill anyway.
  await (killed ?? server.kill());
  return { acked, attempted };
}

test('acknowledged PUTs survive kill -9 and nothing is ever torn (3 rounds of kill and restart)', async (t) => {
  let server = await startServer();
  t.context.server = server;
  t.context.dataDir = server.dataDir;
  {
    const raw = new RawS3(server.url);
    t.is((await raw.signed('PUT', `/${BUCKET}`)).status, 200);
    await raw.close();
  }
  const ackedAll = new Set<string>();
  const attemptedAll = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    const { acked, attempted } = await crashRound(server, round, ACKS_BEFORE_KILL[round]!);
    t.true(acked.size >= ACKS_BEFORE_KILL[round]!, `round ${round}: ${acked.size} acks before the kill`);
    for (const k of acked) ackedAll.add(k);
    for (const k of attempted) attemptedAll.add(k);

    server = await startServer({ dataDir: server.dataDir });
    t.context.server = server;
    const raw = new RawS3(server.url);
    try {
      const listed = await listAll(raw);
      for (const key of ackedAll) t.true(listed.has(key), `round ${round}: acknowledged ${key} is listed after restart`);
      let unacked = 0;
      for (const [key, size] of listed) {
        const expected = expectedOf(key);
        if (!ackedAll.has(key)) {
          unacked++;
          t.true(attemptedAll.has(key), `round ${round}: unacknowledged ${key} was at least attempted`);
        }
        t.is(size, expected.length, `${key}: listed size`);
        const got = await raw.signed('GET', keyPath(BUCKET, key));
        t.is(got.status, 200, `${key}: GET`);
        t.is(got.body.length, expected.length, `${key}: body length`);
        t.is(sha256Hex(got.body), sha256Hex(expected), `${key}: bytes intact (sha256)`);
        t.is(got.headers['etag'], `"${md5Hex(expected)}"`, `${key}: ETag is the MD5 of the full content`);
      }
      t.log(`round ${round}: ${acked.size} acked, ${attempted.size} attempted, ${listed.size} listed in total (${unacked} never acknowledged)`);
      // Leftover temp chunk files of the killed uploads are swept at start.
      t.deepEqual(await readdir(join(server.dataDir, 'chunks', 'tmp')), [], `round ${round}: chunks/tmp is clean after restart`);
    } finally {
      await raw.close();
    }
  }
  // The node still takes writes after the last restart.
  const raw = new RawS3(server.url);
  const body = Buffer.from('after the crashes');
  t.is((await raw.signed('PUT', keyPath(BUCKET, 'final'), { body })).status, 200);
  t.is((await raw.signed('GET', keyPath(BUCKET, 'final'))).text, body.toString());
  await raw.close();
  await server.stop();
});
