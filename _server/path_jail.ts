/**
 * The root jail: maps a `/`-separated wire path to a host path inside the
 * folder a server serves, or refuses it with a {@linkcode FerryError}.
 *
 * Two kinds of check run, in this order:
 *
 * 1. **Lexical** (`splitWirePath` in `_common/wire_path.ts`): no empty, `.` or `..`
 *    segment (so no leading, trailing or double `/`), no backslash, no NUL
 *    or other control byte (0x00-0x1f, 0x7f), no drive letter at the start,
 *    no `:` at all on Windows, no Windows device name (`CON`, `PRN`, `AUX`,
 *    `NUL`, `COM1`-`COM9`, `LPT1`-`LPT9`, with or without an extension, in
 *    any case) on any operating system, and at most
 *    {@linkcode MAX_PATH_BYTES} bytes. These give `FORBIDDEN` before the
 *    file system is touched, so `../missing` is `FORBIDDEN`, never
 *    `NOT_FOUND`.
 * 2. **Real** ({@linkcode resolveExisting}, {@linkcode resolveTarget}): the
 *    path is joined to the real root with `node:path` (so Windows gets `\`)
 *    and resolved with `Deno.realPath`, which follows every symbolic link;
 *    the result must still lie inside the real root, else `FORBIDDEN`. An
 *    upload target is checked through its parent folder, and must not itself
 *    be a symbolic link or a folder.
 * 3. **Opened** ({@linkcode openInside}, {@linkcode checkOpened}): a check
 *    by name and the `open` that follows are two steps, and someone who can
 *    write inside the root could swap a folder on the path for a symbolic
 *    link out of it in between. So after opening, the server proves that
 *    the file it holds is inside the root: on Linux it asks the kernel
 *    where its descriptor really points (`/proc/self/fd/N`, which no rename
 *    can fake) and requires that to be inside the root. Every file read for
 *    a peer is opened non-blocking (`_server/host_file.ts`) and refused
 *    unless it is a regular file, so a FIFO or a device swapped in never
 *    blocks a request. Where `/proc` is not available (other systems, or
 *    any permissions short of `-A`) it falls back to resolving the name
 *    again and comparing device and inode, which narrows the window but
 *    cannot close it; run with `--allow-all` (`-A`), the only permission
 *    under which Deno lets a program read `/proc/self/fd`, for
 *    the strict check. Listings and `STAT` read names and sizes by
 *    path and keep that narrow window: they can never return file contents.
 *
 * Error messages name the wire path only, never a host path.
 *
 * @module
 */

import { closeSync, fstatSync, openSync } from "node:fs";
import {
  fileInfoOf,
  type HostFile,
  openRegularForReading,
  READ_FLAGS,
} from "./host_file.ts";
import * as nodePath from "node:path";
import { FerryError } from "../errors.ts";
import { printable, splitWirePath } from "../_common/wire_path.ts";

/**
 * Whether `candidate` (a real path) is `realRoot` or lies inside it.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param candidate Another real path.
 * @returns `true` when inside.
 *
 * @example Compare two paths
 * ```ts
 * import assert from "node:assert/strict";
 * import { isInside } from "./path_jail.ts";
 * assert(isInside("/srv/files", "/srv/files/a.txt"));
 * assert(!isInside("/srv/files", "/srv/files2/a.txt"));
 * ```
 */
export function isInside(realRoot: string, candidate: string): boolean {
  const relative = nodePath.relative(realRoot, candidate);
  if (relative === "") return true;
  if (nodePath.isAbsolute(relative)) return false; // another drive
  return relative !== ".." && !relative.startsWith(".." + nodePath.sep);
}

/**
 * An existing file or folder inside the root.
 *
 * @example Use a resolved path
 * ```ts ignore
 * import { resolveExisting } from "./path_jail.ts";
 * const found = await resolveExisting(await Deno.realPath("."), "README.md");
 * console.log(found.hostPath, found.info.size);
 * ```
 */
export interface ResolvedPath {
  /** The real host path (no symbolic link left in it). */
  hostPath: string;
  /** Its `Deno.stat`. */
  info: Deno.FileInfo;
  /** The wire path's segments, `[]` for the root. */
  segments: string[];
}

/**
 * Resolves a wire path that must name an existing file or folder.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param wirePath The path from the request.
 * @returns The real host path and its info.
 * @throws {FerryError} `FORBIDDEN` if the path breaks a lexical rule or
 * resolves outside the root, `NOT_FOUND` if nothing is there.
 *
 * @example Resolve a file
 * ```ts ignore
 * import { resolveExisting } from "./path_jail.ts";
 * const found = await resolveExisting(await Deno.realPath("."), "docs/a.txt");
 * console.log(found.info.isFile);
 * ```
 */
export async function resolveExisting(
  realRoot: string,
  wirePath: string,
): Promise<ResolvedPath> {
  const segments = splitWirePath(wirePath);
  const joined = nodePath.join(realRoot, ...segments);
  const hostPath = await realPathOf(joined, wirePath);
  if (!isInside(realRoot, hostPath)) throw outside(wirePath);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(hostPath);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  return { hostPath, info, segments };
}

/**
 * {@linkcode resolveExisting} with synchronous calls (`Deno.realPathSync`,
 * `Deno.statSync`): the same checks, results and errors, without two hops
 * through the blocking-call thread pool. On a local file system these calls
 * take microseconds (the inode cache is warm for anything served often),
 * far less than one hop costs; a cold disk or a network file system can
 * stall the caller's event loop for the length of one metadata lookup.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param wirePath The path from the request.
 * @returns The real host path and its info.
 * @throws {FerryError} `FORBIDDEN` if the path breaks a lexical rule or
 * resolves outside the root, `NOT_FOUND` if nothing is there.
 *
 * @example Resolve a file
 * ```ts ignore
 * import { resolveExistingSync } from "./path_jail.ts";
 * const found = resolveExistingSync(Deno.realPathSync("."), "docs/a.txt");
 * console.log(found.info.isFile);
 * ```
 */
export function resolveExistingSync(
  realRoot: string,
  wirePath: string,
): ResolvedPath {
  const segments = splitWirePath(wirePath);
  const joined = nodePath.join(realRoot, ...segments);
  let hostPath: string;
  let info: Deno.FileInfo;
  try {
    hostPath = Deno.realPathSync(joined);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  if (!isInside(realRoot, hostPath)) throw outside(wirePath);
  try {
    info = Deno.statSync(hostPath);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  return { hostPath, info, segments };
}

/**
 * Where an upload may be written.
 *
 * @example Use a target
 * ```ts ignore
 * import { resolveTarget } from "./path_jail.ts";
 * const target = await resolveTarget(await Deno.realPath("."), "inbox/new.txt");
 * console.log(target.folder, target.existing === undefined);
 * ```
 */
export interface UploadTarget {
  /** Host path of the final file: the real parent folder joined with the name. */
  hostPath: string;
  /** Real host path of the parent folder (where a temporary file may go). */
  folder: string;
  /** The info of the file already there, or `undefined`. */
  existing: Deno.FileInfo | undefined;
  /** The wire path's segments, at least one. */
  segments: string[];
}

/**
 * Resolves the wire path of an upload: its parent folder must exist inside
 * the root, and the target must be absent or a regular file (not a symbolic
 * link, not a folder).
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param wirePath The path from the request.
 * @returns Where to write.
 * @throws {FerryError} `FORBIDDEN` if the path breaks a lexical rule, is the
 * root, resolves outside the root, or names a symbolic link or a folder;
 * `NOT_FOUND` if the parent folder is missing.
 *
 * @example Resolve an upload target
 * ```ts ignore
 * import { resolveTarget } from "./path_jail.ts";
 * const target = await resolveTarget(await Deno.realPath("."), "new.txt");
 * console.log(target.hostPath);
 * ```
 */
export async function resolveTarget(
  realRoot: string,
  wirePath: string,
): Promise<UploadTarget> {
  const segments = splitWirePath(wirePath);
  const name = segments.at(-1);
  if (name === undefined) {
    throw new FerryError("FORBIDDEN", "Cannot write the root folder");
  }
  const folder = await realPathOf(
    nodePath.join(realRoot, ...segments.slice(0, -1)),
    wirePath,
  );
  if (!isInside(realRoot, folder)) throw outside(wirePath);
  let folderInfo: Deno.FileInfo;
  try {
    folderInfo = await Deno.stat(folder);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  if (!folderInfo.isDirectory) {
    throw new FerryError(
      "NOT_FOUND",
      `Parent folder not found: ${printable(wirePath)}`,
    );
  }
  const hostPath = nodePath.join(folder, name);
  let existing: Deno.FileInfo | undefined;
  try {
    existing = await Deno.lstat(hostPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw fileSystemError(error, wirePath);
    }
  }
  if (existing?.isSymlink) {
    throw new FerryError(
      "FORBIDDEN",
      `Target is a symbolic link: ${printable(wirePath)}`,
    );
  }
  if (existing && !existing.isFile) {
    throw new FerryError(
      "FORBIDDEN",
      `Target is not a file: ${printable(wirePath)}`,
    );
  }
  return { hostPath, folder, existing, segments };
}

async function realPathOf(hostPath: string, wirePath: string): Promise<string> {
  try {
    return await Deno.realPath(hostPath);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
}

function outside(wirePath: string): FerryError {
  return new FerryError(
    "FORBIDDEN",
    `Path leaves the served folder: ${printable(wirePath)}`,
  );
}

/**
 * Maps a file system error to a wire error that names only the wire path.
 */
function fileSystemError(error: unknown, wirePath: string): Error {
  // node:fs errors (and Deno's for errnos without a class) carry the
  // errno name in `code`.
  const code = (error as { code?: unknown } | undefined)?.code;
  if (
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.NotADirectory ||
    error instanceof Deno.errors.FilesystemLoop ||
    code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP" ||
    code === "ENAMETOOLONG" // a name no file can have
  ) {
    return new FerryError("NOT_FOUND", `Not found: ${printable(wirePath)}`, {
      cause: error,
    });
  }
  if (
    error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.NotCapable ||
    code === "EACCES" || code === "EPERM"
  ) {
    return new FerryError(
      "FORBIDDEN",
      `Permission denied: ${printable(wirePath)}`,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Opens a file the jail resolved, without blocking and only if it is a
 * regular file (a FIFO, a device or a folder swapped in is refused at
 * once), and proves that the file opened is inside the root (see the module
 * doc, check 3).
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The resolved host path (`ResolvedPath.hostPath`).
 * @param wirePath The path from the request, for messages.
 * @returns The open file, read-only; the caller closes it.
 * @throws {FerryError} `FORBIDDEN` if the file opened is not a regular file
 * or not the one inside the root (a folder on the path was swapped),
 * `NOT_FOUND` if it vanished.
 *
 * @example Open a resolved file
 * ```ts ignore
 * import { openInside, resolveExisting } from "./path_jail.ts";
 * const root = await Deno.realPath(".");
 * const found = await resolveExisting(root, "README.md");
 * const file = await openInside(root, found.hostPath, "README.md");
 * file.close();
 * ```
 */
export async function openInside(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): Promise<HostFile> {
  let file: HostFile;
  try {
    file = openRegularForReading(hostPath, wirePath);
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw fileSystemError(error, wirePath);
  }
  try {
    await checkOpened(realRoot, hostPath, wirePath, file);
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Proves that a file just opened (or created) by `hostPath` is inside the
 * root: the check 3 of the module doc. With `/proc/self/fd` readable, the
 * kernel's name of the very descriptor must lie inside the root; otherwise
 * the name is resolved again and must lead to the same device and inode.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The host path the file was opened by.
 * @param wirePath The path from the request, for messages.
 * @param file The open file.
 * @returns The real host path of the file (where to remove it, if needed).
 * @throws {FerryError} `FORBIDDEN` if the file is not the one inside the
 * root, `NOT_FOUND` if its name vanished.
 *
 * @example Check a created file
 * ```ts ignore
 * import { checkOpened } from "./path_jail.ts";
 * import { createExclusive } from "./host_file.ts";
 * const root = await Deno.realPath(".");
 * const file = createExclusive(`${root}/new.part`);
 * await checkOpened(root, `${root}/new.part`, "new.part", file);
 * ```
 */
export async function checkOpened(
  realRoot: string,
  hostPath: string,
  wirePath: string,
  file: HostFile,
): Promise<string> {
  const opened = await file.stat();
  let where: string;
  let identity: { dev: number; ino: number | null };
  const kernel = kernelName(realRoot, file.fd);
  if (kernel !== undefined) {
    where = kernel;
    identity = opened;
  } else {
    where = await realPathOf(hostPath, wirePath);
    try {
      identity = await Deno.stat(where);
    } catch (error) {
      throw fileSystemError(error, wirePath);
    }
  }
  if (!isInside(realRoot, where)) throw outside(wirePath);
  if (
    identity.dev !== opened.dev ||
    (identity.ino !== null && opened.ino !== null &&
      identity.ino !== opened.ino)
  ) {
    throw new FerryError(
      "FORBIDDEN",
      `Path changed while it was opened: ${printable(wirePath)}`,
    );
  }
  return where;
}

/**
 * Removes a file the server created and still holds, wherever its name is
 * now (the kernel's name of the descriptor when `/proc/self/fd` is
 * readable, else `hostPath`), and only if that name is still this file
 * (same device and inode): a refused upload leaves nothing behind, and
 * never removes anything else. Errors are ignored.
 *
 * @param realRoot The served folder, for the `/proc` probe.
 * @param hostPath The host path the file was created by.
 * @param file The open file.
 * @returns Once removed (or found gone).
 *
 * @example Remove a file just created
 * ```ts ignore
 * import { removeOpened } from "./path_jail.ts";
 * import { createExclusive } from "./host_file.ts";
 * const file = createExclusive("/tmp/x.part");
 * await removeOpened("/tmp", "/tmp/x.part", file);
 * file.close();
 * ```
 */
export async function removeOpened(
  realRoot: string,
  hostPath: string,
  file: HostFile,
): Promise<void> {
  let opened: Deno.FileInfo;
  try {
    opened = await file.stat();
  } catch {
    return;
  }
  const kernel = kernelName(realRoot, file.fd);
  for (const path of kernel === undefined ? [hostPath] : [kernel, hostPath]) {
    try {
      const named = await Deno.lstat(path);
      if (named.dev === opened.dev && named.ino === opened.ino) {
        await Deno.remove(path);
        return;
      }
    } catch {
      // Gone, or not ours: try the other name.
    }
  }
}

/** The kernel's name of `fd`, or `undefined` where `/proc` cannot say. */
function kernelName(realRoot: string, fd: number): string | undefined {
  if (!procFdUsableSync(realRoot)) return undefined;
  try {
    const name = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    // An unlinked file reads as "path (deleted)": no usable name.
    return name.endsWith(" (deleted)") ? undefined : name;
  } catch {
    return undefined;
  }
}

/**
 * A file opened by {@linkcode openProvenSync} and proven to be inside the
 * root.
 *
 * @example Read a proven file
 * ```ts ignore
 * import { closeSync, readSync } from "node:fs";
 * import { openProvenSync } from "./path_jail.ts";
 * const root = Deno.realPathSync(".");
 * const proven = openProvenSync(root, `${root}/README.md`, "README.md");
 * const bytes = new Uint8Array(proven.info.size);
 * readSync(proven.fd, bytes, 0, bytes.length, 0);
 * closeSync(proven.fd);
 * ```
 */
export interface ProvenFile {
  /** The `node:fs` descriptor; the caller closes it with `closeSync`. */
  fd: number;
  /** The open file's own status (`fstat`) when it was proven. */
  info: Deno.FileInfo;
  /** The open file's status now (`fstat` again). */
  stat(): Deno.FileInfo;
  /**
   * Whether the kernel's name of the descriptor proved it (`/proc`), rather
   * than a second lookup of the name (which narrows the window only).
   */
  strict: boolean;
}

/**
 * Opens `hostPath` once, read-only, and proves that the file opened is
 * inside the root (check 3 of the module doc): on Linux with `/proc/self/fd`
 * readable (Deno grants it with `--allow-all` only), the kernel's name of
 * the descriptor must lie inside `realRoot`; elsewhere the name is resolved
 * again and must lead, inside the root, to the same device and inode. The
 * caller reads through that same descriptor. The calls are synchronous (see
 * {@linkcode resolveExistingSync} for why); the open uses `O_NONBLOCK` and
 * `O_NOCTTY`, so a name swapped for a FIFO or a terminal between the
 * caller's check and this open cannot block or take over anything (the
 * caller refuses it: `info.isFile` is false).
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath The resolved host path (`ResolvedPath.hostPath`).
 * @param wirePath The path from the request, for messages.
 * @returns The proven file.
 * @throws {FerryError} `FORBIDDEN` if the file opened is outside the root (a
 * folder on the path was swapped) or cannot be read, `NOT_FOUND` if it
 * vanished.
 *
 * @example Open a resolved file
 * ```ts ignore
 * import { closeSync } from "node:fs";
 * import { openProvenSync, resolveExistingSync } from "./path_jail.ts";
 * const root = Deno.realPathSync(".");
 * const found = resolveExistingSync(root, "README.md");
 * closeSync(openProvenSync(root, found.hostPath, "README.md").fd);
 * ```
 */
export function openProvenSync(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): ProvenFile {
  const strict = procFdUsableSync(realRoot);
  let fd: number;
  try {
    fd = openSync(hostPath, READ_FLAGS);
  } catch (error) {
    throw fileSystemError(error, wirePath);
  }
  try {
    let where: string;
    let info: Deno.FileInfo;
    let stat: () => Deno.FileInfo;
    try {
      if (strict) {
        const procPath = `/proc/self/fd/${fd}`;
        where = Deno.readLinkSync(procPath);
        stat = () => Deno.statSync(procPath);
        info = stat();
      } else {
        stat = () => fileInfoOf(fstatSync(fd));
        info = stat();
        where = Deno.realPathSync(hostPath);
        const named = Deno.statSync(where);
        if (
          named.dev !== info.dev ||
          (named.ino !== null && info.ino !== null && named.ino !== info.ino)
        ) {
          throw new FerryError(
            "FORBIDDEN",
            `Path changed while it was opened: ${printable(wirePath)}`,
          );
        }
      }
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw fileSystemError(error, wirePath);
    }
    if (!isInside(realRoot, where)) throw outside(wirePath);
    return { fd, info, stat, strict };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Whether `/proc/self/fd` reports the paths of descriptors under this root
 * faithfully, and can be read and stat'ed (Linux, and Deno grants it with
 * `--allow-all` only). Probed once per root.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @returns Whether {@linkcode kernelName} can prove where a file is.
 *
 * @example Ask once
 * ```ts
 * import { kernelNamesUsable } from "./path_jail.ts";
 * console.log(kernelNamesUsable(Deno.realPathSync(".")));
 * ```
 */
export function kernelNamesUsable(realRoot: string): boolean {
  return procFdUsableSync(realRoot);
}

/**
 * Whether `/proc/self/fd` reports the paths of descriptors under this root
 * faithfully, and can be read and stat'ed (the synchronous probe of
 * {@linkcode openProvenSync}; shares the answers with the asynchronous one).
 */
function procFdUsableSync(realRoot: string): boolean {
  if (Deno.build.os !== "linux") return false;
  let usable = procFdUsable.get(realRoot);
  if (usable !== undefined) return usable;
  usable = false;
  try {
    const fd = openSync(realRoot, READ_FLAGS);
    try {
      const procPath = `/proc/self/fd/${fd}`;
      usable = Deno.readLinkSync(procPath) === realRoot &&
        Deno.statSync(procPath).isDirectory;
    } finally {
      closeSync(fd);
    }
  } catch {
    usable = false; // no /proc, or no permission to read it
  }
  if (procFdUsable.size > 64) procFdUsable.clear();
  procFdUsable.set(realRoot, usable);
  return usable;
}

/** Real roots whose paths `/proc/self/fd` reports faithfully, or not. */
const procFdUsable = new Map<string, boolean>();
