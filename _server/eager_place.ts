/**
 * The file system half of a run of eager `PUT`s (`_server/eager_put.ts`):
 * given the checked uploads of a run and their bytes in one buffer, makes
 * each one's temporary, syncs them and moves them into place.
 *
 * Each upload goes into a fresh temporary made with
 * `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` in its folder, walked from the
 * root with `O_NOFOLLOW` once per run and held open for the run; the bytes
 * are written and its time set through the new descriptor. Nothing is
 * named twice and nothing is proven after the fact: the kernel holds the
 * descriptors, so a folder swapped for a link cannot redirect any of it.
 * Then one `syncfs` per file system puts every temporary of the run on
 * disk, and each is moved into place (`renameat2(RENAME_NOREPLACE)`, or
 * `renameat` to overwrite): a file appears whole or not at all.
 *
 * @module
 */

import {
  AT_SYMLINK_NOFOLLOW,
  type EntryStatus,
  walkError,
} from "./dir_handle.ts";
import type { Libc } from "./dir_handle.ts";
import { tempNameOf } from "./temp.ts";
import { toHex } from "../_common/bytes.ts";
import { printable } from "../_common/wire_path.ts";
import { FerryError, type FerryErrorCode } from "../errors.ts";

/**
 * One upload of a run, checked by the connection's loop (path, limits,
 * digest).
 *
 * @example An upload of 3 bytes at the start of the run's buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PlaceJob } from "./eager_place.ts";
 * const job: PlaceJob = {
 *   path: "docs/a.txt", folder: "docs", name: "a.txt",
 *   offset: 0, size: 3, overwrite: false, identity: false,
 * };
 * assert(job.size === 3);
 * ```
 */
export interface PlaceJob {
  /** The request's wire path, checked by `splitWirePath`. */
  path: string;
  /** Its folder's wire path (`""`: the root). */
  folder: string;
  /** Its name in that folder. */
  name: string;
  /** Where its bytes start in the run's buffer. */
  offset: number;
  /** How many bytes. */
  size: number;
  /** Modification time to set, milliseconds. */
  mtime?: number;
  /** Replace an existing regular file. */
  overwrite: boolean;
  /** Report the placed file's status (its digest may be cached). */
  identity: boolean;
}

/**
 * What became of one {@linkcode PlaceJob}: placed (no `code`), or refused.
 *
 * @example A refusal
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PlaceOutcome } from "./eager_place.ts";
 * const outcome: PlaceOutcome = { code: "EXISTS", message: "Already exists: a" };
 * assert(outcome.code === "EXISTS");
 * ```
 */
export interface PlaceOutcome {
  /** The refusal's code, if refused. */
  code?: FerryErrorCode;
  /** The refusal's message, safe to send. */
  message?: string;
  /** The placed file's status, when asked for and still ours. */
  placed?: EntryStatus;
}

/**
 * Fresh names for temporaries: `.ferry-<random><count>.part`, a new
 * random series whenever a name is found taken.
 *
 * @example Two names differ
 * ```ts
 * import assert from "node:assert/strict";
 * import { TempNames } from "./eager_place.ts";
 * const names = new TempNames();
 * assert(names.next() !== names.next());
 * ```
 */
export class TempNames {
  #base = randomBase();
  #count = 0;

  /**
   * The next name.
   *
   * @returns A name of the `.ferry-<hex>.part` form.
   */
  next(): string {
    return tempNameOf(`${this.#base}${(this.#count++).toString(16)}`);
  }

  /** Starts a fresh random series (someone guessed the next name). */
  renew(): void {
    this.#base = randomBase();
  }
}

/** A folder of the run, walked from the root and held open. */
interface Folder {
  fd: number;
  dev: number;
}

/**
 * Places a run: creates, writes and dates each upload's temporary, syncs
 * them (one `syncfs` per file system) and moves each into place, in order.
 * Never throws for an upload: its outcome says why it was refused (a
 * temporary left behind by a failure is removed).
 *
 * @param libc The strict-mode binding.
 * @param realRoot The served folder, resolved.
 * @param jobs The run's uploads.
 * @param bytes Their bytes, each at its `offset`.
 * @param names Where temporaries' names come from.
 * @returns One outcome per job, in order.
 *
 * @example Place one file
 * ```ts
 * import assert from "node:assert/strict";
 * import { strictLibc } from "./dir_handle.ts";
 * import { placeRun, TempNames } from "./eager_place.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const root = await Deno.realPath(
 *     await Deno.makeTempDir({ prefix: "ferry_test_" }),
 *   );
 *   try {
 *     const [outcome] = await placeRun(libc, root, [{
 *       path: "a.txt", folder: "", name: "a.txt", offset: 0, size: 2,
 *       overwrite: false, identity: false,
 *     }], new TextEncoder().encode("hi"), new TempNames());
 *     assert(outcome.code === undefined);
 *     assert((await Deno.readTextFile(`${root}/a.txt`)) === "hi");
 *   } finally {
 *     await Deno.remove(root, { recursive: true });
 *   }
 * }
 * ```
 */
export async function placeRun(
  libc: Libc,
  realRoot: string,
  jobs: readonly PlaceJob[],
  bytes: Uint8Array,
  names: TempNames,
): Promise<PlaceOutcome[]> {
  const run = new RunFiles(libc, realRoot, names);
  try {
    return await run.place(jobs, bytes);
  } finally {
    run.close();
  }
}

/** The folders and temporaries of one run being placed. */
class RunFiles {
  #libc: Libc;
  #realRoot: string;
  #names: TempNames;
  #root: number | undefined;
  #folders = new Map<string, Folder>();

  constructor(libc: Libc, realRoot: string, names: TempNames) {
    this.#libc = libc;
    this.#realRoot = realRoot;
    this.#names = names;
  }

  async place(
    jobs: readonly PlaceJob[],
    bytes: Uint8Array,
  ): Promise<PlaceOutcome[]> {
    const outcomes: PlaceOutcome[] = [];
    const temps:
      ({ folder: Folder; temp: string; ours?: EntryStatus } | undefined)[] = [];
    for (const job of jobs) {
      try {
        temps.push(this.#write(job, bytes));
        outcomes.push({});
      } catch (error) {
        temps.push(undefined);
        outcomes.push(refusal(error, job.path));
      }
    }
    await this.#sync(temps, outcomes);
    for (let i = 0; i < jobs.length; i++) {
      const temp = temps[i];
      if (temp === undefined || outcomes[i].code !== undefined) continue;
      outcomes[i] = this.#move(jobs[i], temp);
    }
    return outcomes;
  }

  close(): void {
    for (const folder of this.#folders.values()) this.#libc.close(folder.fd);
    this.#folders.clear();
    if (this.#root !== undefined) this.#libc.close(this.#root);
    this.#root = undefined;
  }

  /** Makes the job's temporary with its bytes and time. */
  #write(
    job: PlaceJob,
    bytes: Uint8Array,
  ): { folder: Folder; temp: string; ours?: EntryStatus } {
    const libc = this.#libc;
    const folder = this.#folder(job.folder, job.path);
    // Without overwrite, renameat2(RENAME_NOREPLACE) refuses any name
    // taken (EXISTS), atomically: no lookup before. To overwrite, only a
    // regular file may be replaced.
    const existing = job.overwrite
      ? libc.statAtIfAny(folder.fd, job.name, AT_SYMLINK_NOFOLLOW)
      : undefined;
    if (existing?.isSymlink) {
      throw new FerryError(
        "FORBIDDEN",
        `Target is a symbolic link: ${printable(job.path)}`,
      );
    }
    if (existing && !existing.isFile) {
      throw new FerryError(
        "FORBIDDEN",
        `Target is not a file: ${printable(job.path)}`,
      );
    }
    let temp = this.#names.next();
    let fd: number;
    try {
      try {
        fd = libc.createAt(folder.fd, temp);
      } catch (error) {
        // Someone guessed the next name: start a fresh random series.
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        this.#names.renew();
        temp = this.#names.next();
        fd = libc.createAt(folder.fd, temp);
      }
    } catch (error) {
      throw new FerryError(
        "INTERNAL",
        `Cannot create the upload's temporary file: ${printable(job.path)}`,
        { cause: error },
      );
    }
    try {
      libc.writeAll(
        fd,
        bytes.subarray(job.offset, job.offset + job.size) as Uint8Array<
          ArrayBuffer
        >,
      );
      if (job.mtime !== undefined) libc.setMtime(fd, job.mtime);
      const ours = job.identity
        ? libc.statAt(folder.fd, temp, AT_SYMLINK_NOFOLLOW)
        : undefined;
      return { folder, temp, ours };
    } catch (error) {
      this.#remove(folder, temp);
      throw writeFailed(error);
    } finally {
      libc.close(fd);
    }
  }

  /** One `syncfs` per file system of the run's temporaries. */
  async #sync(
    temps: ({ folder: Folder; temp: string } | undefined)[],
    outcomes: PlaceOutcome[],
  ): Promise<void> {
    const done = new Set<number>();
    for (const entry of temps) {
      if (entry === undefined || done.has(entry.folder.dev)) continue;
      const dev = entry.folder.dev;
      done.add(dev);
      try {
        await this.#libc.syncFileSystem(entry.folder.fd);
      } catch (error) {
        for (let i = 0; i < temps.length; i++) {
          const other = temps[i];
          if (other?.folder.dev === dev && outcomes[i].code === undefined) {
            outcomes[i] = wire(writeFailed(error));
            this.#remove(other.folder, other.temp);
          }
        }
      }
    }
  }

  /** Moves a synced temporary to its name. */
  #move(
    job: PlaceJob,
    entry: { folder: Folder; temp: string; ours?: EntryStatus },
  ): PlaceOutcome {
    const libc = this.#libc;
    const fd = entry.folder.fd;
    try {
      if (job.overwrite) libc.renameAt(fd, entry.temp, fd, job.name);
      else libc.renameNoReplaceAt(fd, entry.temp, job.name);
    } catch (error) {
      this.#remove(entry.folder, entry.temp);
      return error instanceof Deno.errors.AlreadyExists
        ? { code: "EXISTS", message: `Already exists: ${job.path}` }
        : error instanceof Deno.errors.IsADirectory
        ? { code: "FORBIDDEN", message: `Target is a folder: ${job.path}` }
        : { code: "INTERNAL", message: "Internal server error" };
    }
    const ours = entry.ours;
    if (ours === undefined) return {};
    // The digest may be remembered only if the file at its name is still
    // ours (its change time moved with the rename: the placed status).
    let placed: EntryStatus;
    try {
      placed = libc.statAt(fd, job.name, AT_SYMLINK_NOFOLLOW);
    } catch {
      return {}; // gone already: nothing to remember
    }
    if (placed.ino !== ours.ino || placed.dev !== ours.dev) return {};
    return { placed };
  }

  /** Removes a temporary (errors ignored: it may be gone). */
  #remove(folder: Folder, temp: string): void {
    try {
      this.#libc.unlinkAt(folder.fd, temp);
    } catch {
      // Gone already.
    }
  }

  /**
   * The folder `folder` (a checked wire path, `""` the root), walked once
   * per run with `O_NOFOLLOW` from the root's descriptor and held until
   * the run ends.
   */
  #folder(folder: string, wirePath: string): Folder {
    const held = this.#folders.get(folder);
    if (held !== undefined) return held;
    const libc = this.#libc;
    let fd: number | undefined;
    try {
      this.#root ??= libc.openFolder(this.#realRoot);
      fd = this.#root;
      for (const segment of folder === "" ? [] : folder.split("/")) {
        const next = libc.openFolderAt(fd, segment);
        if (fd !== this.#root) libc.close(fd);
        fd = next;
      }
      if (fd === this.#root) fd = libc.openFolderAt(fd, ".");
      const held = { fd, dev: libc.statAt(fd, ".", 0).dev };
      this.#folders.set(folder, held);
      return held;
    } catch (error) {
      // The folder reached so far (never the root, which the run keeps).
      if (fd !== undefined && fd !== this.#root) libc.close(fd);
      throw walkError(error, wirePath);
    }
  }
}

/** 16 random hex digits. */
function randomBase(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(8)));
}

/** The outcome a refusal becomes (host details stay on this side). */
function refusal(error: unknown, wirePath: string): PlaceOutcome {
  if (error instanceof FerryError) return wire(error);
  const mapped = walkError(error, wirePath);
  if (mapped instanceof FerryError) return wire(mapped);
  return { code: "INTERNAL", message: "Internal server error" };
}

function wire(error: FerryError): PlaceOutcome {
  return { code: error.code, message: error.message };
}

/** A failed write of an upload's temporary. */
function writeFailed(error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  return new FerryError(
    "INTERNAL",
    `Write failed: ${typeof code === "string" ? code : "I/O error"}`,
    { cause: error },
  );
}
