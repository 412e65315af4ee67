/**
 * `join`, `resolve` and `sep` of local paths, as `node:path` has them,
 * without loading `node:path` on POSIX systems: evaluating it (with the
 * `assert` and `util` modules it pulls in) costs a tree download 20 ms of
 * CPU at every start (`perf stat`: 44 against 23 ms for a script that
 * imports it or not). On Windows, `node:path` itself is used.
 *
 * @module
 */

/** The functions of `node:path` this module stands in for. */
interface LocalPathApi {
  join(...paths: string[]): string;
  resolve(...paths: string[]): string;
  sep: string;
}

/**
 * `node:path`'s POSIX `normalize` of a non-empty path: `.` and empty
 * segments dropped, `..` taken back where it can be, a trailing `/` kept.
 */
function normalizePosix(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(segment);
  }
  let joined = out.join("/");
  if (joined === "" && !absolute) joined = ".";
  if (path.endsWith("/") && joined !== "" && joined !== ".") joined += "/";
  else if (path.endsWith("/") && joined === "." && path !== "/") joined = "./";
  return absolute ? `/${joined}` : joined;
}

const POSIX: LocalPathApi = {
  join(...paths: string[]): string {
    const joined = paths.filter((path) => path !== "").join("/");
    return joined === "" ? "." : normalizePosix(joined);
  },
  resolve(...paths: string[]): string {
    let resolved = "";
    for (let i = paths.length - 1; i >= 0 && !resolved.startsWith("/"); i--) {
      if (paths[i] === "") continue;
      resolved = resolved === "" ? paths[i] : `${paths[i]}/${resolved}`;
    }
    if (!resolved.startsWith("/")) {
      resolved = resolved === "" ? Deno.cwd() : `${Deno.cwd()}/${resolved}`;
    }
    const normal = normalizePosix(resolved);
    return normal.length > 1 && normal.endsWith("/")
      ? normal.slice(0, -1)
      : normal;
  },
  sep: "/",
};

/**
 * `join`, `resolve` and `sep` for this system's local paths.
 *
 * @example Join and resolve
 * ```ts
 * import assert from "node:assert/strict";
 * import { localPath } from "./local_path.ts";
 * if (Deno.build.os !== "windows") {
 *   assert.equal(localPath.join("a/", "./b", "../c"), "a/c");
 *   assert.equal(localPath.resolve("/x", "y/.."), "/x");
 * }
 * ```
 */
export const localPath: LocalPathApi = Deno.build.os === "windows"
  ? await import("node:path")
  : POSIX;
