/**
 * Evaluation of HTTP read preconditions for GET/HEAD and of copy-source preconditions, in the
 * order RFC 7232 §6 gives, which is also what S3 does:
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html (If-Match + If-Unmodified-Since,
 * If-None-Match + If-Modified-Since combinations).
 */

/** Read preconditions as sent by the client; dates already parsed to epoch ms. */
export interface ReadConditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSinceMs?: number;
  ifUnmodifiedSinceMs?: number;
}

/** Outcome: proceed, 304 Not Modified, or 412 Precondition Failed. */
export type ConditionOutcome = 'ok' | 'not-modified' | 'precondition-failed';

/** Evaluates conditions against an object's unquoted ETag and last-modified time. */
export function evaluateReadConditions(cond: ReadConditions, etag: string, lastModifiedMs: number): ConditionOutcome {
  // HTTP dates have one-second resolution: compare whole seconds.
  const modifiedSec = Math.floor(lastModifiedMs / 1000);
  if (cond.ifMatch !== undefined) {
    if (!etagListMatches(cond.ifMatch, etag)) return 'precondition-failed';
  } else if (cond.ifUnmodifiedSinceMs !== undefined && modifiedSec > Math.floor(cond.ifUnmodifiedSinceMs / 1000)) {
    return 'precondition-failed';
  }
  if (cond.ifNoneMatch !== undefined) {
    if (etagListMatches(cond.ifNoneMatch, etag)) return 'not-modified';
  } else if (cond.ifModifiedSinceMs !== undefined && modifiedSec <= Math.floor(cond.ifModifiedSinceMs / 1000)) {
    return 'not-modified';
  }
  return 'ok';
}

/** True when a comma-separated If-Match / If-None-Match list names `etag` or is "*". */
export function etagListMatches(list: string, etag: string): boolean {
  for (const raw of list.split(',')) {
    const item = raw.trim().replace(/^W\//, '');
    if (item === '*') return true;
    if (unquote(item) === etag) return true;
  }
  return false;
}

/** Strips one pair of surrounding double quotes. */
export function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}
