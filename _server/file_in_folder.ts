/**
 * The server's own files in a folder of the root (upload temporaries,
 * resumable parts and their leases), made, opened and removed so that a
 * local user who swaps a folder for a link out of the root cannot make them
 * land outside.
 *
 * In strict mode (`_server/dir_handle.ts`) a file is created with
 * `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` in its folder opened from the
 * root, so it is never made outside; an existing one is looked at with
 * `fstatat(AT_SYMLINK_NOFOLLOW)` there. Either is then opened by name for
 * the server's reads and writes and kept only if that is the very file
 * (same device and inode); else a file this call made is removed again with
 * `unlinkat` in the walked folder and the request refused. Without strict
 * mode they are made and opened by name (`_server/host_file.ts`), checked
 * afterwards by the caller.
 *
 * @module
 */

import * as nodePath from "node:path";
import {
  AT_SYMLINK_NOFOLLOW,
  type EntryStatus,
  inFolder,
  type Libc,
  strictLibc,
} from "./dir_handle.ts";
import {
  createExclusive,
  type HostFile,
  openExistingPart,
} from "./host_file.ts";
import { FerryError } from "../errors.ts";
import { printable } from "../_common/wire_path.ts";

/**
 * Creates a new file no name existed for, open for reading and writing.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The new file's host path (its folder at or below the root).
 * @param wirePath The request's path, for messages.
 * @returns The open, empty file.
 * @throws {FerryError} `FORBIDDEN` if its folder was swapped for a link
 * (strict mode: nothing is left behind), as `walkError` of
 * `_server/dir_handle.ts` for the walk.
 * @throws {Error} The create's own error (`code` `EEXIST` if the name is
 * taken).
 */
export async function createInFolder(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): Promise<HostFile> {
  const libc = strictLibc();
  if (libc === undefined) return createExclusive(hostPath);
  const name = nodePath.basename(hostPath);
  const made = inFolder(
    libc,
    realRoot,
    nodePath.dirname(hostPath),
    wirePath,
    (fd) => {
      libc.close(libc.createAt(fd, name));
      return libc.statAt(fd, name, AT_SYMLINK_NOFOLLOW);
    },
  );
  const file = await openSame(hostPath, wirePath, made);
  if (file !== undefined) return file;
  removeAt(libc, realRoot, hostPath, wirePath);
  throw changed(wirePath);
}

/**
 * Creates an upload's temporary file with {@linkcode createInFolder}.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param tempPath The temporary's host path.
 * @param wirePath The request's path, for messages.
 * @returns The open, empty file.
 * @throws {FerryError} As {@linkcode createInFolder}; `INTERNAL` if the
 * file cannot be created.
 */
export async function createTemporary(
  realRoot: string,
  tempPath: string,
  wirePath: string,
): Promise<HostFile> {
  try {
    return await createInFolder(realRoot, tempPath, wirePath);
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError(
      "INTERNAL",
      `Cannot create the upload's temporary file: ${printable(wirePath)}`,
      { cause: error },
    );
  }
}

/**
 * Opens a file of the server's that is already there (a kept part), or
 * `undefined` if the name is free: never through a link, never blocking,
 * only a regular file with one link. In strict mode the entry is read with
 * `fstatat(AT_SYMLINK_NOFOLLOW)` in its folder opened from the root and the
 * file opened by name must be that entry.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The file's host path.
 * @param wirePath The request's path, for messages.
 * @returns The open file, or `undefined` if nothing is at that name.
 * @throws {FerryError} `FORBIDDEN` if something else sits at the name, or
 * its folder was swapped for a link.
 */
export async function openExistingInFolder(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): Promise<HostFile | undefined> {
  const libc = strictLibc();
  if (libc === undefined) return openExistingPart(hostPath, wirePath);
  let entry: EntryStatus;
  try {
    entry = inFolder(
      libc,
      realRoot,
      nodePath.dirname(hostPath),
      wirePath,
      (fd) => libc.statAt(fd, nodePath.basename(hostPath), AT_SYMLINK_NOFOLLOW),
    );
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  if (!entry.isFile || entry.nlink !== 1) {
    throw new FerryError(
      "FORBIDDEN",
      `Upload part is not a plain file: ${printable(wirePath)}`,
    );
  }
  const file = await openSame(hostPath, wirePath, entry);
  if (file === undefined) throw changed(wirePath);
  return file;
}

/**
 * Removes a file of the server's: in strict mode with `unlinkat` in its
 * folder opened from the root, else by name. Errors are ignored (gone, or
 * its folder was swapped for a link: then nothing outside is touched).
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The file's host path.
 * @param wirePath The request's path, for messages.
 * @returns Once removed (or found gone).
 */
export async function removeInFolder(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): Promise<void> {
  const libc = strictLibc();
  if (libc === undefined) {
    await Deno.remove(hostPath).catch(() => {
      // Already gone: nothing to clean.
    });
  } else removeAt(libc, realRoot, hostPath, wirePath);
}

/**
 * Strict mode's {@linkcode removeInFolder}.
 *
 * @param libc The binding.
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The file's host path.
 * @param wirePath The request's path, for messages.
 */
export function removeAt(
  libc: Libc,
  realRoot: string,
  hostPath: string,
  wirePath: string,
): void {
  try {
    inFolder(
      libc,
      realRoot,
      nodePath.dirname(hostPath),
      wirePath,
      (fd) => libc.unlinkAt(fd, nodePath.basename(hostPath)),
    );
  } catch {
    // Already gone, or no longer reachable inside the root.
  }
}

/** Opens `hostPath` by name; the file if it is `entry`, else undefined. */
async function openSame(
  hostPath: string,
  wirePath: string,
  entry: EntryStatus,
): Promise<HostFile | undefined> {
  let file: HostFile | undefined;
  try {
    file = openExistingPart(hostPath, wirePath);
  } catch {
    // Not the file walked to.
  }
  if (file === undefined) return undefined;
  const opened = await file.stat();
  if (opened.dev === entry.dev && opened.ino === entry.ino) return file;
  file.close();
  return undefined;
}

function changed(wirePath: string): FerryError {
  return new FerryError(
    "FORBIDDEN",
    `Path changed while it was opened: ${printable(wirePath)}`,
  );
}
