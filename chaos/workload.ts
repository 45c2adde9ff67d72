/**
 * The chaos workload: S3 clients (@aws-sdk/client-s3, one attempt, short timeouts) that use
 * objects as registers and record every operation with its invocation and completion time.
 *
 *   - registers (keys r/<n>): GET, PUT, conditional PUT (If-Match: the ETag of the value this
 *     client last saw, or If-None-Match: * when it saw none) and DELETE;
 *   - listings (keys l/<n>): PUT, DELETE and LIST of the prefix l/;
 *   - write-once keys (d/<client>-<n>): one PUT each, half of them chunked, read back at the end.
 *
 * Keys rotate: each key takes at most KEY_OPS_MAX operations before a fresh one replaces it, so
 * every key's sub-history stays small for the linearizability search (as Jepsen's independent
 * keys do).
 *
 * Values are unique (`<client>.<n>.<size>`) and an object's body is derived from its value:
 * the value, a newline, then bytes from a hash chain over the value up to `size`. A GET checks the
 * whole body against the value it names, so wrong or torn bytes show up as a value nobody wrote.
 * Some bodies are larger than the nodes' inline limit and so travel as chunks.
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { SeededRandom } from '../src/util/random.ts';
import type { ListOp, OpStatus, RegisterOp } from './checker/register.ts';

/** Operations per key before it is retired. */
export const KEY_OPS_MAX = 40;
/** Register keys in use at a time. */
export const ACTIVE_KEYS = 6;
/** A client gives up on an operation after this long (the outcome is then indeterminate). */
export const OP_TIMEOUT_MS = 2_500;
/** The bucket every run uses. */
export const BUCKET = 'chaos';

/** The body stored for `value` (`<client>.<n>.<size>`). */
export function bodyOf(value: string): Buffer {
  const size = Number(value.split('.').pop());
  const out = Buffer.allocUnsafe(Math.max(size, value.length + 1));
  const head = Buffer.from(`${value}\n`);
  head.copy(out, 0);
  let at = head.length;
  let block = createHash('sha256').update(value).digest();
  while (at < out.length) {
    at += block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** The ETag S3 gives a single-part object with this value's body (its MD5, quoted). */
export function etagOf(value: string): string {
  return `"${createHash('md5').update(bodyOf(value)).digest('hex')}"`;
}

/** What a GET body says: the value it names when the bytes are exactly that value's, else a marker no one wrote. */
export function valueOfBody(body: Uint8Array): string {
  const nl = body.indexOf(10);
  const value = Buffer.from(body.subarray(0, nl < 0 ? Math.min(body.length, 64) : nl)).toString('utf8');
  return nl > 0 && Buffer.from(body).equals(bodyOf(value)) ? value : `corrupt(${value.slice(0, 40)}, ${body.length} bytes)`;
}

/** A pool of keys under one prefix, each retired after KEY_OPS_MAX operations. */
export class KeyPool {
  readonly #prefix: string;
  readonly #active: Array<{ key: string; ops: number }> = [];
  #next = 0;
  /** Every key ever handed out. */
  readonly all: string[] = [];

  constructor(prefix: string, size: number) {
    this.#prefix = prefix;
    for (let i = 0; i < size; i++) this.#active.push({ key: this.#fresh(), ops: 0 });
  }

  /** A key for the next operation. */
  pick(rng: SeededRandom): string {
    const i = rng.intBelow(this.#active.length);
    const slot = this.#active[i]!;
    const key = slot.key;
    if (++slot.ops >= KEY_OPS_MAX) this.#active[i] = { key: this.#fresh(), ops: 0 };
    return key;
  }

  #fresh(): string {
    const key = `${this.#prefix}${String(this.#next++).padStart(4, '0')}`;
    this.all.push(key);
    return key;
  }
}

/** The history a run records. */
export interface History {
  registers: RegisterOp[];
  lists: ListOp[];
  /** Per op: which endpoint (node id, or 0 for the load balancer), for the availability chart. */
  endpointOf: Map<number, number>;
  nextId: number;
}

/** One S3 endpoint a client talks to. */
export interface Endpoint {
  /** Node id, or 0 for the load balancer. */
  id: number;
  url: string;
}

/** Options of a client. */
export interface ClientOptions {
  name: string;
  endpoint: Endpoint;
  accessKey: string;
  secretKey: string;
  rng: SeededRandom;
  history: History;
  registers: KeyPool;
  listKeys: KeyPool;
  /** Run ops until this time (performance.now() ms) or until `budget.left` reaches 0. */
  untilMs: number;
  budget: { left: number };
  /** Pause between two ops of this client, ms (pacing). */
  pauseMs: number;
  /** Time origin of the history (performance.now() at the run's start). */
  origin: number;
}

/** An S3 client with one attempt and short timeouts. */
export function s3Client(url: string, accessKey: string, secretKey: string): S3Client {
  return new S3Client({
    endpoint: url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: OP_TIMEOUT_MS, throwOnRequestTimeout: true },
    // The SDK's default CRC32 request checksums cost CPU on a 2-core machine and test nothing here.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** How an S3 failure counts: definitely not applied ('fail') or unknown ('info'), and a short reason. */
export function classify(err: unknown): { status: OpStatus; reason: string; httpStatus: number | undefined } {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const http = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  // 4xx answers are definite: the request was refused and changed nothing (409 conflicts aside).
  if (http !== undefined && http >= 400 && http < 500 && http !== 409 && http !== 408 && http !== 429) return { status: 'fail', reason: `${http} ${name}`, httpStatus: http };
  if (http !== undefined) return { status: 'info', reason: `${http} ${name}`, httpStatus: http };
  const code = e.code ?? (name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : name);
  // A refused connection carried no request.
  return { status: code === 'ECONNREFUSED' ? 'fail' : 'info', reason: code, httpStatus: undefined };
}

/** Runs one client until its deadline or the shared budget runs out. */
export async function runClient(options: ClientOptions): Promise<void> {
  const { rng, history } = options;
  const client = s3Client(options.endpoint.url, options.accessKey, options.secretKey);
  const seen = new Map<string, string | null>();
  let n = 0;
  const now = () => performance.now() - options.origin;
  const newValue = () => {
    // Mostly small inline objects; one in five is chunked (nodes run with a 4 KiB inline limit).
    const size = rng.chance(0.2) ? 20_000 + rng.intBelow(100_000) : 64 + rng.intBelow(2_000);
    return `${options.name}.${n++}.${size}`;
  };
  try {
    while (performance.now() < options.untilMs && options.budget.left > 0) {
      options.budget.left--;
      const roll = rng.float();
      const refused = roll < 0.75 ? await registerOp(roll) : roll < 0.8 ? await durableOp() : await listOp(roll);
      // A node that refuses connections (killed, restarting) is retried at a gentler pace.
      const pause = refused ? Math.max(100, options.pauseMs) : options.pauseMs;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause * (0.5 + rng.float())));
    }
  } finally {
    client.destroy();
  }

  /** One register op; true when the connection was refused. */
  async function registerOp(roll: number): Promise<boolean> {
    const key = options.registers.pick(rng);
    const f: RegisterOp['f'] = roll < 0.33 ? 'get' : roll < 0.5 ? 'put' : roll < 0.68 ? 'cas' : 'delete';
    const op: RegisterOp = { id: history.nextId++, client: options.name, key, f, value: null, status: 'info', invokeTime: now(), endTime: Number.NaN };
    history.endpointOf.set(op.id, options.endpoint.id);
    const signal = AbortSignal.timeout(OP_TIMEOUT_MS + 500);
    try {
      if (f === 'get') {
        try {
          const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal: signal });
          op.value = valueOfBody(await res.Body!.transformToByteArray());
          if (res.LastModified) op.lastModifiedMs = res.LastModified.getTime();
        } catch (err) {
          if ((err as { name?: string }).name !== 'NoSuchKey') throw err;
          op.value = null;
        }
        seen.set(key, op.value);
      } else if (f === 'put' || f === 'cas') {
        op.value = newValue();
        const conditions: { IfMatch?: string; IfNoneMatch?: string } = {};
        if (f === 'cas') {
          const expect = seen.get(key) ?? null;
          op.expect = expect;
          if (expect === null) conditions.IfNoneMatch = '*';
          else conditions.IfMatch = etagOf(expect);
        }
        await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bodyOf(op.value), ...conditions }), { abortSignal: signal });
        seen.set(key, op.value);
      } else {
        await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal: signal });
        seen.set(key, null);
      }
      op.status = 'ok';
    } catch (err) {
      const c = classify(err);
      op.status = c.status;
      op.error = c.reason;
      // The condition did not hold: 412, or 404 for If-Match on an absent key.
      if (f === 'cas' && (c.httpStatus === 412 || c.httpStatus === 404)) {
        op.status = 'fail';
        op.refused = true;
        seen.delete(key);
      }
    }
    op.endTime = now();
    history.registers.push(op);
    return op.error === 'ECONNREFUSED';
  }

  /**
   * A write-once key (d/<client>-<n>), chunked half the time: never overwritten or deleted, so
   * its bytes must be on R nodes and readable from every node at the end, whatever was killed.
   */
  async function durableOp(): Promise<boolean> {
    const size = rng.chance(0.5) ? 20_000 + rng.intBelow(200_000) : 64 + rng.intBelow(2_000);
    const op: RegisterOp = { id: history.nextId++, client: options.name, key: `d/${options.name}-${n}`, f: 'put', value: `${options.name}.${n++}.${size}`, status: 'info', invokeTime: now(), endTime: Number.NaN };
    history.endpointOf.set(op.id, options.endpoint.id);
    try {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: op.key, Body: bodyOf(op.value!) }), { abortSignal: AbortSignal.timeout(OP_TIMEOUT_MS + 500) });
      op.status = 'ok';
    } catch (err) {
      const c = classify(err);
      op.status = c.status;
      op.error = c.reason;
    }
    op.endTime = now();
    history.registers.push(op);
    return op.error === 'ECONNREFUSED';
  }

  /** One listing op; true when the connection was refused. */
  async function listOp(roll: number): Promise<boolean> {
    if (roll < 0.92) {
      const key = options.listKeys.pick(rng);
      const f: RegisterOp['f'] = roll < 0.88 ? 'put' : 'delete';
      const op: RegisterOp = { id: history.nextId++, client: options.name, key, f, value: null, status: 'info', invokeTime: now(), endTime: Number.NaN };
      history.endpointOf.set(op.id, options.endpoint.id);
      try {
        if (f === 'put') {
          op.value = `${options.name}.${n++}.64`;
          await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bodyOf(op.value) }), { abortSignal: AbortSignal.timeout(OP_TIMEOUT_MS + 500) });
        } else {
          await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal: AbortSignal.timeout(OP_TIMEOUT_MS + 500) });
        }
        op.status = 'ok';
      } catch (err) {
        const c = classify(err);
        op.status = c.status;
        op.error = c.reason;
      }
      op.endTime = now();
      history.registers.push(op);
      return op.error === 'ECONNREFUSED';
    }
    const list = await listPrefix(client, options.name, 'l/', history, options.endpoint.id, now);
    history.lists.push(list);
    return list.status === 'fail';
  }
}

/** One LIST of `prefix` (every page), recorded as a ListOp. */
export async function listPrefix(client: S3Client, name: string, prefix: string, history: History, endpointId: number, now: () => number): Promise<ListOp> {
  const op: ListOp = { id: history.nextId++, client: name, prefix, keys: [], status: 'info', invokeTime: now(), endTime: Number.NaN };
  history.endpointOf.set(op.id, endpointId);
  try {
    let token: string | undefined;
    // Bounded: the listing keyspace holds a few hundred keys at most.
    for (let page = 0; page < 20; page++) {
      const res = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }), {
        abortSignal: AbortSignal.timeout(OP_TIMEOUT_MS + 500),
      });
      for (const o of res.Contents ?? []) if (o.Key !== undefined) op.keys.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
      if (token === undefined) break;
    }
    op.status = 'ok';
  } catch (err) {
    op.status = classify(err).status;
  }
  op.endTime = now();
  return op;
}
