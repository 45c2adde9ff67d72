/**
 * Assertions for programmer errors and broken invariants. They stay on in production: a node that
 * has broken an invariant must crash rather than write wrong data (TigerBeetle, etcd panics).
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
  readonly code = 'ERR_ASSERTION';
}

/** Throws AssertionError when `cond` is falsy. Narrows `cond` for the type checker. */
export function assert(cond: unknown, message = 'assertion failed'): asserts cond {
  if (!cond) throw new AssertionError(message);
}

/** Marks a branch that the type checker proves unreachable (exhaustive switch over a union). */
export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
