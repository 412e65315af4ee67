/**
 * A timer that an abort signal cuts short, for the server's deliberate
 * pauses (the classic size gap, the delay before an authentication failure,
 * the back-off after a failed accept).
 *
 * @module
 */

/**
 * Waits `ms` milliseconds, or less if `signal` aborts; leaves no timer or
 * listener behind. Never rejects.
 *
 * @param ms How long to wait; zero or less resolves at once.
 * @param signal Aborting it ends the wait early (an aborted one at once).
 * @returns A promise that resolves when the time is up or on abort.
 *
 * @example Wait, unless stopped
 * ```ts
 * import { delay } from "./delay.ts";
 * const controller = new AbortController();
 * const waiting = delay(60_000, controller.signal);
 * controller.abort();
 * await waiting; // resolves at once
 * ```
 */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const id = setTimeout(done, ms);
    function done(): void {
      clearTimeout(id);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
