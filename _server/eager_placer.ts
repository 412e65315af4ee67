/**
 * Where runs of eager `PUT`s are placed: on one worker thread for the whole
 * server (`_server/eager_worker.ts`), so that a connection's thread
 * receives, checks and hashes the next run while the kernel creates,
 * writes, syncs and renames the files of the last one (about half of the
 * server's time per small file). The worker starts at the first run; until
 * it is ready, and if it cannot start or fails, runs are placed on the
 * calling thread with the same code (`placeRun`).
 *
 * @module
 */

import type { Libc } from "./dir_handle.ts";
import {
  packJobs,
  type PlaceJob,
  type PlaceOutcome,
  placeRun,
  TempNames,
} from "./eager_place.ts";

/** What a placed run gives back: its outcomes and its bytes' buffer. */
export interface PlacedRun {
  /** One outcome per job, in order. */
  outcomes: PlaceOutcome[];
  /** The buffer the run's bytes were in, for the next run. */
  buffer: ArrayBuffer;
}

/** A run posted to the worker and not yet answered. */
interface Posted {
  jobs: readonly PlaceJob[];
  resolve: (placed: PlacedRun) => void;
}

/**
 * Places runs, on the worker once it is ready.
 *
 * @example Place a run (on this thread: no worker is asked for)
 * ```ts
 * import assert from "node:assert/strict";
 * import { strictLibc } from "./dir_handle.ts";
 * import { EagerPlacer } from "./eager_placer.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const root = await Deno.realPath(
 *     await Deno.makeTempDir({ prefix: "ferry_test_" }),
 *   );
 *   const placer = new EagerPlacer(libc, { worker: false });
 *   try {
 *     const bytes = new TextEncoder().encode("hi");
 *     const { outcomes } = await placer.place(root, [{
 *       path: "a.txt", folder: "", name: "a.txt", offset: 0, size: 2,
 *       overwrite: false, identity: false,
 *     }], bytes.buffer);
 *     assert(outcomes[0].code === undefined);
 *   } finally {
 *     placer.close();
 *     await Deno.remove(root, { recursive: true });
 *   }
 * }
 * ```
 */
export class EagerPlacer {
  #libc: Libc;
  #names = new TempNames();
  #useWorker: boolean;
  #worker: Worker | undefined;
  #ready = false;
  #failed = false;
  #posted = new Map<number, Posted>();
  #nextId = 0;
  /** Settles with whether the worker took over (see `ready`). */
  #started: PromiseWithResolvers<boolean> = Promise.withResolvers();

  /**
   * A placer; no worker is started until the first run.
   *
   * @param libc The strict-mode binding (for runs placed on this thread).
   * @param options `worker`: place runs on a worker thread once it is
   * ready (default true).
   */
  constructor(libc: Libc, options: { worker?: boolean } = {}) {
    this.#libc = libc;
    this.#useWorker = options.worker ?? true;
  }

  /** Whether runs now go to the worker. */
  get onWorker(): boolean {
    return this.#ready && !this.#failed;
  }

  /**
   * Starts the worker if it is not started yet.
   *
   * @returns Whether runs go to the worker from now on (false if it is
   * not used, could not start, or failed).
   */
  ready(): Promise<boolean> {
    if (this.#useWorker && this.#worker === undefined) this.#start();
    if (this.#worker === undefined || this.#failed) {
      return Promise.resolve(false);
    }
    return this.#started.promise;
  }

  /**
   * Places a run: on the worker if it is ready (the buffer is transferred
   * there and comes back with the outcomes), else on this thread.
   *
   * @param realRoot The served folder, resolved.
   * @param jobs The run's uploads.
   * @param buffer Their bytes, each at its job's `offset`.
   * @returns The outcomes and the buffer. Never rejects: a failed worker
   * refuses the run's uploads with `INTERNAL`.
   */
  place(
    realRoot: string,
    jobs: readonly PlaceJob[],
    buffer: ArrayBuffer,
  ): Promise<PlacedRun> {
    if (this.#useWorker && this.#worker === undefined) this.#start();
    if (!this.onWorker) return this.#placeHere(realRoot, jobs, buffer);
    const id = this.#nextId++;
    const { paths, numbers } = packJobs(jobs);
    return new Promise((resolve) => {
      this.#posted.set(id, { jobs, resolve });
      this.#worker!.postMessage(
        { id, root: realRoot, paths, numbers, buffer },
        [
          buffer,
          numbers.buffer,
        ],
      );
    });
  }

  /** Stops the worker; runs still on it are refused with `INTERNAL`. */
  close(): void {
    this.#useWorker = false;
    this.#worker?.terminate();
    this.#fail();
  }

  async #placeHere(
    realRoot: string,
    jobs: readonly PlaceJob[],
    buffer: ArrayBuffer,
  ): Promise<PlacedRun> {
    const outcomes = await placeRun(
      this.#libc,
      realRoot,
      jobs,
      new Uint8Array(buffer),
      this.#names,
    );
    return { outcomes, buffer };
  }

  #start(): void {
    let worker: Worker;
    try {
      worker = new Worker(new URL("./eager_worker.ts", import.meta.url), {
        type: "module",
      });
    } catch {
      this.#useWorker = false; // runs stay on this thread
      return;
    }
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent) => {
      const data = event.data as
        | { ready: boolean }
        | { id: number; outcomes?: PlaceOutcome[]; buffer: ArrayBuffer };
      if ("ready" in data) {
        if (data.ready) {
          this.#ready = true;
          this.#started.resolve(true);
        } else this.close();
        return;
      }
      const posted = this.#posted.get(data.id);
      if (posted === undefined) return;
      this.#posted.delete(data.id);
      posted.resolve({
        outcomes: data.outcomes ?? posted.jobs.map(() => ({})),
        buffer: data.buffer,
      });
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.close();
    };
  }

  /** Refuses every run still on the worker; later runs stay here. */
  #fail(): void {
    this.#failed = true;
    this.#started.resolve(false);
    const posted = [...this.#posted.values()];
    this.#posted.clear();
    for (const { jobs, resolve } of posted) {
      resolve({
        outcomes: jobs.map(() => ({
          code: "INTERNAL",
          message: "Internal server error",
        })),
        buffer: new ArrayBuffer(0),
      });
    }
  }
}
