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

/** One tag (object or bucket), in the order the client sent it. */
export interface Tag {
  key: string;
  value: string;
}

/** One CORS rule of a bucket (PutBucketCors), as sent. */
export interface CorsRule {
  id?: string;
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

/**
 * An ACL permission, as S3 names them
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#permissions).
 */
export type AclPermission = 'FULL_CONTROL' | 'READ' | 'WRITE' | 'READ_ACP' | 'WRITE_ACP';

/** S3's predefined groups a grant may name (http://acs.amazonaws.com/groups/…). */
export type AclGroup = 'AllUsers' | 'AuthenticatedUsers' | 'LogDelivery';

/** Who a grant is for: a canonical user (an access key's owner id) or a predefined group. */
export type AclGrantee = { type: 'CanonicalUser'; id: string } | { type: 'Group'; group: AclGroup };

/** One ACL grant. */
export interface AclGrant {
  grantee: AclGrantee;
  permission: AclPermission;
}

/**
 * S3 Object Ownership of a bucket (PutBucketOwnershipControls). BucketOwnerEnforced disables
 * ACLs: the bucket owner owns every object. Absent on a record means no controls, which S3
 * treats as ObjectWriter.
 */
export type ObjectOwnership = 'BucketOwnerEnforced' | 'BucketOwnerPreferred' | 'ObjectWriter';

/** A bucket as stored. */
export interface BucketRecord {
  name: string;
  createdMs: number;
  region: string;
  owner: string;
  /** Bucket tag set; absent when none was put (GetBucketTagging → NoSuchTagSet). */
  tags?: Tag[];
  /** CORS configuration; absent when none was put (NoSuchCORSConfiguration). */
  cors?: CorsRule[];
  /** The bucket's ACL grants, as put; absent means private (the owner's FULL_CONTROL only). */
  acl?: AclGrant[];
  /** Object Ownership controls; absent when none are set (ObjectWriter behaviour). */
  ownership?: ObjectOwnership;
  /** The bucket policy; absent when none was put (NoSuchBucketPolicy). */
  policy?: BucketPolicy;
}

/**
 * A bucket policy: the JSON document as put (GetBucketPolicy returns it verbatim) and its
 * statements as the proposer parsed them, so that no request parses JSON to be authorized.
 */
export interface BucketPolicy {
  text: string;
  statements: PolicyStatement[];
}

/** One statement of a bucket policy, in the subset this server evaluates. */
export interface PolicyStatement {
  effect: 'Allow' | 'Deny';
  /** Canonical user ids (access key ids); '*' is everyone, anonymous requests included. */
  principals: string[];
  /** Action patterns, lower case (s3:getobject, s3:*, *); '*' and '?' are wildcards. */
  actions: string[];
  /** Resource ARN patterns (arn:aws:s3:::bucket/key*); '*' and '?' are wildcards. */
  resources: string[];
}

/**
 * One part of a completed multipart object: its size (the part boundaries, in order) and what
 * GetObjectAttributes reports about it. `partNumber` is the number the client uploaded it under.
 */
export interface ObjectPart {
  partNumber: number;
  sizeBytes: number;
  /** base64 checksum of the part with the object's algorithm, when the object has one. */
  checksum?: string;
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
  /** Object tags (x-amz-tagging, PutObjectTagging); absent or empty when none. */
  tags?: Tag[];
  /** Parts of a multipart object, in object order; absent for single-part objects. */
  parts?: ObjectPart[];
  /**
   * The upload a multipart object completed (set when the completion applies). Its completion
   * record lives as long as this object does: replacing or deleting the object removes it.
   */
  uploadId?: string;
  /** The object's ACL grants; absent means private. A write that replaces the object replaces it. */
  acl?: AclGrant[];
}

/** An in-progress multipart upload (CreateMultipartUpload), keyed by bucket, key and upload id. */
export interface UploadRecord {
  /** Chosen by the proposer; sorts by initiation time, as S3 lists uploads of one key. */
  uploadId: string;
  initiatedMs: number;
  owner: string;
  contentType: string;
  headers: Record<string, string>;
  userMeta: Record<string, string>;
  tags?: Tag[];
  /** x-amz-checksum-algorithm of the upload; every part then carries that checksum. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** x-amz-checksum-type; COMPOSITE when an algorithm was given without a type (AWS's default). */
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  /** The ACL the completed object gets (CreateMultipartUpload's x-amz-acl or grants). */
  acl?: AclGrant[];
}

/** One uploaded part of an in-progress upload. */
export interface PartRecord {
  partNumber: number;
  sizeBytes: number;
  /** Unquoted MD5 hex of the part's bytes. */
  etag: string;
  lastModifiedMs: number;
  /** Unique per UploadPart, chosen by the proposer; tells a re-upload of the same number apart. */
  writeId: string;
  /** base64 checksum of the part with the upload's algorithm (or the client's, if the upload has none). */
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
  /** Always chunks (never inline), so completion can concatenate chunk lists without copying. */
  data: { kind: 'chunks'; chunks: ChunkRef[] };
}

/** A part as CompleteMultipartUpload names it, with the part write the proposer built the object from. */
export interface CompletePart {
  partNumber: number;
  /** Unquoted ETag the client sent. */
  etag: string;
  /** base64 checksum the client sent for the part, if any. */
  checksum?: string;
  /** writeId of the stored part the proposer read; a re-upload in between fails the completion. */
  writeId?: string;
}

/** What a completed upload answered, kept so that a retried identical completion gets it again. */
export interface CompletionRecord {
  /** The part list of the completion (number + ETag), to recognise an identical retry. */
  parts: { partNumber: number; etag: string }[];
  etag: string;
  checksum?: StoredChecksum;
  sizeBytes: number;
  completedMs: number;
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
  | {
      type: 'PutObject';
      bucket: string;
      key: string;
      object: ObjectRecord;
      condition?: WriteCondition;
      /**
       * For a copy: the source version whose chunks the new object reuses. Apply refuses the copy
       * unless that exact version still exists, so in log order the chunks are always referenced
       * (by the source before the copy, by the copy after it) and chunk GC cannot lose them.
       */
      copySource?: { bucket: string; key: string; writeId: string };
    }
  | { type: 'DeleteObject'; bucket: string; key: string }
  | { type: 'DeleteObjects'; bucket: string; keys: string[] }
  | { type: 'CreateMultipartUpload'; bucket: string; key: string; upload: UploadRecord }
  | { type: 'PutPart'; bucket: string; key: string; uploadId: string; part: PartRecord }
  | {
      type: 'CompleteMultipartUpload';
      bucket: string;
      key: string;
      uploadId: string;
      parts: CompletePart[];
      /** Every part but the last must be at least this big (5 MiB in S3); carried so apply stays config-free. */
      partSizeBytesMin: number;
      /** The object the proposer built from the parts it read; apply checks they are still those parts. */
      object: ObjectRecord;
      condition?: WriteCondition;
    }
  | { type: 'AbortMultipartUpload'; bucket: string; key: string; uploadId: string }
  | { type: 'PutObjectTagging'; bucket: string; key: string; tags: Tag[] }
  | { type: 'PutBucketTagging'; bucket: string; tags: Tag[] | null }
  | { type: 'PutBucketCors'; bucket: string; rules: CorsRule[] | null }
  /** Replaces a bucket's ACL; refused while the bucket's ownership is BucketOwnerEnforced, unless owner-only. */
  | { type: 'PutBucketAcl'; bucket: string; acl: AclGrant[] }
  /** Replaces the ACL of an existing object (its bytes, ETag and writeId stay). */
  | { type: 'PutObjectAcl'; bucket: string; key: string; acl: AclGrant[] }
  /** Sets (or with null removes) a bucket's Object Ownership. */
  | { type: 'PutBucketOwnershipControls'; bucket: string; ownership: ObjectOwnership | null }
  /** Replaces (or with null removes) a bucket's policy. */
  | { type: 'PutBucketPolicy'; bucket: string; policy: BucketPolicy | null }
  | { type: 'RegisterNode'; node: NodeRecord }
  | { type: 'DeregisterNode'; nodeId: number }
  | { type: 'SetReplication'; replication: ReplicationSettings }
  /**
   * Hands a joining node its id: max(floor, the stored counter), and the counter moves past it,
   * so two allocations never give the same id whoever proposed them. The proposer sets `floor`
   * above every id it knows of (members, registered nodes). With the joiner's data-directory
   * `incarnation`, the same directory asking again (its answer was lost, or the leader died
   * between the allocation and the learner's addition) gets the id it was given, so a retried
   * join never leaves an orphan learner behind; the last ADMISSIONS_MAX incarnations are kept.
   */
  | { type: 'AllocateNodeId'; floor: number; incarnation?: string }
  /** Starts, advances or ends the decommission of a node (null forgets it). */
  | {
      type: 'SetDecommission';
      nodeId: number;
      record: DecommissionRecord | null;
      /** Applied only if the node's record is in this state (null: none) now: a compare-and-set. */
      expected: DecommissionRecord['state'] | null;
    }
  /** Starts, advances or ends the replacement of a dead node (null forgets it); compare-and-set. */
  | {
      type: 'SetReplacement';
      nodeId: number;
      record: ReplacementRecord | null;
      /** Applied only if the node's record is in this state (null: none) now. */
      expected: ReplacementRecord['state'] | null;
    }
  /** Creates or updates an access key (its secret sealed by the proposer, never in clear). */
  | { type: 'PutAccessKey'; key: AccessKeyRecord }
  | { type: 'DeleteAccessKey'; accessKeyId: string }
  /** Gives a key a permission on one bucket (null takes it away); the key becomes scoped. */
  | { type: 'SetKeyBucketPermission'; accessKeyId: string; bucket: string; permission: KeyBucketPermission | null }
  /** Enables or disables a key, keeping whatever else its record holds when this applies. */
  | { type: 'SetAccessKeyStatus'; accessKeyId: string; status: AccessKeyRecord['status'] };

/**
 * A cluster member as the data path sees it: where to reach it and how much data to give it.
 * Nodes register themselves through the log, so every node builds the same placement ring from
 * the same committed records.
 */
export interface NodeRecord {
  nodeId: number;
  /** Base URL of the node's S3 port (chunks move over its internal endpoint). */
  s3Url: string;
  raftAddress: string;
  /** Relative capacity; a node of weight 2 gets twice the data of a node of weight 1. */
  weight: number;
  /** Failure domain; replicas go to distinct zones first when zones exist. */
  zone?: string;
}

/**
 * A node's decommission, kept in the log so any node (and any leader after a restart) can see
 * and continue it:
 *
 *   draining ── the node left the placement ring; its chunks move to their new owners, and it
 *   │           reports what it still holds after each maintenance pass
 *   drained ─── it holds nothing the ring places elsewhere without a copy there
 *   │           the leader hands over leadership if it is the one, removes it from Raft
 *   removed ─── gone from Raft and the ring; its data directory can be deleted
 */
export interface DecommissionRecord {
  nodeId: number;
  state: 'draining' | 'drained' | 'removed';
  /** Proposer's clock when draining began and when this record last changed. */
  startedMs: number;
  updatedMs: number;
  /** Referenced chunks (and their bytes) the node still holds that now belong elsewhere. */
  remainingChunks?: number;
  remainingBytes?: number;
  /** The largest remainingChunks/Bytes seen: the work as it was measured first. */
  totalChunks?: number;
  totalBytes?: number;
  /**
   * The draining node's ts3gw_rebalance_dropped_{chunks,bytes}_total when it reported: what it
   * dropped since (each drop follows a confirmed move) is progress within the pass under way,
   * which a client reads from the node's maintenance view (ts3ctl decommission --wait).
   */
  droppedChunksAtReport?: number;
  droppedBytesAtReport?: number;
}

/**
 * The replacement of a dead node (its disk lost) by a new process under the same id, kept in the
 * log so any node and any later leader can see and continue it (src/membership/replace.ts):
 *
 *   waiting ── the operator asked (ts3ctl replace N) while N was gone and a quorum answered; the
 *   │          old member is still in Raft until a new node on an empty disk asks to join as N
 *   joined ─── the leader removed the old member and added the new one as a learner; it catches
 *   │          up, the promoter makes it a voter if voters are wanted, repair refills its chunks
 *   done ───── a maintenance pass that began with the new node in the ring has completed there
 */
export interface ReplacementRecord {
  nodeId: number;
  state: 'waiting' | 'joined' | 'done';
  /** Proposer's clock when asked for and when this record last changed. */
  startedMs: number;
  updatedMs: number;
  /** Whether the old member was a voter when the replacement was asked for. */
  wasVoter: boolean;
  /** The new node's data-directory incarnation (joined and done). */
  incarnation?: string;
  /** done: what the new node's first full maintenance pass fetched, and what no peer had. */
  refilledChunks?: number;
  refilledBytes?: number;
  unavailableChunks?: number;
}

/**
 * An access key other than the root key. The secret is sealed (AES-256-GCM with a key derived
 * from the cluster secret) by the node that created it, so neither the log nor a snapshot holds
 * it in clear; SigV4 needs the secret itself, so it cannot be a one-way hash.
 */
export interface AccessKeyRecord {
  accessKeyId: string;
  /** base64 of iv (12 bytes) | tag (16 bytes) | ciphertext. */
  sealedSecret: string;
  createdMs: number;
  status: 'active' | 'disabled';
  /** May use the admin API (cluster operations, key management). */
  admin: boolean;
  description?: string;
  /**
   * Per-bucket permissions (issue #18). Absent: the key is an ordinary canonical user (its own
   * buckets, and what ACLs grant it). Present, even empty: the key is scoped, and may use only the
   * buckets named here, each as far as its permission goes, whatever the ACLs say.
   */
  buckets?: Record<string, KeyBucketPermission>;
}

/** What a scoped key may do in one bucket: read (list, get), write (also put, delete), owner (everything). */
export type KeyBucketPermission = 'read' | 'write' | 'owner';

/** Cluster-wide replication settings, stored in the log. */
export interface ReplicationSettings {
  /** Copies of each chunk (capped at the node count). */
  replicationFactor: number;
  /** Copies that must be durable before a write is acknowledged. */
  writeQuorum: number;
}

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
  | { kind: 'DeleteObject'; removed?: ObjectRecord }
  | { kind: 'CompleteMultipartUpload'; completion: CompletionRecord; replaced?: ObjectRecord; retried: boolean }
  | { kind: 'PutPart'; replaced?: PartRecord }
  | { kind: 'AbortMultipartUpload'; parts: PartRecord[] }
  | { kind: 'AllocateNodeId'; nodeId: number };

/** A listing query over one bucket; all bounds are keys, never cursors (ARCHITECTURE.md). */
export interface ListQuery {
  prefix: string;
  delimiter: string;
  /** Exclusive lower bound: only keys (and common prefixes) strictly greater are returned. */
  startAfter: string;
  maxKeys: number;
}

/** A ListMultipartUploads query; bounds are keys and upload ids, never cursors. */
export interface UploadListQuery {
  prefix: string;
  delimiter: string;
  keyMarker: string;
  /** Only with keyMarker: uploads of keyMarker with a greater id are listed too. */
  uploadIdMarker: string;
  maxUploads: number;
}

/** One page of ListMultipartUploads. */
export interface UploadListPage {
  uploads: { key: string; upload: UploadRecord }[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** Key (or common prefix) and upload id of the last entry returned. */
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
}

/** One page of a listing. */
export interface ListPage {
  objects: { key: string; object: ObjectRecord }[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned; the next page starts after it. */
  lastReturned?: string;
}
