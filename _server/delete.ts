/**
 * The server's `DELETE` handler: removes a file, a symbolic link (never its
 * target) or a folder (empty, or with its contents when recursive) inside
 * the served root, never through a symbolic link.
 *
 * Every segment before the last is looked at with `lstat`, one at a time
 * from the root: each must be a real folder, not a link (a delete never
 * goes through one, even a link that stays inside the root). The parent
 * is then resolved with `Deno.realPath` and must be exactly the folder the
 * walk found, inside the root. A recursive removal uses `Deno.remove`,
 * which removes links found inside the folder without following them.
 * Without strict mode, someone who can write inside the root could still
 * swap a parent folder for a link between the last check and the removal;
 * the window is the same narrow one the jail's fallback check leaves (see
 * `_server/path_jail.ts`).
 *
 * In strict mode (`_server/dir_handle.ts`: Linux with `--allow-ffi`) the
 * parent is opened from the root one segment at a time with
 * `openat(O_NOFOLLOW | O_DIRECTORY)` and the entry is examined with
 * `fstatat(AT_SYMLINK_NOFOLLOW)` and removed with `unlinkat` relative to
 * that descriptor, so no swap can redirect the removal. A recursive removal
 * first renames the folder, relative to the same descriptor, to a fresh
 * hidden temporary name (which no request can reach), then removes it with
 * `Deno.remove`, which walks the folder with descriptors and never follows a
 * link inside it.
 *
 * @module
 */

import * as nodePath from "node:path";
import {
  AT_SYMLINK_NOFOLLOW,
  type Libc,
  openFolderAt,
  strictLibc,
} from "./dir_handle.ts";
import { isInside } from "./path_jail.ts";
import { printable, splitWirePath } from "../_common/wire_path.ts";
import { TEMP_NAME, tempName } from "./temp.ts";
import { FerryError } from "../errors.ts";

/**
 * Options of {@linkcode deleteInside}.
 *
 * @example Remove a folder with its contents
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeleteOptions } from "./delete.ts";
 * const options: DeleteOptions = { recursive: true };
 * assert(options.recursive);
 * ```
 */
export interface DeleteOptions {
  /**
   * Remove a folder with its contents; without it only an empty folder.
   *
   * @default {false}
   */
  recursive?: boolean;
}

/**
 * Removes the file, link or folder `wirePath` inside `realRoot`.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param wirePath The path from the request.
 * @param options Whether a folder goes with its contents.
 * @returns A promise that settles once the entry is gone.
 * @throws {FerryError} `FORBIDDEN` for the root, a path the lexical rules
 * refuse, an upload temporary, a symbolic link or a non-folder among the
 * parents, or a permission error; `NOT_FOUND` if nothing is there;
 * `EXISTS` for a folder that is not empty without `recursive`.
 *
 * @example Remove a file
 * ```ts ignore
 * import { deleteInside } from "./delete.ts";
 * await deleteInside(await Deno.realPath("."), "old/notes.txt");
 * ```
 */
export async function deleteInside(
  realRoot: string,
  wirePath: string,
  options: DeleteOptions = {},
): Promise<void> {
  const segments = splitWirePath(wirePath);
  const name = segments.at(-1);
  if (name === undefined) {
    throw new FerryError("FORBIDDEN", "Cannot delete the root folder");
  }
  if (segments.some((segment) => TEMP_NAME.test(segment))) {
    throw new FerryError(
      "FORBIDDEN",
      `Path not allowed: ${printable(wirePath)}`,
    );
  }
  const libc = strictLibc();
  if (libc !== undefined) {
    return await deleteStrict(libc, { realRoot, segments, wirePath, options });
  }
  let folder = realRoot;
  for (const segment of segments.slice(0, -1)) {
    folder = nodePath.join(folder, segment);
    const info = await lstat(folder, wirePath);
    if (info.isSymlink) {
      throw new FerryError(
        "FORBIDDEN",
        `Refused to delete through a symbolic link: ${printable(wirePath)}`,
      );
    }
    if (!info.isDirectory) {
      throw new FerryError("NOT_FOUND", `Not found: ${printable(wirePath)}`);
    }
  }
  let real: string;
  try {
    real = await Deno.realPath(folder);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  if (real !== folder || !isInside(realRoot, real)) {
    throw new FerryError(
      "FORBIDDEN",
      `Path changed while it was checked: ${printable(wirePath)}`,
    );
  }
  const target = nodePath.join(real, name);
  const info = await lstat(target, wirePath);
  try {
    // A link is removed itself (unlink), whatever it points to.
    await Deno.remove(target, {
      recursive: info.isDirectory && !info.isSymlink && options.recursive,
    });
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
}

interface StrictDelete {
  realRoot: string;
  segments: string[];
  wirePath: string;
  options: DeleteOptions;
}

/** The strict-mode removal: everything relative to a walked descriptor. */
async function deleteStrict(libc: Libc, request: StrictDelete): Promise<void> {
  const { realRoot, segments, wirePath, options } = request;
  const name = segments.at(-1)!;
  const parent = segments.slice(0, -1);
  const fd = openFolderAt(libc, realRoot, parent, wirePath);
  let quarantine: string | undefined;
  try {
    const status = libc.statAt(fd, name, AT_SYMLINK_NOFOLLOW);
    if (!status.isDirectory) {
      libc.unlinkAt(fd, name); // a file, or a link itself
    } else if (!options.recursive) {
      libc.removeFolderAt(fd, name);
    } else {
      quarantine = tempName();
      libc.renameAt(fd, name, fd, quarantine);
    }
  } catch (error) {
    throw fileSystemError(error, wirePath);
  } finally {
    libc.close(fd);
  }
  if (quarantine === undefined) return;
  try {
    await Deno.remove(nodePath.join(realRoot, ...parent, quarantine), {
      recursive: true,
    });
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
}

async function lstat(
  hostPath: string,
  wirePath: string,
): Promise<Deno.FileInfo> {
  try {
    return await Deno.lstat(hostPath);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
}

/** Maps a file system error to a wire error naming only the wire path. */
function fileSystemError(error: unknown, wirePath: string): Error {
  const shown = printable(wirePath);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.NotADirectory
  ) {
    return new FerryError("NOT_FOUND", `Not found: ${shown}`, {
      cause: error,
    });
  }
  if (code === "ENOTEMPTY" || code === "EEXIST") {
    return new FerryError("EXISTS", `Folder is not empty: ${shown}`, {
      cause: error,
    });
  }
  if (
    error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.NotCapable
  ) {
    return new FerryError("FORBIDDEN", `Permission denied: ${shown}`, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}
