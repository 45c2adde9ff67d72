/**
 * The record types the S3 layer sees, re-exported so that s3/ depends on objects/ only
 * (ARCHITECTURE.md's dependency direction) while meta/ keeps owning their definition.
 */
export type {
  AclGrant,
  AclGrantee,
  AclGroup,
  AclPermission,
  BucketPolicy,
  BucketRecord,
  KeyBucketPermission,
  ChecksumAlgorithm,
  CompletePart,
  CompletionRecord,
  CorsRule,
  ListPage,
  ObjectOwnership,
  PolicyStatement,
  ObjectPart,
  ObjectRecord,
  PartRecord,
  StoredChecksum,
  Tag,
  UploadListPage,
  UploadListQuery,
  UploadRecord,
  WriteCondition,
} from '../meta/types.ts';
export { PART_NUMBER_MAX } from '../meta/keys.ts';
