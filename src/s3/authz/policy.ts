/**
 * Bucket policies (issue #18): the JSON subset this server evaluates, parsed when put, and the
 * decision a policy gives one request. What is evaluated: Effect Allow/Deny; Principal "*",
 * {"AWS": …} or {"CanonicalUser": …} naming access key ids (or arn:aws:iam::<id>:root); Action
 * and Resource strings or lists with * and ? wildcards. What is not (Condition, NotPrincipal,
 * NotAction, NotResource) is refused with 501 when put, never accepted and ignored.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-policies.html
 *
 * Decision (as IAM's): an explicit Deny that matches wins over everything; otherwise a matching
 * Allow grants what ACLs may not; otherwise the policy says nothing.
 */
import type { BucketPolicy, PolicyStatement } from '../../objects/types.ts';
import { S3Error } from '../errors.ts';
import type { Requester } from './acl.ts';
import { wildcardMatch } from './wildcard.ts';

export { wildcardMatch };

/** AWS's limit on a bucket policy's size. */
export const POLICY_BYTES_MAX = 20 * 1024;
/** Most statements in one policy (bounds evaluation per request). */
export const POLICY_STATEMENTS_MAX = 100;
/** Most principals, actions or resources in one statement. */
export const POLICY_LIST_ITEMS_MAX = 100;
/** Longest resource pattern (the longest ARN a key can have, with room to spare). */
export const POLICY_RESOURCE_CHARS_MAX = 1024 + 128;
/** Most resource patterns in one policy: each is matched on every request the policy governs. */
export const POLICY_RESOURCES_MAX = 1000;

const NOT_EVALUATED = ['Condition', 'NotPrincipal', 'NotAction', 'NotResource'];
const ARN_PREFIX = 'arn:aws:s3:::';

/** Parses and checks a PutBucketPolicy document for `bucket`; MalformedPolicy when it is not one. */
export function parsePolicy(text: string, bucket: string): BucketPolicy {
  if (Buffer.byteLength(text) > POLICY_BYTES_MAX) throw malformed(`Policies must be at most ${POLICY_BYTES_MAX} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw malformed('This policy contains invalid Json');
  }
  if (!isObject(doc)) throw malformed('This policy contains invalid Json');
  const version = doc['Version'];
  if (version !== undefined && version !== '2012-10-17' && version !== '2008-10-17') throw malformed('Invalid policy version');
  const raw = doc['Statement'];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) throw malformed('Missing required field Statement');
  if (list.length > POLICY_STATEMENTS_MAX) throw malformed(`A policy may hold at most ${POLICY_STATEMENTS_MAX} statements`);
  const statements = list.map((s) => parseStatement(s, bucket));
  const resources = statements.reduce((n, s) => n + s.resources.length, 0);
  if (resources > POLICY_RESOURCES_MAX) throw malformed(`A policy may name at most ${POLICY_RESOURCES_MAX} resources`);
  return { text, statements };
}

function parseStatement(raw: unknown, bucket: string): PolicyStatement {
  if (!isObject(raw)) throw malformed('Statement is not an object');
  for (const name of NOT_EVALUATED) {
    if (raw[name] !== undefined) throw new S3Error('NotImplemented', `Bucket policies with ${name} are not evaluated by this server.`);
  }
  const effect = raw['Effect'];
  if (effect !== 'Allow' && effect !== 'Deny') throw malformed('Invalid effect');
  const actions = strings(raw['Action'], 'Action').map((a) => a.toLowerCase());
  for (const a of actions) if (a !== '*' && !/^s3:[a-z*?]+$/.test(a)) throw malformed(`Policy has an invalid action: ${a}`);
  const resources = strings(raw['Resource'], 'Resource');
  for (const r of resources) {
    if (r.length > POLICY_RESOURCE_CHARS_MAX) throw malformed(`Policy has a resource longer than ${POLICY_RESOURCE_CHARS_MAX} characters`);
    // Every resource must name this bucket (or its objects): AWS's "Policy has invalid resource".
    const rest = r.startsWith(ARN_PREFIX) ? r.slice(ARN_PREFIX.length) : undefined;
    const name = rest?.split('/')[0];
    if (rest === undefined || name === undefined || !wildcardMatch(name, bucket)) throw malformed('Policy has invalid resource');
  }
  return { effect, principals: principals(raw['Principal']), actions, resources };
}

function principals(raw: unknown): string[] {
  if (raw === '*') return ['*'];
  if (!isObject(raw)) throw malformed('Invalid principal in policy');
  const out: string[] = [];
  for (const [kind, value] of Object.entries(raw)) {
    if (kind !== 'AWS' && kind !== 'CanonicalUser') throw new S3Error('NotImplemented', `Principals of type ${kind} are not evaluated by this server.`);
    for (const p of strings(value, 'Principal')) {
      const arn = /^arn:aws:iam::([A-Za-z0-9_-]+):root$/.exec(p);
      const id = p === '*' ? '*' : (arn?.[1] ?? p);
      if (id !== '*' && !/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw malformed('Invalid principal in policy');
      out.push(id);
    }
  }
  if (out.length === 0) throw malformed('Invalid principal in policy');
  return out;
}

function strings(raw: unknown, field: string): string[] {
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || list.length > POLICY_LIST_ITEMS_MAX || !list.every((x) => typeof x === 'string' && x !== '')) {
    throw malformed(`Missing or invalid ${field}`);
  }
  return list as string[];
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function malformed(message: string): S3Error {
  return new S3Error('MalformedPolicy', message);
}

/** What a policy says about one request. */
export type PolicyDecision = 'allow' | 'deny' | 'none';

/**
 * The decision of `policy` for `requester` doing `action` (e.g. s3:GetObject) on `resource`
 * (arn:aws:s3:::bucket or arn:aws:s3:::bucket/key).
 */
export function policyDecision(policy: BucketPolicy | undefined, requester: Requester, action: string, resource: string): PolicyDecision {
  if (!policy) return 'none';
  const act = action.toLowerCase();
  let allowed = false;
  for (const s of policy.statements) {
    if (!s.principals.some((p) => p === '*' || (requester.kind === 'user' && p === requester.id))) continue;
    if (!s.actions.some((a) => wildcardMatch(a, act))) continue;
    if (!s.resources.some((r) => wildcardMatch(r, resource))) continue;
    if (s.effect === 'Deny') return 'deny';
    allowed = true;
  }
  return allowed ? 'allow' : 'none';
}

/** The ARN of a bucket or of one of its objects. */
export function resourceArn(bucket: string, key?: string): string {
  return key === undefined ? `${ARN_PREFIX}${bucket}` : `${ARN_PREFIX}${bucket}/${key}`;
}
