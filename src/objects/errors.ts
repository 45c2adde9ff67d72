/**
 * Error codes the object layer reports. The S3 layer maps each to its AWS error; it never sees
 * consensus or storage codes except through this list.
 */
export {
  META_ERR_ACL_BLOCKS_OWNERSHIP,
  META_ERR_ACL_NOT_SUPPORTED,
  META_ERR_BUCKET_EXISTS,
  META_ERR_BUCKET_NOT_EMPTY,
  META_ERR_BUCKET_OWNED_BY_YOU,
  META_ERR_CONDITIONAL_CONFLICT,
  META_ERR_COPY_SOURCE_CHANGED,
  META_ERR_NO_SUCH_BUCKET,
  META_ERR_ENTITY_TOO_SMALL,
  META_ERR_INVALID_PART,
  META_ERR_INVALID_PART_ORDER,
  META_ERR_NO_SUCH_KEY,
  META_ERR_NO_SUCH_UPLOAD,
  META_ERR_PRECONDITION_FAILED,
  META_ERR_UPLOAD_CHANGED,
} from '../meta/errors.ts';
export { CHUNK_ERR_CORRUPT, CHUNK_ERR_NOT_FOUND } from '../chunks/chunk-store.ts';
export { CONSENSUS_ERR_CLOSED, CONSENSUS_ERR_NO_LEADER, CONSENSUS_ERR_TIMEOUT } from '../consensus/types.ts';

/** The body ended before Content-Length bytes arrived. */
export const OBJ_ERR_INCOMPLETE_BODY = 'OBJ_ERR_INCOMPLETE_BODY';
/** The body is longer than the object size limit. */
export const OBJ_ERR_TOO_LARGE = 'OBJ_ERR_TOO_LARGE';
/** A read condition (If-None-Match / If-Modified-Since) says the client's copy is current. */
export const OBJ_ERR_NOT_MODIFIED = 'OBJ_ERR_NOT_MODIFIED';
/** A range that does not overlap the object. */
export const OBJ_ERR_INVALID_RANGE = 'OBJ_ERR_INVALID_RANGE';
