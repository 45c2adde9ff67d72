/**
 * Goal: ObjectService's multipart upload answers every sequence of operations the way AWS would.
 * Method: fast-check generates random programs over a few keys — create, upload part (random
 * sizes, re-uploads of the same number), complete (random subsets, shuffled orders, wrong ETags,
 * retries), abort, list — and runs each against a real ObjectService (LevelMetaStore +
 * LocalConsensus + DiskChunkStore in a temp dir, 5-byte chunks so parts span chunks, and a 6-byte
 * minimum part size instead of 5 MiB) and against a dumb in-memory oracle of S3's rules. Every
 * answer (value or error code) and, at the end, every object's bytes and the upload listing must
 * agree.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';
import { LocalConsensus } from '../../../src/consensus/local-consensus.ts';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import { ObjectService } from '../../../src/objects/object-service.ts';
import type { PartRecord, UploadRecord } from '../../../src/objects/types.ts';
import { multipartEtag } from '../../../src/s3/checksum.ts';
import { errorCode } from '../../../src/util/errors.ts';

const MIN_PART = 6;
const KEYS = ['a', 'b', 'c/d'];
const RUNS = Number(process.env['TS3GW_PROPERTY_RUNS'] ?? 150);
/** Outcomes of completions across all runs, to show the programs reach every rule. */
const outcomes = new Map<string, number>();

type Op =
  | { kind: 'create'; key: number }
  | { kind: 'part'; upload: number; partNumber: number; size: number; seed: number }
  | { kind: 'complete'; upload: number; mask: number; shuffle: boolean; corrupt: boolean; missing: boolean }
  | { kind: 'abort'; upload: number }
  | { kind: 'listParts'; upload: number };

const partArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('part' as const),
  upload: fc.nat(2),
  partNumber: fc.integer({ min: 1, max: 4 }),
  size: fc.integer({ min: 0, max: 14 }),
  seed: fc.nat(255),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('create' as const), key: fc.nat(KEYS.length - 1) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('part' as const),
      upload: fc.nat(2),
      partNumber: fc.integer({ min: 1, max: 4 }),
      size: fc.integer({ min: 0, max: 14 }),
      seed: fc.nat(255),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('complete' as const),
      upload: fc.nat(2),
      // Which uploaded parts to name (bit i = the i-th smallest number), and rarer mistakes.
      mask: fc.integer({ min: 1, max: 15 }),
      shuffle: fc.nat(4).map((n) => n === 0),
      corrupt: fc.nat(4).map((n) => n === 0),
      missing: fc.nat(6).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('abort' as const), upload: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('listParts' as const), upload: fc.nat(2) }) },
);

interface OracleUpload {
  key: string;
  /** 'replaced': completed, then its object was replaced by a later completion (no retry then). */
  state: 'open' | 'completed' | 'aborted' | 'replaced';
  parts: Map<number, Buffer>;
  /** The part list (number, etag) of the completion that succeeded, for retries. */
  completedWith?: string;
  completedEtag?: string;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const bytes = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (seed * 31 + i * 7) & 0xff));

/** What S3 answers for a completion, given the oracle's state. */
function oracleComplete(u: OracleUpload, list: { partNumber: number; etag: string }[]): { code: string } | { etag: string; body: Buffer } {
  const signature = JSON.stringify(list);
  if (u.state === 'completed') return u.completedWith === signature ? { etag: u.completedEtag!, body: Buffer.alloc(0) } : { code: 'META_ERR_NO_SUCH_UPLOAD' };
  // A completion's record lives as long as the object it made: once that object is replaced,
  // a late retry finds no upload, as in S3.
  if (u.state === 'aborted' || u.state === 'replaced') return { code: 'META_ERR_NO_SUCH_UPLOAD' };
  for (let i = 1; i < list.length; i++) if (list[i]!.partNumber <= list[i - 1]!.partNumber) return { code: 'META_ERR_INVALID_PART_ORDER' };
  const chosen: Buffer[] = [];
  for (const p of list) {
    const have = u.parts.get(p.partNumber);
    if (!have || md5(have) !== p.etag) return { code: 'META_ERR_INVALID_PART' };
    chosen.push(have);
  }
  for (let i = 0; i < chosen.length - 1; i++) if (chosen[i]!.length < MIN_PART) return { code: 'META_ERR_ENTITY_TOO_SMALL' };
  return { etag: multipartEtag(chosen.map(md5)), body: Buffer.concat(chosen) };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

async function runProgram(ops: Op[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-mpu-prop-'));
  const meta = await openLevelMetaStore({ location: join(dir, 'meta'), syncWrites: false });
  const chunks = await openDiskChunkStore({ dir: join(dir, 'chunks'), fsync: false });
  const consensus = new LocalConsensus(meta);
  const svc = new ObjectService(
    { chunkSizeBytes: 5, inlineMaxBytes: 4, objectSizeBytesMax: 1 << 20, partSizeBytesMin: MIN_PART },
    { consensus, chunks, clock: { nowMs: () => 1_700_000_000_000 } },
  );
  const fail = (msg: string): never => {
    throw new Error(msg);
  };
  try {
    await svc.createBucket({ name: 'bkt', createdMs: 1, region: 'us-east-1', owner: 'o' });
    const uploads: { id: string; o: OracleUpload }[] = [];
    const objects = new Map<string, { etag: string; body: Buffer }>();
    const code = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
        return 'ok';
      } catch (err) {
        return errorCode(err) ?? fail(`uncoded error ${String(err)}`);
      }
    };
    for (const [step, op] of ops.entries()) {
      const where = `step ${step} ${JSON.stringify(op)}`;
      if (op.kind === 'create') {
        const key = KEYS[op.key]!;
        const u: UploadRecord = await svc.createMultipartUpload({ bucket: 'bkt', key, owner: 'o', contentType: 'x', headers: {}, userMeta: {} });
        uploads.push({ id: u.uploadId, o: { key, state: 'open', parts: new Map() } });
        continue;
      }
      const target = uploads[op.upload];
      if (!target) continue;
      const { id, o } = target;
      switch (op.kind) {
        case 'part': {
          const body = bytes(op.size, op.seed);
          const got = await code(
            svc.uploadPart({
              bucket: 'bkt',
              key: o.key,
              uploadId: id,
              partNumber: op.partNumber,
              body: (async function* () {
                yield body;
              })(),
              declaredSizeBytes: body.length,
              finalize: () => ({ etag: md5(body) }),
            }),
          );
          const want = o.state === 'open' ? 'ok' : 'META_ERR_NO_SUCH_UPLOAD';
          if (got !== want) fail(`${where}: uploadPart ${got}, oracle ${want}`);
          if (o.state === 'open') o.parts.set(op.partNumber, body);
          break;
        }
        case 'complete': {
          const uploaded = [...o.parts.keys()].sort((a, b) => a - b);
          let picked = uploaded.filter((_, i) => (op.mask >> i) & 1);
          if (picked.length === 0) picked = uploaded.slice(0, 1);
          if (op.missing || picked.length === 0) picked.push(5);
          const numbers = op.shuffle ? [...picked].reverse() : picked;
          const list = numbers.map((n, i) => ({
            partNumber: n,
            etag: op.corrupt && i === 0 ? 'ffffffffffffffffffffffffffffffff' : o.parts.has(n) ? md5(o.parts.get(n)!) : md5(Buffer.from(`missing ${n}`)),
          }));
          // A completed upload's parts are gone from the oracle too; a retry names them as before.
          const want = oracleComplete(o, list);
          let got: { code: string } | { etag: string };
          try {
            const done = await svc.completeMultipartUpload({
              bucket: 'bkt',
              key: o.key,
              uploadId: id,
              parts: list,
              summarize: (_u: UploadRecord, parts: readonly PartRecord[]) => ({ etag: multipartEtag(parts.map((p) => p.etag)) }),
            });
            got = { etag: done.etag };
          } catch (err) {
            got = { code: errorCode(err) ?? fail(`uncoded ${String(err)}`) };
          }
          const outcome = 'code' in got ? got.code : o.state === 'completed' ? 'retried' : 'completed';
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          if ('code' in want || 'code' in got) {
            if (JSON.stringify(got) !== JSON.stringify('code' in want ? { code: want.code } : { etag: want.etag })) {
              fail(`${where}: complete ${JSON.stringify(got)}, oracle ${JSON.stringify(want)}`);
            }
            break;
          }
          if (got.etag !== want.etag) fail(`${where}: etag ${got.etag} vs ${want.etag}`);
          if (o.state === 'open') {
            for (const other of uploads) if (other.o !== o && other.o.key === o.key && other.o.state === 'completed') other.o.state = 'replaced';
            o.state = 'completed';
            o.completedWith = JSON.stringify(list);
            o.completedEtag = want.etag;
            objects.set(o.key, { etag: want.etag, body: want.body });
          }
          break;
        }
        case 'abort': {
          const got = await code(svc.abortMultipartUpload('bkt', o.key, id));
          const want = o.state === 'open' ? 'ok' : 'META_ERR_NO_SUCH_UPLOAD';
          if (got !== want) fail(`${where}: abort ${got}, oracle ${want}`);
          if (o.state === 'open') o.state = 'aborted';
          break;
        }
        case 'listParts': {
          if (o.state !== 'open') {
            const got = await code(svc.listParts('bkt', o.key, id, 0, 1000));
            if (got !== 'META_ERR_NO_SUCH_UPLOAD') fail(`${where}: listParts after ${o.state} gave ${got}`);
            break;
          }
          const page = await svc.listParts('bkt', o.key, id, 0, 1000);
          const want = [...o.parts.entries()].sort((a, b) => a[0] - b[0]).map(([n, b]) => [n, md5(b), b.length]);
          const got = page.parts.map((p) => [p.partNumber, p.etag, p.sizeBytes]);
          if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${where}: listParts ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
          break;
        }
      }
    }
    // Final state: objects byte-exact, and exactly the open uploads listed, in S3's order.
    for (const [key, want] of objects) {
      const object = await svc.getObject('bkt', key);
      if (object.etag !== want.etag) fail(`object ${key}: etag ${object.etag} vs ${want.etag}`);
      const body = object.sizeBytes === 0 ? Buffer.alloc(0) : await collect(svc.readObject(object, 0, object.sizeBytes - 1));
      if (!body.equals(want.body)) fail(`object ${key}: bytes differ`);
    }
    const listed = await svc.listUploads('bkt', { prefix: '', delimiter: '', keyMarker: '', uploadIdMarker: '', maxUploads: 1000 });
    const open = uploads
      .filter((u) => u.o.state === 'open')
      .map((u) => [u.o.key, u.id])
      .sort((a, b) => Buffer.compare(Buffer.from(`${a[0]}\0${a[1]}`), Buffer.from(`${b[0]}\0${b[1]}`)));
    const got = listed.uploads.map((u) => [u.key, u.upload.uploadId]);
    if (JSON.stringify(got) !== JSON.stringify(open)) fail(`uploads ${JSON.stringify(got)} vs ${JSON.stringify(open)}`);
  } finally {
    await consensus.close();
    await chunks.close();
    await meta.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('multipart upload agrees with an oracle of S3 rules over random programs', async (t) => {
  // Each program starts with uploads to refer to; the ops index into them.
  const program = fc
    .tuple(
      fc.array(fc.record({ kind: fc.constant('create' as const), key: fc.nat(KEYS.length - 1) }), { minLength: 1, maxLength: 3 }),
      fc.array(partArb, { minLength: 2, maxLength: 12 }),
      fc.array(opArb, { maxLength: 50 }),
    )
    .map(([creates, parts, rest]) => [...creates, ...parts, ...rest] as Op[]);
  await fc.assert(
    fc.asyncProperty(program, async (ops) => {
      await runProgram(ops);
    }),
    { numRuns: RUNS, ...(process.env['TS3GW_PROPERTY_SEED'] ? { seed: Number(process.env['TS3GW_PROPERTY_SEED']) } : {}) },
  );
  t.log(`${RUNS} random programs agreed with the oracle; completions: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  for (const rule of ['completed', 'META_ERR_INVALID_PART', 'META_ERR_INVALID_PART_ORDER', 'META_ERR_ENTITY_TOO_SMALL', 'META_ERR_NO_SUCH_UPLOAD']) {
    t.true((outcomes.get(rule) ?? 0) > 0, `the programs reached ${rule}`);
  }
});
