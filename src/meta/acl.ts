/**
 * ACL facts the state machine needs to keep Object Ownership's rule in log order: with
 * BucketOwnerEnforced, ACLs are disabled, so an ACL may name nobody but the bucket owner
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-ownership-error-responses.html).
 */
import type { AclGrant } from './types.ts';

/**
 * True when every grant is to the canonical user `owner` (an absent ACL is the private default,
 * the owner's FULL_CONTROL): such an ACL grants nothing the owner does not already have.
 */
export function grantsOnlyTo(acl: readonly AclGrant[] | undefined, owner: string): boolean {
  return (acl ?? []).every((g) => g.grantee.type === 'CanonicalUser' && g.grantee.id === owner);
}
