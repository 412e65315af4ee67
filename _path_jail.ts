/**
 * The root jail: maps a `/`-separated wire path to a host path inside the
 * folder a server serves, or refuses it with a {@linkcode FerryError}.
 *
 * Two kinds of check run, in this order:
 *
 * 1. **Lexical** ({@linkcode splitWirePath}): no empty, `.` or `..`
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
 *
 * Error messages name the wire path only, never a host path.
 *
 * @module
 */

import * as nodePath from "node:path";
import { FerryError } from "./errors.ts";
import { MAX_PATH_BYTES } from "./protocol.ts";

const IS_WINDOWS = Deno.build.os === "windows";
const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const CONTROL_BYTE = /[\x00-\x1f\x7f]/;
// deno-lint-ignore no-control-regex
const CONTROL_BYTES = /[\x00-\x1f\x7f]/g;
const DRIVE_LETTER = /^[A-Za-z]:/;
const DEVICE_NAME = /^(CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³])\s*(\..*)?$/i;

/**
 * Options of {@linkcode splitWirePath} and {@linkcode segmentProblem}.
 *
 * @example Check a path by Windows rules on any system
 * ```ts
 * import type { JailOptions } from "./_path_jail.ts";
 * const options: JailOptions = { windows: true };
 * console.assert(options.windows);
 * ```
 */
export interface JailOptions {
  /**
   * Apply the Windows-only rules (no `:` anywhere, no segment ending in a
   * dot or a space).
   *
   * @default {Deno.build.os === "windows"}
   */
  windows?: boolean;
}

/**
 * Says why one path segment (a file or folder name) is not allowed.
 *
 * @param segment One name, without `/`.
 * @param options Which operating system's rules apply.
 * @returns A short reason, or `undefined` when the name is allowed.
 *
 * @example Refuse a device name
 * ```ts
 * import { segmentProblem } from "./_path_jail.ts";
 * console.assert(segmentProblem("notes.txt") === undefined);
 * console.assert(segmentProblem("con.txt") !== undefined);
 * console.assert(segmentProblem("..") !== undefined);
 * ```
 */
export function segmentProblem(
  segment: string,
  options: JailOptions = {},
): string | undefined {
  const windows = options.windows ?? IS_WINDOWS;
  if (segment === "") return "empty segment";
  if (segment === "." || segment === "..") return "dot segment";
  if (CONTROL_BYTE.test(segment)) return "control character";
  if (segment.includes("\\")) return "backslash";
  if (segment.includes("/")) return "slash in a name";
  if (DEVICE_NAME.test(segment)) return "device name";
  if (windows) {
    if (segment.includes(":")) return "colon";
    // Windows drops trailing dots and spaces, so "x." would alias "x".
    if (/[. ]$/.test(segment)) return "trailing dot or space";
  }
  return undefined;
}

/**
 * Checks a wire path by the lexical rules and splits it into segments.
 *
 * @param wirePath A `/`-separated relative path; `""` is the root.
 * @param options Which operating system's rules apply.
 * @returns The segments, `[]` for the root.
 * @throws {FerryError} `FORBIDDEN` if the path breaks a rule.
 *
 * @example Split a path, refuse an escape
 * ```ts
 * import { splitWirePath } from "./_path_jail.ts";
 * console.assert(splitWirePath("docs/a.txt").length === 2);
 * console.assert(splitWirePath("").length === 0);
 * try {
 *   splitWirePath("../etc/passwd");
 *   console.assert(false);
 * } catch (error) {
 *   console.assert((error as { code: string }).code === "FORBIDDEN");
 * }
 * ```
 */
export function splitWirePath(
  wirePath: string,
  options: JailOptions = {},
): string[] {
  if (wirePath === "") return [];
  const windows = options.windows ?? IS_WINDOWS;
  let problem: string | undefined;
  if (encoder.encode(wirePath).length > MAX_PATH_BYTES) {
    problem = `longer than ${MAX_PATH_BYTES} bytes`;
  } else if (wirePath.startsWith("/")) {
    problem = "absolute path";
  } else if (DRIVE_LETTER.test(wirePath)) {
    problem = "drive letter";
  }
  const segments = problem === undefined ? wirePath.split("/") : [];
  for (const segment of segments) {
    problem = segmentProblem(segment, { windows });
    if (problem !== undefined) break;
  }
  if (problem !== undefined) {
    throw new FerryError(
      "FORBIDDEN",
      `Path not allowed (${problem}): ${printable(wirePath)}`,
    );
  }
  return segments;
}

/**
 * Whether `candidate` (a real path) is `realRoot` or lies inside it.
 *
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param candidate Another real path.
 * @returns `true` when inside.
 *
 * @example Compare two paths
 * ```ts
 * import { isInside } from "./_path_jail.ts";
 * console.assert(isInside("/srv/files", "/srv/files/a.txt"));
 * console.assert(!isInside("/srv/files", "/srv/files2/a.txt"));
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
 * import { resolveExisting } from "./_path_jail.ts";
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
 * import { resolveExisting } from "./_path_jail.ts";
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
 * Where an upload may be written.
 *
 * @example Use a target
 * ```ts ignore
 * import { resolveTarget } from "./_path_jail.ts";
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
 * import { resolveTarget } from "./_path_jail.ts";
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
  if (
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.NotADirectory ||
    error instanceof Deno.errors.FilesystemLoop
  ) {
    return new FerryError("NOT_FOUND", `Not found: ${printable(wirePath)}`, {
      cause: error,
    });
  }
  if (
    error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.NotCapable
  ) {
    return new FerryError(
      "FORBIDDEN",
      `Permission denied: ${printable(wirePath)}`,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** The path for a message, with control bytes shown as escapes, cut at 200. */
function printable(wirePath: string): string {
  const cut = wirePath.length > 200 ? wirePath.slice(0, 200) + "…" : wirePath;
  return cut.replace(
    CONTROL_BYTES,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
