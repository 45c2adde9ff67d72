/**
 * The request id of the S3 request a piece of work belongs to, carried through async calls
 * (AsyncLocalStorage) so that the calls a node makes to its peers on a request's behalf can name
 * it (REQUEST_ID_HEADER), and the peer logs its part of the work under the same id: one grep
 * follows a request across the nodes it touched.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Header carrying the originating request's id on inter-node HTTP calls. */
export const REQUEST_ID_HEADER = 'x-ts3gw-request-id';

const current = new AsyncLocalStorage<string>();

/** Runs `fn` (and everything it awaits or schedules) as part of request `id`. */
export function withRequestId<T>(id: string, fn: () => T): T {
  return current.run(id, fn);
}

/** The id of the request the running code works for, if any. */
export function currentRequestId(): string | undefined {
  return current.getStore();
}

/** True for what a node accepts as a propagated request id (our ids are 16 hex digits; peers' may differ in length). */
export function isRequestId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9A-Za-z_-]{1,64}$/.test(value);
}

/** Headers naming the current request (none outside a request). */
export function requestIdHeaders(): Record<string, string> {
  const id = current.getStore();
  return id === undefined ? {} : { [REQUEST_ID_HEADER]: id };
}
