/**
 * A deadline that does not keep the process alive and is cheap to start,
 * for timeouts that matter only while a read or a write is pending (a
 * client's handshake and idle watch).
 *
 * Deno 2.9's `setTimeout` is Node's (it returns a `Timeout` object): the
 * first call in a process loads Node's timers, about 10 ms of start-up, more
 * than `client.ts ls` spends on anything else of its own. This timer waits
 * instead with `Atomics.waitAsync` on a cell of its own, with a timeout: V8
 * settles the wait when the time is up, and cancelling wakes it early. Like
 * a timer passed to `Deno.unrefTimer`, a pending wait does not keep the
 * process alive: the callback runs only while something else (the pending
 * read) does.
 *
 * @module
 */

/**
 * Calls `callback` once `ms` milliseconds have passed, unless cancelled
 * first.
 *
 * @param ms The delay, in milliseconds (0 or more; `Infinity` never fires).
 * @param callback Called once, on time, if not cancelled.
 * @returns A function that cancels the timer (harmless after it fired).
 *
 * @example A timer that fires, and one cancelled in time
 * ```ts
 * import assert from "node:assert/strict";
 * import { startQuietTimer } from "./quiet_timer.ts";
 * const fired: string[] = [];
 * const cancel = startQuietTimer(1, () => fired.push("cancelled"));
 * cancel();
 * // Something pending (here a plain timer) keeps the process alive.
 * const alive = setTimeout(() => {}, 10_000);
 * await new Promise<void>((resolve) =>
 *   startQuietTimer(5, () => {
 *     fired.push("fired");
 *     resolve();
 *   })
 * );
 * clearTimeout(alive);
 * assert.deepEqual(fired, ["fired"]);
 * ```
 */
export function startQuietTimer(ms: number, callback: () => void): () => void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  let cancelled = false;
  const wait = Atomics.waitAsync(cell, 0, 0, Math.max(0, ms));
  const expired = wait.async ? wait.value : Promise.resolve(wait.value);
  expired.then((result) => {
    if (!cancelled && result === "timed-out") callback();
  });
  return () => {
    if (cancelled) return;
    cancelled = true;
    Atomics.notify(cell, 0);
  };
}
