/**
 * Stable error codes of the metadata state machine. Apply returns them as results (they are part
 * of the replicated outcome); read APIs throw them as StoreError.
 */
export const META_ERR_NO_SUCH_BUCKET = 'META_ERR_NO_SUCH_BUCKET';
export const META_ERR_BUCKET_EXISTS = 'META_ERR_BUCKET_EXISTS';
export const META_ERR_BUCKET_OWNED_BY_YOU = 'META_ERR_BUCKET_OWNED_BY_YOU';
export const META_ERR_BUCKET_NOT_EMPTY = 'META_ERR_BUCKET_NOT_EMPTY';
export const META_ERR_PRECONDITION_FAILED = 'META_ERR_PRECONDITION_FAILED';
export const META_ERR_CONDITIONAL_CONFLICT = 'META_ERR_CONDITIONAL_CONFLICT';
export const META_ERR_NO_SUCH_KEY = 'META_ERR_NO_SUCH_KEY';
export const META_ERR_BAD_COMMAND = 'META_ERR_BAD_COMMAND';
export const META_ERR_LOCKED = 'META_ERR_LOCKED';
export const META_ERR_NO_SUCH_UPLOAD = 'META_ERR_NO_SUCH_UPLOAD';
export const META_ERR_INVALID_PART = 'META_ERR_INVALID_PART';
export const META_ERR_INVALID_PART_ORDER = 'META_ERR_INVALID_PART_ORDER';
export const META_ERR_ENTITY_TOO_SMALL = 'META_ERR_ENTITY_TOO_SMALL';
/** A part named by a completion was re-uploaded after the proposer read it; read again and retry. */
export const META_ERR_UPLOAD_CHANGED = 'META_ERR_UPLOAD_CHANGED';
/** A copy's source version was deleted or replaced before the copy was ordered. */
export const META_ERR_COPY_SOURCE_CHANGED = 'META_ERR_COPY_SOURCE_CHANGED';
/** An ACL granting anyone but the bucket owner, on a bucket whose ownership is BucketOwnerEnforced. */
export const META_ERR_ACL_NOT_SUPPORTED = 'META_ERR_ACL_NOT_SUPPORTED';
/** BucketOwnerEnforced asked for a bucket whose ACL grants someone other than its owner. */
export const META_ERR_ACL_BLOCKS_OWNERSHIP = 'META_ERR_ACL_BLOCKS_OWNERSHIP';
