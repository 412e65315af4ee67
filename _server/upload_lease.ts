/**
 * Leases on resumable upload parts, so that servers sharing one root (behind
 * a load balancer) never write the same part at once.
 *
 * The part `.ferry-<hex>.part` has a lease `.ferry-<hex>.lease` beside it,
 * created with `O_CREAT | O_EXCL | O_NOFOLLOW` (`createInFolder` of
 * `_server/file_in_folder.ts`, in strict mode relative to its folder opened
 * from the root): whoever creates it owns the part. It holds one line naming its owner (process id
 * and a random token, for people), and the owner keeps the lease file open
 * and moves its modification time forward every `refreshMs` while the
 * upload runs, through the open file (never through the path, which a
 * local user could swap).
 *
 * Another server that wants the part waits. When the lease is removed (the
 * upload ended), it creates its own. When the lease has not changed (same
 * inode, same modification time) for `timeoutMs` as measured on the
 * waiting server's own monotonic clock (so clocks of different machines
 * need not agree), its owner is taken for dead (a killed server): the lease
 * is removed and the race to create it starts again. A live owner that
 * holds the part longer than `maxWaitMs` gets the waiter a `BUSY`.
 *
 * An owner checks on every refresh, and before it moves the part into
 * place, that the lease at the path is still its file; if not (it stalled
 * longer than `timeoutMs` and was taken over) it stops: `onLost` closes its
 * connection. Whatever slips through that window is caught by the
 * upload's SHA-256, which the successor checks over the whole part.
 *
 * The shared file system must honour `O_EXCL` and make modification times
 * visible to other clients within `timeoutMs` (NFS: keep the attribute
 * cache, `actimeo`, well below it).
 *
 * @module
 */

import { futimes } from "node:fs";
import * as nodePath from "node:path";
import { delay } from "../_common/delay.ts";
import type { HostFile } from "./host_file.ts";
import { createInFolder, removeInFolder } from "./file_in_folder.ts";
import { FerryError } from "../errors.ts";
import { statInside, strictLibc } from "./dir_handle.ts";

/** A lease unchanged this long belongs to a dead server: 10 s. */
export const DEFAULT_LEASE_TIMEOUT_MS = 10_000;

/** Longest wait for a part a live server is writing: 30 s. */
export const DEFAULT_LEASE_WAIT_MS = 30_000;

/** Timing of {@linkcode UploadLease.acquire}. */
export interface LeaseOptions {
  /**
   * A lease unchanged this long is taken over; its owner refreshes it five
   * times as often.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Longest wait for a lease that stays alive, before `BUSY`.
   *
   * @default {30000}
   */
  maxWaitMs?: number;
  /** Aborting it (the connection closed) ends the wait with `CONNECTION`. */
  signal?: AbortSignal;
  /** Called once if the lease is found taken over while held. */
  onLost?: () => void;
  /**
   * The served folder (resolved with `Deno.realPath`): in strict mode the
   * lease is created and removed in its folder opened from the root
   * (`_server/file_in_folder.ts`).
   *
   * @default {the part's folder}
   */
  realRoot?: string;
  /** The upload's path, for messages. @default {""} */
  wirePath?: string;
}

/**
 * The lease path of a part: `.ferry-<hex>.part` → `.ferry-<hex>.lease`.
 *
 * @param partPath Host path of the part.
 * @returns Host path of its lease.
 */
export function leasePathOf(partPath: string): string {
  return partPath.replace(/\.part$/, ".lease");
}

/** An exclusive, refreshed claim on one upload part across servers. */
export class UploadLease {
  readonly path: string;
  #file: HostFile;
  #ino: number | null;
  #timer: ReturnType<typeof setInterval>;
  #lost = false;
  #refreshing: Promise<void> = Promise.resolve();
  #onLost: (() => void) | undefined;
  #realRoot: string;
  #wirePath: string;

  private constructor(
    path: string,
    file: HostFile,
    ino: number | null,
    refreshMs: number,
    options: LeaseOptions & { realRoot: string; wirePath: string },
  ) {
    this.path = path;
    this.#file = file;
    this.#ino = ino;
    this.#onLost = options.onLost;
    this.#realRoot = options.realRoot;
    this.#wirePath = options.wirePath;
    this.#timer = setInterval(() => {
      this.#refreshing = this.#refresh();
    }, refreshMs);
  }

  /**
   * Takes the lease of a part, waiting for its holder to release it or
   * die (see the module doc).
   *
   * @param partPath Host path of the part.
   * @param options Timing, the connection's signal, what to do on loss.
   * @returns The lease, held and refreshed until {@linkcode release}.
   * @throws {FerryError} `BUSY` if a live holder keeps it longer than
   * `maxWaitMs`; `CONNECTION` if `signal` aborts.
   */
  static async acquire(
    partPath: string,
    options: LeaseOptions = {},
  ): Promise<UploadLease> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_LEASE_TIMEOUT_MS;
    const maxWaitMs = options.maxWaitMs ?? DEFAULT_LEASE_WAIT_MS;
    const signal = options.signal ?? new AbortController().signal;
    const path = leasePathOf(partPath);
    const where = {
      ...options,
      realRoot: options.realRoot ?? nodePath.dirname(path),
      wirePath: options.wirePath ?? "",
    };
    const started = performance.now();
    const pollMs = Math.max(5, Math.min(250, timeoutMs / 10));
    let seen: { key: string; since: number } | undefined;
    while (true) {
      if (signal.aborted) {
        throw new FerryError("CONNECTION", "Connection closed while waiting");
      }
      const file = await createNew(path, where);
      if (file !== undefined) {
        try {
          await file.write(
            new TextEncoder().encode(
              `ferry upload lease: pid ${Deno.pid} ${crypto.randomUUID()}\n`,
            ),
          );
          const { ino } = await file.stat();
          return new UploadLease(
            path,
            file,
            ino,
            Math.max(1, timeoutMs / 5),
            where,
          );
        } catch (error) {
          file.close();
          await removeInFolder(where.realRoot, path, where.wirePath);
          throw error;
        }
      }
      const info = await Deno.lstat(path).catch(() => undefined);
      const now = performance.now();
      if (info !== undefined) {
        const key = `${info.ino}:${info.mtime?.getTime()}:${info.size}`;
        if (seen?.key !== key) {
          seen = { key, since: now };
        } else if (now - seen.since >= timeoutMs) {
          // Unchanged for the whole timeout: its owner is gone.
          await removeInFolder(where.realRoot, path, where.wirePath);
          seen = undefined;
          continue;
        }
      }
      if (now - started >= maxWaitMs) {
        throw new FerryError(
          "BUSY",
          "This upload is in progress on another server, try again later",
        );
      }
      await delay(info === undefined ? 1 : pollMs, signal);
    }
  }

  /** Whether the lease was found taken over. */
  get lost(): boolean {
    return this.#lost;
  }

  /**
   * Whether the lease at the path is still this one (checked now).
   *
   * @returns False once it was taken over or removed.
   */
  async held(): Promise<boolean> {
    if (this.#lost) return false;
    if (await this.#ours() === false) this.#lose();
    return !this.#lost;
  }

  /**
   * Whether the entry at the path is this lease's file; `undefined` when
   * strict mode cannot reach its folder from the root right now (swapped
   * for a link): not taken for a loss, and nothing is removed.
   */
  async #ours(): Promise<boolean | undefined> {
    const libc = strictLibc();
    if (libc === undefined) {
      const info = await Deno.lstat(this.path).catch(() => undefined);
      return info !== undefined && info.ino === this.#ino;
    }
    try {
      return statInside(libc, this.#realRoot, this.path, this.#wirePath)
        .ino === this.#ino;
    } catch (error) {
      if (error instanceof FerryError) return undefined;
      return false;
    }
  }

  /** Stops refreshing and removes the lease, if it is still this one. */
  async release(): Promise<void> {
    clearInterval(this.#timer);
    await this.#refreshing;
    try {
      // Its owner is done with it: a lease found lost here closes nothing.
      if (!this.#lost && await this.#ours()) {
        await removeInFolder(this.#realRoot, this.path, this.#wirePath);
      }
    } catch {
      // Gone already: nothing to release.
    } finally {
      this.#file.close();
    }
  }

  async #refresh(): Promise<void> {
    if (this.#lost) return;
    const now = new Date();
    await new Promise<void>((resolve) =>
      // An error is for the check below: is the lease still ours?
      futimes(this.#file.fd, now, now, () => resolve())
    );
    await this.held();
  }

  #lose(): void {
    if (this.#lost) return;
    this.#lost = true;
    clearInterval(this.#timer);
    try {
      this.#onLost?.();
    } catch {
      // The owner's callback must not break the refresh.
    }
  }
}

/** Creates `path` exclusively; undefined if something is there. */
async function createNew(
  path: string,
  where: { realRoot: string; wirePath: string },
): Promise<HostFile | undefined> {
  try {
    return await createInFolder(where.realRoot, path, where.wirePath);
  } catch (error) {
    if ((error as { code?: unknown }).code === "EEXIST") return undefined;
    throw error;
  }
}
