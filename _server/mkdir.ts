/**
 * The server side of `MKDIR`: creates a folder and its missing parents inside
 * the served root, one segment at a time, so that no created folder can land
 * outside the root whatever links lie on the way.
 *
 * @module
 */

import * as nodePath from "node:path";
import { isInside } from "./path_jail.ts";
import { splitWirePath } from "../_common/wire_path.ts";
import { FerryError } from "../errors.ts";
import {
  AT_SYMLINK_NOFOLLOW,
  type Libc,
  openFolderAt,
  strictLibc,
  walkError,
} from "./dir_handle.ts";

/**
 * Options of {@linkcode makeFolder}.
 *
 * @example Set a time, hide temporaries
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MakeFolderOptions } from "./mkdir.ts";
 * const options: MakeFolderOptions = { mtime: 0, hidden: /^\.ferry-/ };
 * assert(options.mtime === 0);
 * ```
 */
export interface MakeFolderOptions {
  /** Modification time to give the folder (not the root), milliseconds. */
  mtime?: number;
  /** Names that may not be created or walked through (upload temporaries). */
  hidden?: RegExp;
}

/**
 * Makes sure the folder `wirePath` exists inside `realRoot`: each missing
 * segment is created with `Deno.mkdir`, each existing one must be a folder;
 * a symbolic link on the way is followed only when its target is a folder
 * inside the root. The root itself (`""`) always exists; its time is never
 * changed.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param wirePath The folder's wire path.
 * @param options The time to set, names to refuse.
 * @returns The real host path of the folder.
 * @throws {FerryError} `FORBIDDEN` if the path breaks a lexical rule, names
 * a hidden name, leads outside the root or may not be written; `EXISTS` if a
 * segment exists and is not a folder.
 *
 * @example Create nested folders
 * ```ts ignore
 * import { makeFolder } from "./mkdir.ts";
 * const root = await Deno.realPath(".");
 * await makeFolder(root, "a/b/c", { mtime: Date.UTC(2020, 0, 1) });
 * ```
 */
export async function makeFolder(
  realRoot: string,
  wirePath: string,
  options: MakeFolderOptions = {},
): Promise<string> {
  const segments = splitWirePath(wirePath);
  if (segments.some((segment) => options.hidden?.test(segment))) {
    throw new FerryError("FORBIDDEN", `Path not allowed: ${wirePath}`);
  }
  const libc = strictLibc();
  if (libc !== undefined) {
    return await makeFolderAt(libc, realRoot, segments, wirePath, options);
  }
  let current = realRoot;
  for (const segment of segments) {
    const next = nodePath.join(current, segment);
    let info = await lstatOrUndefined(next, wirePath);
    if (info === undefined) {
      try {
        await Deno.mkdir(next);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) {
          throw fileSystemError(error, wirePath);
        }
      }
      info = await lstatOrUndefined(next, wirePath);
      if (info === undefined) {
        throw new FerryError("NOT_FOUND", `Folder vanished: ${wirePath}`);
      }
    }
    let real = next;
    if (info.isSymlink) {
      real = await linkTargetInside(realRoot, next, wirePath);
      try {
        info = await Deno.stat(real);
      } catch (error) {
        throw fileSystemError(error, wirePath);
      }
    }
    if (!info.isDirectory) {
      throw new FerryError("EXISTS", `Exists and is not a folder: ${wirePath}`);
    }
    current = real;
  }
  if (segments.length > 0 && options.mtime !== undefined) {
    try {
      await Deno.utime(current, new Date(), new Date(options.mtime));
    } catch (error) {
      throw fileSystemError(error, wirePath);
    }
  }
  return current;
}

/**
 * Strict mode's {@linkcode makeFolder}: each segment is opened with
 * `openat(O_NOFOLLOW | O_DIRECTORY)` relative to the folder before it and
 * made with `mkdirat` when missing, so a folder swapped for a link out of
 * the root is refused by the kernel instead of followed. A link found on the
 * way is resolved by name, must lead inside the root, and the walk then
 * restarts from the root along that real path (again never following a
 * link). The time is set on the held folder (`utimensat(fd, ".")`).
 */
async function makeFolderAt(
  libc: Libc,
  realRoot: string,
  segments: string[],
  wirePath: string,
  options: MakeFolderOptions,
): Promise<string> {
  let current = realRoot;
  let fd = openFolderAt(libc, realRoot, [], wirePath);
  try {
    for (const segment of segments) {
      const next = nodePath.join(current, segment);
      let opened: number;
      try {
        opened = openOrMake(libc, fd, segment);
      } catch (error) {
        // O_NOFOLLOW | O_DIRECTORY on a link fails with ELOOP or ENOTDIR.
        if (!isLink(libc, fd, segment, error)) {
          throw fileSystemError(error, wirePath);
        }
        // A link: follow it only to a folder inside the root, and walk
        // there from the root again without following anything.
        const real = await linkTargetInside(realRoot, next, wirePath);
        const relative = nodePath.relative(realRoot, real);
        try {
          opened = openFolderAt(
            libc,
            realRoot,
            relative === "" ? [] : relative.split(nodePath.sep),
            wirePath,
          );
        } catch (error) {
          if (
            error instanceof FerryError && error.code === "FORBIDDEN" &&
            error.cause instanceof Deno.errors.NotADirectory
          ) {
            throw new FerryError(
              "EXISTS",
              `Exists and is not a folder: ${wirePath}`,
            );
          }
          throw error;
        }
        libc.close(fd);
        fd = opened;
        current = real;
        continue;
      }
      libc.close(fd);
      fd = opened;
      current = next;
    }
    if (segments.length > 0 && options.mtime !== undefined) {
      try {
        libc.setMtimeAt(fd, ".", options.mtime);
      } catch (error) {
        throw walkError(error, wirePath);
      }
    }
    return current;
  } finally {
    libc.close(fd);
  }
}

/** The real path a link at `hostPath` leads to, refused unless inside the root. */
async function linkTargetInside(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): Promise<string> {
  let real: string;
  try {
    real = await Deno.realPath(hostPath);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  if (!isInside(realRoot, real)) {
    throw new FerryError(
      "FORBIDDEN",
      `Path leaves the served folder: ${wirePath}`,
    );
  }
  return real;
}

/** Whether `error`, from opening `name` in `dirFd`, met a symbolic link. */
function isLink(
  libc: Libc,
  dirFd: number,
  name: string,
  error: unknown,
): boolean {
  if (
    !(error instanceof Deno.errors.FilesystemLoop) &&
    !(error instanceof Deno.errors.NotADirectory)
  ) return false;
  try {
    return libc.statAt(dirFd, name, AT_SYMLINK_NOFOLLOW).isSymlink;
  } catch {
    return false;
  }
}

/** Opens the folder `name` in `dirFd`, making it first if it is missing. */
function openOrMake(libc: Libc, dirFd: number, name: string): number {
  try {
    return libc.openFolderAt(dirFd, name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  try {
    libc.mkdirAt(dirFd, name);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  return libc.openFolderAt(dirFd, name);
}

async function lstatOrUndefined(
  hostPath: string,
  wirePath: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(hostPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw fileSystemError(error, wirePath);
  }
}

/** Maps a file system error to a wire error naming only the wire path. */
function fileSystemError(error: unknown, wirePath: string): Error {
  if (
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.FilesystemLoop
  ) {
    return new FerryError("FORBIDDEN", `Broken link on the way: ${wirePath}`, {
      cause: error,
    });
  }
  if (error instanceof Deno.errors.NotADirectory) {
    return new FerryError("EXISTS", `Exists and is not a folder: ${wirePath}`, {
      cause: error,
    });
  }
  if (
    error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.NotCapable
  ) {
    return new FerryError("FORBIDDEN", `Permission denied: ${wirePath}`, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}
