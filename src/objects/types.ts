/**
 * The record types the S3 layer sees, re-exported so that s3/ depends on objects/ only
 * (ARCHITECTURE.md's dependency direction) while meta/ keeps owning their definition.
 */
export type {
  BucketRecord,
  ChecksumAlgorithm,
  ListPage,
  ObjectRecord,
  StoredChecksum,
  WriteCondition,
} from '../meta/types.ts';
