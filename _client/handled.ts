/**
 * {@linkcode handled}: a promise whose rejection nobody may be waiting for.
 *
 * @module
 */

/**
 * Marks a promise's rejection as handled and returns the promise itself.
 * `copyHashed` stops waiting for a write in flight when a read fails; the
 * write's own failure must not then surface as an unhandled rejection.
 *
 * @param promise Any promise.
 * @returns The same promise.
 */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
