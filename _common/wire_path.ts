/**
 * Lexical rules for wire paths, shared by both sides: the server refuses a
 * request path that breaks them before touching the file system, and the
 * client refuses to write a name from a listing that breaks them.
 *
 * No empty, `.` or `..` segment (so no leading, trailing or double `/`), no
 * backslash, no NUL or other control byte (0x00-0x1f, 0x7f), no drive letter
 * at the start, no `:` at all on Windows, no Windows device name (`CON`,
 * `PRN`, `AUX`, `NUL`, `COM1`-`COM9`, `LPT1`-`LPT9`, with or without an
 * extension, in any case) on any operating system, and at most
 * `MAX_PATH_BYTES` bytes.
 *
 * @module
 */

import { escapeControls } from "./escape.ts";
import { FerryError } from "../errors.ts";
import { MAX_PATH_BYTES } from "../protocol.ts";

const IS_WINDOWS = Deno.build.os === "windows";
const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const CONTROL_BYTE = /[\x00-\x1f\x7f]/;
const DRIVE_LETTER = /^[A-Za-z]:/;
const DEVICE_NAME = /^(CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³])\s*(\..*)?$/i;
/**
 * Anything in a whole path that some rule may refuse: a control byte, a
 * backslash, an empty, `.` or `..` segment, a device name as a segment.
 * A path without any (nearly every one) needs no rule checked one by one.
 */
const SUSPECT =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f\\]|(?:^|\/)\.{0,2}(?:\/|$)|(?:^|\/)(?:CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³])\s*(?:\.[^/]*)?(?:\/|$)/i;
/** What the Windows rules may refuse in a whole path. */
const SUSPECT_ON_WINDOWS = /:|[. ](?:\/|$)/;

/**
 * Options of {@linkcode splitWirePath} and {@linkcode segmentProblem}.
 *
 * @example Check a path by Windows rules on any system
 * ```ts
 * import assert from "node:assert/strict";
 * import type { JailOptions } from "./wire_path.ts";
 * const options: JailOptions = { windows: true };
 * assert(options.windows);
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
 * import assert from "node:assert/strict";
 * import { segmentProblem } from "./wire_path.ts";
 * assert(segmentProblem("notes.txt") === undefined);
 * assert(segmentProblem("con.txt") !== undefined);
 * assert(segmentProblem("..") !== undefined);
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
 * import assert from "node:assert/strict";
 * import { splitWirePath } from "./wire_path.ts";
 * assert(splitWirePath("docs/a.txt").length === 2);
 * assert(splitWirePath("").length === 0);
 * try {
 *   splitWirePath("../etc/passwd");
 *   assert(false);
 * } catch (error) {
 *   assert((error as { code: string }).code === "FORBIDDEN");
 * }
 * ```
 */
export function splitWirePath(
  wirePath: string,
  options: JailOptions = {},
): string[] {
  if (wirePath === "") return [];
  const windows = options.windows ?? IS_WINDOWS;
  // The usual path: short enough whatever its characters (at most three
  // UTF-8 bytes per UTF-16 unit), no drive letter, nothing suspect.
  if (
    wirePath.length * 3 <= MAX_PATH_BYTES && wirePath.charCodeAt(1) !== 58 &&
    !SUSPECT.test(wirePath) && !(windows && SUSPECT_ON_WINDOWS.test(wirePath))
  ) {
    return wirePath.split("/");
  }
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
 * A wire path for a message: control bytes shown as `\\xNN` escapes, cut at
 * 200 characters.
 *
 * @param wirePath Any path, from any peer.
 * @returns Text safe to put in a message.
 */
export function printable(wirePath: string): string {
  const cut = wirePath.length > 200 ? wirePath.slice(0, 200) + "…" : wirePath;
  return escapeControls(cut);
}
