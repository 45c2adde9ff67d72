/**
 * The request URL as the access log shows it. Presigned URLs carry credentials in their query
 * (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token for SigV4; Signature and
 * AWSAccessKeyId for SigV2): anyone reading the log could replay a signature until it expires,
 * and the README promises no secrets in logs. Their values are replaced; the rest of the URL
 * stays byte for byte, so a log line still names the operation, bucket and key.
 */

/** Query parameters whose values never reach a log (compared case-insensitively). */
const SECRET_PARAMS: ReadonlySet<string> = new Set(['x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'signature', 'awsaccesskeyid']);

export const REDACTED = 'REDACTED';

/** `url` (path and query as received) with the values of credential parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&').map((part) => {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    return SECRET_PARAMS.has(decodedName(rawName).toLowerCase()) ? `${rawName}=${REDACTED}` : part;
  });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/** The parameter name as a query parser would read it (a client may percent-encode it). */
function decodedName(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}
