/**
 * The placing worker: a thread of its own that places runs of eager `PUT`s
 * (`placeRun` in `_server/eager_place.ts`) while the connections' thread
 * receives the next ones. Started by `_server/eager_placer.ts`; every
 * message is a run (its uploads and the transferred buffer of their
 * bytes), answered with the outcomes and the buffer back.
 *
 * @module
 */

import { strictLibc } from "./dir_handle.ts";
import {
  type PackedJobs,
  type PlaceOutcome,
  placeRun,
  TempNames,
  unpackJobs,
} from "./eager_place.ts";

/** A run to place, as the placer posts it. */
interface RunMessage extends PackedJobs {
  id: number;
  root: string;
  buffer: ArrayBuffer;
}

/** The parts of the worker's global scope used here. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<RunMessage>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
const libc = strictLibc();
const names = new TempNames();
/** Runs are placed one after another, in the order they came. */
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (event) => {
  const { id, root, buffer } = event.data;
  const jobs = unpackJobs(event.data);
  queue = queue.then(async () => {
    let outcomes: PlaceOutcome[];
    try {
      if (libc === undefined) throw new Error("libc not loaded");
      outcomes = await placeRun(
        libc,
        root,
        jobs,
        new Uint8Array(buffer),
        names,
      );
    } catch {
      outcomes = jobs.map(() => ({
        code: "INTERNAL",
        message: "Internal server error",
      }));
    }
    // Nothing to say of any (the usual case): no array to copy back.
    const said = outcomes.some((outcome) => !isEmpty(outcome));
    scope.postMessage({ id, outcomes: said ? outcomes : undefined, buffer }, [
      buffer,
    ]);
  });
};
scope.postMessage({ ready: libc !== undefined });

function isEmpty(outcome: PlaceOutcome): boolean {
  return outcome.code === undefined && outcome.placed === undefined;
}
