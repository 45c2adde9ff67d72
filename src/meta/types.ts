/**
 * Metadata records and commands. Every metadata change is a `MetaCommand`: typed, versioned,
 * serialisable, and stamped by the proposer with its time and ids so that `apply` stays
 * deterministic (STYLE.md rule 4). The single-node host applies commands directly; the Raft host
 * orders them through the log first. Neither changes these types.
 */

/** Checksum algorithms S3 clients send (x-amz-checksum-*). */
export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

/** A stored object's checksum as S3 reports it. */
export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  /** Base64 of the checksum; for COMPOSITE, base64 of the checksum of part checksums plus "-N". */
  value: string;
  type: 'FULL_OBJECT' | 'COMPOSITE';
}

/** One content-addressed chunk of an object's bytes, in order. */
export interface ChunkRef {
  /** sha256 of the chunk's bytes, lowercase hex. */
  id: string;
  sizeBytes: number;
}

/** Where an object's bytes live: inline in the manifest (small objects) or in chunks. */
export type ObjectData = { kind: 'inline'; base64: string } | { kind: 'chunks'; chunks: ChunkRef[] };

/** A bucket as stored. */
export interface BucketRecord {
  name: string;
  createdMs: number;
  region: string;
  owner: string;
}

/** An object version as stored (the manifest). */
export interface ObjectRecord {
  sizeBytes: number;
  /** Unquoted ETag: MD5 hex for single-part objects. */
  etag: string;
  lastModifiedMs: number;
  /** Unique per write, chosen by the proposer; tells two writes of identical bytes apart. */
  writeId: string;
  owner: string;
  contentType: string;
  /** Stored system headers returned on GET/HEAD (content-encoding, cache-control, expires, …). */
  headers: Record<string, string>;
  /** x-amz-meta-* without the prefix, lowercase names. */
  userMeta: Record<string, string>;
  checksum?: StoredChecksum;
  data: ObjectData;
}

/** Preconditions checked at apply time, so conditional writes are linearizable. */
export interface WriteCondition {
  /** If-None-Match: * — fail when the key exists. */
  ifNoneMatchAny?: boolean;
  /** If-Match: the current object's unquoted ETag must equal this. */
  ifMatchEtag?: string;
}

/** The operations a command can carry. */
export type MetaOp =
  | { type: 'CreateBucket'; bucket: BucketRecord }
  | { type: 'DeleteBucket'; bucket: string }
  | { type: 'PutObject'; bucket: string; key: string; object: ObjectRecord; condition?: WriteCondition }
  | { type: 'DeleteObject'; bucket: string; key: string }
  | { type: 'DeleteObjects'; bucket: string; keys: string[] };

/** A command as proposed: the operation plus the proposer's stamp. */
export interface MetaCommand {
  /** Encoding version; apply refuses versions it does not know. */
  v: 1;
  /** Client request id chosen by the proposer; the state machine answers a retried id from memory. */
  requestId: string;
  /** Proposer's clock when it proposed, for logs and pruning; apply never reads a clock. */
  stampMs: number;
  op: MetaOp;
}

/** Outcome of applying one command. Failures are deterministic results, not exceptions. */
export type ApplyResult =
  | { ok: true; value?: ApplyValue }
  | { ok: false; code: string; message: string; meta?: Record<string, unknown> };

/** Result payloads for operations that return something. */
export type ApplyValue =
  | { kind: 'DeleteObjects'; deleted: string[] }
  | { kind: 'PutObject'; replaced?: ObjectRecord }
  | { kind: 'DeleteObject'; removed?: ObjectRecord };

/** A listing query over one bucket; all bounds are keys, never cursors (ARCHITECTURE.md). */
export interface ListQuery {
  prefix: string;
  delimiter: string;
  /** Exclusive lower bound: only keys (and common prefixes) strictly greater are returned. */
  startAfter: string;
  maxKeys: number;
}

/** One page of a listing. */
export interface ListPage {
  objects: { key: string; object: ObjectRecord }[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned; the next page starts after it. */
  lastReturned?: string;
}
