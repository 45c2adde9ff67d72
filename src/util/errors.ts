/**
 * Operating errors with a stable `code` (abstract-level, fastify): callers branch on `err.code`,
 * never on the message and never on `instanceof` across module boundaries.
 */
export class StoreError extends Error {
  readonly code: string;
  /** Extra facts for logs and for mapping to wire errors (e.g. the bucket name). */
  readonly meta: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, meta: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.meta = meta;
  }
}

/** Returns true when `err` is an Error-like value carrying the given `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** Returns the `code` of an error-like value, or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
