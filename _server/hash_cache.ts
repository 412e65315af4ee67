/**
 * The server's cache of whole-file digests, so that a repeated or resumed
 * `GET` of a large unchanged file is not hashed again.
 *
 * An entry is keyed by the digest algorithm (each session uses the one it
 * negotiated, so one file may have an XXH3-128 and a SHA-256 entry) and by
 * everything that tells one version of a file from
 * another without reading it: the real path, the size, the modification
 * time, the inode and device numbers and the status-change time (`ctime`).
 * `ctime` is there for programs that rewrite a file and then set its
 * modification time back (`touch -r`, `cp -p`): the kernel moves `ctime` to
 * the present on every such change and no program can set it. On Windows
 * the inode (file index) may be unknown; the key then goes without it.
 *
 * Time stamps are coarse: Deno reports `mtime` in milliseconds and `ctime`
 * in whole seconds, and file systems tick in steps of milliseconds (FAT: 2
 * s). Two writes within one step leave the same time stamps, so a digest is
 * only stored when the file had been left alone for
 * {@linkcode RACY_MARGIN_MS} before it was looked at (git calls such files
 * "racily clean"): any later change then moves a time stamp and misses the
 * cache. Uploads are the exception, see {@linkcode HashCache.store}.
 *
 * @module
 */

import type { DigestAlgorithm } from "../protocol.ts";

/**
 * How long, in milliseconds, a file must have been left alone (both `mtime`
 * and `ctime` this far in the past) before its digest is cached.
 */
export const RACY_MARGIN_MS = 2000;

/** Entries a server keeps unless told otherwise. */
export const DEFAULT_HASH_CACHE_ENTRIES = 1024;

/** A bounded least-recently-used map from file versions to digests. */
export class HashCache {
  /** Most entries kept; the least recently used goes first. */
  readonly maxEntries: number;
  /** Lookups that found a digest. */
  hits = 0;
  /** Lookups that found none. */
  misses = 0;
  #entries = new Map<string, Uint8Array>();

  /**
   * Makes an empty cache.
   *
   * @param maxEntries Most entries kept, at least 1.
   * @throws {RangeError} If `maxEntries` is not a positive integer.
   */
  constructor(maxEntries: number = DEFAULT_HASH_CACHE_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Hash cache size must be a positive integer: ${maxEntries}`,
      );
    }
    this.maxEntries = maxEntries;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The digest of this version of the file, if known.
   *
   * @param realPath The file's real host path.
   * @param info Its status, from `fstat` of the opened file.
   * @param algorithm The session's digest algorithm.
   * @returns The digest in that algorithm, or `undefined`.
   */
  lookup(
    realPath: string,
    info: Deno.FileInfo,
    algorithm: DigestAlgorithm,
  ): Uint8Array | undefined {
    const key = versionKey(realPath, info, algorithm);
    const digest = key === undefined ? undefined : this.#entries.get(key);
    if (digest === undefined || key === undefined) {
      this.misses++;
      return undefined;
    }
    this.#entries.delete(key); // move to the most recently used end
    this.#entries.set(key, digest);
    this.hits++;
    return digest;
  }

  /**
   * Remembers the digest of a file version, unless the version is too
   * fresh to be told from a change that may follow within the same clock
   * step.
   *
   * @param realPath The file's real host path.
   * @param info Its status when its reading began.
   * @param algorithm The algorithm of `digest`.
   * @param digest The digest of its whole content.
   * @param observedAt `Date.now()` taken just before `info`.
   * @param options `upload`: the file is an inode the server has just
   * renamed into place with the client's modification time; only that time
   * needs to be old (a later write moves it to the present; a writer that
   * also set the time back, to the same millisecond and within the same
   * second as the upload, is the one change this misses).
   * @returns Whether the digest was stored.
   */
  store(
    realPath: string,
    info: Deno.FileInfo,
    algorithm: DigestAlgorithm,
    digest: Uint8Array,
    observedAt: number,
    options: { upload?: boolean } = {},
  ): boolean {
    const key = versionKey(realPath, info, algorithm);
    if (key === undefined) return false;
    const mtime = info.mtime!.getTime();
    if (observedAt - mtime < RACY_MARGIN_MS) return false;
    const ctime = info.ctime?.getTime();
    if (
      !options.upload && ctime !== undefined &&
      observedAt - ctime < RACY_MARGIN_MS
    ) {
      return false;
    }
    this.#entries.delete(key);
    this.#entries.set(key, digest.slice());
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value!;
      this.#entries.delete(oldest);
    }
    return true;
  }
}

/**
 * Whether two statuses of one open file describe the same version: size,
 * modification and change times, inode and device.
 *
 * @param a One status.
 * @param b The other.
 * @returns Whether nothing tells them apart.
 */
export function sameVersion(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.size === b.size &&
    a.mtime?.getTime() === b.mtime?.getTime() &&
    a.ctime?.getTime() === b.ctime?.getTime() &&
    a.ino === b.ino && a.dev === b.dev;
}

/** The cache key of a file version, or undefined without an `mtime`. */
function versionKey(
  realPath: string,
  info: Deno.FileInfo,
  algorithm: DigestAlgorithm,
): string | undefined {
  const mtime = info.mtime?.getTime();
  if (mtime === undefined || !info.isFile) return undefined;
  return `${algorithm}:${info.size}:${mtime}:${info.ctime?.getTime() ?? ""}:${
    info.ino ?? ""
  }:${info.dev}:${realPath}`;
}
