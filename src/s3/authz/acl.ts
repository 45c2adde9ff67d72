/**
 * S3 access control lists on the wire: canned ACLs (x-amz-acl), grant headers
 * (x-amz-grant-read: id="…", uri="…"), the AccessControlPolicy XML of Get/PutBucketAcl and
 * Get/PutObjectAcl, and what a stored ACL grants. Pure functions; the request flow is in access.ts.
 *
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectAcl.html
 */
import type { AclGrant, AclGrantee, AclGroup, AclPermission } from '../../objects/types.ts';
import { S3Error } from '../errors.ts';
import { children, childText, type XmlNode } from '../xml.ts';

/** The URI S3 names each predefined group by. */
export const GROUP_URIS: Record<AclGroup, string> = {
  AllUsers: 'http://acs.amazonaws.com/groups/global/AllUsers',
  AuthenticatedUsers: 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers',
  LogDelivery: 'http://acs.amazonaws.com/groups/s3/LogDelivery',
};

const PERMISSIONS: readonly AclPermission[] = ['FULL_CONTROL', 'READ', 'WRITE', 'READ_ACP', 'WRITE_ACP'];

/** Most grants in one ACL (AWS's limit is 100). */
export const ACL_GRANTS_MAX = 100;

/** The canned ACLs S3 defines; aws-exec-read names an AWS service and is not offered here. */
export const CANNED_ACLS = [
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
  'log-delivery-write',
] as const;
export type CannedAcl = (typeof CANNED_ACLS)[number];

/** Grant headers and the permission each grants. */
export const GRANT_HEADERS: Record<string, AclPermission> = {
  'x-amz-grant-read': 'READ',
  'x-amz-grant-write': 'WRITE',
  'x-amz-grant-read-acp': 'READ_ACP',
  'x-amz-grant-write-acp': 'WRITE_ACP',
  'x-amz-grant-full-control': 'FULL_CONTROL',
};

/** Canonical user ids are access key ids here (see ts3ctl keys). */
const CANONICAL_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** The private ACL: the owner's FULL_CONTROL. */
export function privateAcl(owner: string): AclGrant[] {
  return [{ grantee: { type: 'CanonicalUser', id: owner }, permission: 'FULL_CONTROL' }];
}

/**
 * The grants of a canned ACL for a resource owned by `owner` in a bucket owned by
 * `bucketOwner` (bucket-owner-* name the bucket's owner; for a bucket both are the same).
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#canned-acl
 */
export function cannedAcl(name: CannedAcl, owner: string, bucketOwner: string): AclGrant[] {
  const grants = privateAcl(owner);
  const group = (g: AclGroup, permission: AclPermission): AclGrant => ({ grantee: { type: 'Group', group: g }, permission });
  const user = (id: string, permission: AclPermission): AclGrant[] => (id === owner ? [] : [{ grantee: { type: 'CanonicalUser', id }, permission }]);
  switch (name) {
    case 'private':
      return grants;
    case 'public-read':
      return [...grants, group('AllUsers', 'READ')];
    case 'public-read-write':
      return [...grants, group('AllUsers', 'READ'), group('AllUsers', 'WRITE')];
    case 'authenticated-read':
      return [...grants, group('AuthenticatedUsers', 'READ')];
    case 'bucket-owner-read':
      return [...grants, ...user(bucketOwner, 'READ')];
    case 'bucket-owner-full-control':
      return [...grants, ...user(bucketOwner, 'FULL_CONTROL')];
    case 'log-delivery-write':
      return [...grants, group('LogDelivery', 'WRITE'), group('LogDelivery', 'READ_ACP')];
  }
}

/** An x-amz-acl value, checked; InvalidArgument for names S3 does not know. */
export function parseCannedAcl(value: string): CannedAcl {
  if ((CANNED_ACLS as readonly string[]).includes(value)) return value as CannedAcl;
  if (value === 'aws-exec-read') throw new S3Error('NotImplemented', 'The aws-exec-read canned ACL is not implemented by this server.');
  throw new S3Error('InvalidArgument', undefined, { ArgumentName: 'x-amz-acl', ArgumentValue: value });
}

/** What a request says about the ACL of the resource it writes. */
export type AclRequest = { kind: 'none' } | { kind: 'canned'; name: CannedAcl } | { kind: 'grants'; grants: AclGrant[] };

/**
 * Reads x-amz-acl and the x-amz-grant-* headers. Both kinds together are refused, as S3 does
 * ("Specifying both Canned ACLs and Header Grants is not allowed").
 */
export function aclFromHeaders(headers: Record<string, string | string[] | undefined>): AclRequest {
  const first = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const canned = first('x-amz-acl');
  const grants: AclGrant[] = [];
  let anyGrantHeader = false;
  for (const [name, permission] of Object.entries(GRANT_HEADERS)) {
    const value = first(name);
    if (value === undefined) continue;
    anyGrantHeader = true;
    for (const grantee of parseGrantees(value, name)) grants.push({ grantee, permission });
  }
  if (canned !== undefined && anyGrantHeader) throw new S3Error('InvalidRequest', 'Specifying both Canned ACLs and Header Grants is not allowed');
  if (canned !== undefined) return { kind: 'canned', name: parseCannedAcl(canned.trim()) };
  if (anyGrantHeader) {
    if (grants.length > ACL_GRANTS_MAX) throw new S3Error('InvalidArgument', `An ACL may hold at most ${ACL_GRANTS_MAX} grants.`);
    return { kind: 'grants', grants };
  }
  return { kind: 'none' };
}

/**
 * Parses a grant header's list: `id="…"`, `uri="…"` or `emailAddress="…"`, comma separated
 * (quotes optional). Email grantees need an account directory this server does not have.
 */
function parseGrantees(value: string, headerName: string): AclGrantee[] {
  const out: AclGrantee[] = [];
  const item = /\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))\s*(?:,|$)/y;
  let at = 0;
  while (at < value.length) {
    item.lastIndex = at;
    const m = item.exec(value);
    if (!m || m[0] === '') throw new S3Error('InvalidArgument', `Invalid grant in ${headerName}.`, { ArgumentName: headerName, ArgumentValue: value });
    at = item.lastIndex;
    const type = m[1]!.toLowerCase();
    const target = m[2] ?? m[3] ?? '';
    if (type === 'id') out.push(canonicalUser(target));
    else if (type === 'uri') out.push(groupOf(target, () => new S3Error('InvalidArgument', 'Invalid group uri', { ArgumentName: headerName, ArgumentValue: target })));
    else if (type === 'emailaddress') throw unresolvableEmail(target);
    else throw new S3Error('InvalidArgument', `Invalid grantee type ${m[1]} in ${headerName}.`, { ArgumentName: headerName, ArgumentValue: value });
  }
  if (out.length === 0) throw new S3Error('InvalidArgument', `Invalid grant in ${headerName}.`, { ArgumentName: headerName, ArgumentValue: value });
  return out;
}

function canonicalUser(id: string): AclGrantee {
  if (!CANONICAL_ID_RE.test(id)) throw new S3Error('InvalidArgument', 'Invalid id', { ArgumentName: 'CanonicalUser/ID', ArgumentValue: id });
  return { type: 'CanonicalUser', id };
}

function groupOf(uri: string, onUnknown: () => S3Error): AclGrantee {
  for (const [group, known] of Object.entries(GROUP_URIS)) if (uri === known) return { type: 'Group', group: group as AclGroup };
  throw onUnknown();
}

function unresolvableEmail(email: string): S3Error {
  return new S3Error('UnresolvableGrantByEmailAddress', undefined, { EmailAddressProvided: email });
}

/**
 * Parses a PutBucketAcl/PutObjectAcl body. The Owner must be the resource's owner (S3 refuses
 * to change ownership through an ACL); grantee types follow from the element each grantee holds
 * (ID, URI or EmailAddress), since the parser does not keep xsi:type attributes.
 */
export function parseAccessControlPolicy(doc: Record<string, unknown>, owner: string): AclGrant[] {
  const ownerNode = doc['Owner'];
  if (typeof ownerNode !== 'object' || ownerNode === null) throw new S3Error('MalformedACLError');
  const ownerId = childText(ownerNode as Record<string, unknown>, 'ID');
  if (ownerId === undefined) throw new S3Error('MalformedACLError');
  if (ownerId !== owner) throw new S3Error('AccessDenied', 'The owner of an ACL cannot be changed.');
  const list = doc['AccessControlList'];
  if (list === undefined || list === '') return [];
  if (typeof list !== 'object' || list === null) throw new S3Error('MalformedACLError');
  const entries = children(list as Record<string, unknown>, 'Grant');
  if (entries.length > ACL_GRANTS_MAX) throw new S3Error('MalformedACLError', `An ACL may hold at most ${ACL_GRANTS_MAX} grants.`);
  return entries.map((entry) => {
    if (typeof entry !== 'object' || entry === null) throw new S3Error('MalformedACLError');
    const grant = entry as Record<string, unknown>;
    const permission = childText(grant, 'Permission');
    if (permission === undefined || !(PERMISSIONS as readonly string[]).includes(permission)) throw new S3Error('MalformedACLError');
    const grantee = grant['Grantee'];
    if (typeof grantee !== 'object' || grantee === null) throw new S3Error('MalformedACLError');
    const g = grantee as Record<string, unknown>;
    const id = childText(g, 'ID');
    const uri = childText(g, 'URI');
    const email = childText(g, 'EmailAddress');
    if ([id, uri, email].filter((x) => x !== undefined).length !== 1) throw new S3Error('MalformedACLError');
    if (email !== undefined) throw unresolvableEmail(email);
    const parsed = id !== undefined ? canonicalUser(id.trim()) : groupOf(uri!.trim(), () => new S3Error('MalformedACLError'));
    return { grantee: parsed, permission: permission as AclPermission };
  });
}

const XSI = 'http://www.w3.org/2001/XMLSchema-instance';

/** The AccessControlPolicy body of GetBucketAcl/GetObjectAcl, as AWS writes it. */
export function renderAccessControlPolicy(owner: string, grants: readonly AclGrant[]): XmlNode {
  return {
    Owner: { ID: owner, DisplayName: owner },
    AccessControlList: {
      Grant: grants.map((g) => ({
        Grantee:
          g.grantee.type === 'CanonicalUser'
            ? { '@_xmlns:xsi': XSI, '@_xsi:type': 'CanonicalUser', ID: g.grantee.id, DisplayName: g.grantee.id }
            : { '@_xmlns:xsi': XSI, '@_xsi:type': 'Group', URI: GROUP_URIS[g.grantee.group] },
        Permission: g.permission,
      })),
    },
  };
}

/** Who asks: nobody (an unsigned request) or the canonical user of a verified access key. */
export type Requester = { kind: 'anonymous' } | { kind: 'user'; id: string };

/**
 * True when the ACL of a resource owned by `owner` gives `requester` the permission. The owner
 * holds FULL_CONTROL whatever the grants say, so no ACL can lock its owner out (S3 lets the
 * owner always read and write the ACL; this server goes one step further, and says so).
 */
export function aclAllows(owner: string, acl: readonly AclGrant[] | undefined, requester: Requester, permission: AclPermission): boolean {
  if (requester.kind === 'user' && requester.id === owner) return true;
  for (const grant of acl ?? []) {
    if (grant.permission !== permission && grant.permission !== 'FULL_CONTROL') continue;
    const g = grant.grantee;
    if (g.type === 'Group' && g.group === 'AllUsers') return true;
    if (requester.kind !== 'user') continue;
    if (g.type === 'Group' && g.group === 'AuthenticatedUsers') return true;
    if (g.type === 'CanonicalUser' && g.id === requester.id) return true;
  }
  return false;
}

/** True when the grants name nobody but `owner` (what BucketOwnerEnforced allows). */
export function grantsOnlyTo(acl: readonly AclGrant[], owner: string): boolean {
  return acl.every((g) => g.grantee.type === 'CanonicalUser' && g.grantee.id === owner);
}
