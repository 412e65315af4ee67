/**
 * The local side of a sync: a walk of a local tree that never follows a
 * symbolic link, removal of entries inside a destination that never goes
 * through one, and the digest of a local file (or of its first bytes).
 *
 * @module
 */

import { createHasher } from "../_common/digest.ts";
import type { DigestAlgorithm } from "../protocol.ts";
import * as nodePath from "node:path";
import { copyHashed, makeBulkBuffers } from "../_common/copy.ts";
import { messageOf } from "../_common/text.ts";
import { walkFolder } from "./local_walk.ts";
import type { LocalStatus } from "./native_read.ts";
import type { SyncEntry } from "./sync_plan.ts";
import { FerryError } from "../errors.ts";

/** Buffers for hashing one local file (one pair per call, per file). */
const HASH_BUFFER_BYTES = 256 * 1024;

/**
 * A local tree as {@linkcode walkLocal} finds it.
 *
 * @example An empty tree
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LocalListing } from "./sync_local.ts";
 * const listing: LocalListing = { exists: false, entries: [], skipped: [] };
 * assert(!listing.exists);
 * ```
 */
export interface LocalListing {
  /** Whether the top folder exists. */
  exists: boolean;
  /** Its modification time, when it exists. */
  mtime?: number;
  /** Every entry, each folder before its contents; links are not entered. */
  entries: SyncEntry[];
  /** Names the wire cannot carry, and unreadable folders, with the reason. */
  skipped: { name: string; reason: string }[];
}

/**
 * Walks a local folder with `lstat`: files, folders, symbolic links (kind
 * `"link"`, never followed) and anything else (`"other"`). Names the
 * protocol cannot carry are left out and listed in `skipped`.
 *
 * @param root The local folder (it may itself be a link to a folder: the
 * user named it).
 * @returns The listing; `exists` is false when there is nothing at `root`.
 * @throws {FerryError} `LOCAL` if `root` exists and is not a folder.
 *
 * @example Walk a folder
 * ```ts ignore
 * import { walkLocal } from "./sync_local.ts";
 * const listing = await walkLocal("./docs");
 * console.log(listing.entries.length);
 * ```
 */
export async function walkLocal(root: string): Promise<LocalListing> {
  let top: Deno.FileInfo;
  try {
    top = await Deno.stat(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { exists: false, entries: [], skipped: [] };
    }
    throw new FerryError("LOCAL", `Cannot read ${root}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (!top.isDirectory) {
    throw new FerryError("LOCAL", `Not a folder: ${root}`);
  }
  const listing: LocalListing = {
    exists: true,
    mtime: top.mtime?.getTime() ?? 0,
    entries: [],
    skipped: [],
  };
  try {
    await walkFolder(root, {
      entry(name, _path, info) {
        listing.entries.push({
          name,
          kind: kindOf(info),
          size: info.isFile && !info.isSymlink ? info.size : 0,
          mtime: info.mtime?.getTime() ?? 0,
        });
      },
      skip(name, reason) {
        listing.skipped.push({ name, reason });
      },
    });
  } catch (error) {
    throw new FerryError("LOCAL", `Cannot read ${root}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return listing;
}

/**
 * The local path of a relative name under `root`, after checking that every
 * folder between them is a real folder (not a symbolic link).
 *
 * @param root The destination folder.
 * @param name A relative, `/`-separated name.
 * @returns The local path.
 * @throws {FerryError} `FORBIDDEN` if a folder on the way is a symbolic
 * link or not a folder.
 *
 * @example Check a path
 * ```ts ignore
 * import { checkedPath } from "./sync_local.ts";
 * console.log(checkedPath("./copy", "docs/a.txt"));
 * ```
 */
export function checkedPath(root: string, name: string): string {
  const segments = name.split("/");
  let path = root;
  for (const segment of segments.slice(0, -1)) {
    path = nodePath.join(path, segment);
    const info = Deno.lstatSync(path);
    if (info.isSymlink || !info.isDirectory) {
      throw new FerryError(
        "FORBIDDEN",
        `Refused to go through a symbolic link or file: ${path}`,
      );
    }
  }
  return nodePath.join(path, segments.at(-1)!);
}

/**
 * Removes the entry `name` under `root`: a file, a symbolic link (itself,
 * never its target) or a folder with its contents (links inside are removed,
 * not followed). Every folder on the way must be a real folder, and the
 * entry must still be of the kind the walk saw.
 *
 * @param root The destination folder.
 * @param name A relative name from {@linkcode walkLocal}.
 * @param kind The kind the walk saw.
 * @returns A promise that settles once it is gone.
 * @throws {FerryError} `FORBIDDEN` if a folder on the way is a link, `LOCAL`
 * if the entry changed kind or cannot be removed.
 *
 * @example Remove a file the source lacks
 * ```ts ignore
 * import { removeInside } from "./sync_local.ts";
 * await removeInside("./copy", "old/notes.txt", "file");
 * ```
 */
export async function removeInside(
  root: string,
  name: string,
  kind: SyncEntry["kind"],
): Promise<void> {
  let path: string;
  try {
    path = checkedPath(root, name);
    const info = Deno.lstatSync(path);
    const now = kindOf(info);
    if (now !== kind) {
      throw new FerryError(
        "LOCAL",
        `Changed while the sync ran: ${path} (now a ${now})`,
      );
    }
    await Deno.remove(path, { recursive: kind === "dir" });
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError(
      "LOCAL",
      `Cannot remove ${nodePath.join(root, name)}: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/** The kind of an entry seen by `lstat`. */
function kindOf(info: LocalStatus): SyncEntry["kind"] {
  return info.isSymlink
    ? "link"
    : info.isDirectory
    ? "dir"
    : info.isFile
    ? "file"
    : "other";
}

/**
 * Digest of a local file, or of its first `length` bytes, in the session's
 * algorithm (to compare with the server's `SUM`).
 *
 * @param path The file.
 * @param algorithm The digest algorithm.
 * @param length How many bytes to hash; the whole file when absent.
 * @returns The digest, or `undefined` when the file holds fewer bytes.
 * @throws {FerryError} `LOCAL` if it cannot be read.
 *
 * @example Hash a file
 * ```ts ignore
 * import { hashLocal } from "./sync_local.ts";
 * console.log(await hashLocal("notes.txt", "xxh3-128"));
 * ```
 */
export async function hashLocal(
  path: string,
  algorithm: DigestAlgorithm,
  length?: number,
): Promise<Uint8Array | undefined> {
  try {
    using file = await Deno.open(path, { read: true });
    const size = length ?? (await file.stat()).size;
    const hash = await createHasher(algorithm);
    const read = await copyHashed(
      file,
      undefined,
      size,
      hash,
      makeBulkBuffers(HASH_BUFFER_BYTES),
    );
    return read < size ? undefined : hash.digest();
  } catch (error) {
    throw new FerryError("LOCAL", `Cannot read ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
