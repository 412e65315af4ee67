/**
 * The one walk of a local folder tree, shared by `put -r` (`walkLocalTree`
 * in `_client/tree_put.ts`) and sync (`walkLocal` in `_client/sync_local.ts`):
 * names sorted, each folder before its contents, entries seen with `lstat`
 * so that a symbolic link is reported and never followed.
 *
 * @module
 */

import { localPath } from "./local_path.ts";
import { messageOf } from "../_common/text.ts";
import { segmentProblem } from "../_common/wire_path.ts";
import { type LocalStatus, nativeRead } from "./native_read.ts";

/**
 * What {@linkcode walkFolder} tells its caller, entry by entry, in walk order.
 *
 * @example Count files
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WalkVisitor } from "./local_walk.ts";
 * let files = 0;
 * const visitor: WalkVisitor = {
 *   entry: (_name, _path, info) => { if (info.isFile) files++; },
 *   skip: () => {},
 * };
 * assert(typeof visitor.entry === "function" && files === 0);
 * ```
 */
export interface WalkVisitor {
  /**
   * An entry found by `lstat` (file, folder, link or other), with its
   * relative `/`-separated name and local path; a folder is entered after
   * this call unless it is a link.
   */
  entry(name: string, path: string, info: LocalStatus): void;
  /**
   * An entry left out: a name the wire cannot carry (`badName` true), or a
   * folder that cannot be read.
   */
  skip(name: string, reason: string, badName: boolean): void;
}

/**
 * Walks the folder `root` (already known to be a folder) without following
 * symbolic links. Entries that vanish between the folder read and their
 * `lstat` are left out silently.
 *
 * lstat is synchronous: microseconds each on a local disk, against tens for
 * a hop through the thread pool; with `--allow-ffi` and unrestricted
 * `--allow-read` it is one libc call (`nativeRead().lstat`, a third of
 * `Deno.lstatSync`'s time: a tree of 10,000 files is walked before its
 * upload starts). Each folder is read asynchronously, so that
 * the event loop turns between folders (a sync walks while the server lists),
 * unless `blocking` is set: then synchronously too (`put -r` walks before
 * it sends anything; a hop per folder cost it ~40 ms of 1,000 files in 111
 * folders on a loaded machine).
 *
 * @param root The local folder.
 * @param visitor Told of each entry and each skip.
 * @param options `blocking`: read folders with synchronous calls (default
 * false).
 * @returns A promise that settles when the walk is done.
 * @throws {Error} Whatever reading `root` itself throws (sub-folders that
 * cannot be read are skipped instead).
 *
 * @example Walk a folder
 * ```ts ignore
 * import { walkFolder } from "./local_walk.ts";
 * await walkFolder("./docs", {
 *   entry: (name) => console.log(name),
 *   skip: (name, reason) => console.log(name, reason),
 * });
 * ```
 */
export async function walkFolder(
  root: string,
  visitor: WalkVisitor,
  options: { blocking?: boolean } = {},
): Promise<void> {
  const native = nativeRead();
  async function walk(folder: string, prefix: string): Promise<void> {
    const names: string[] = [];
    if (options.blocking) {
      for (const entry of Deno.readDirSync(folder)) names.push(entry.name);
    } else {
      for await (const entry of Deno.readDir(folder)) names.push(entry.name);
    }
    names.sort();
    // localPath.join(folder, name) for every name, normalized once.
    const under = localPath.join(folder, "_").slice(0, -1);
    for (const name of names) {
      const relative = prefix + name;
      const problem = segmentProblem(name);
      if (problem !== undefined) {
        visitor.skip(relative, `name not allowed (${problem})`, true);
        continue;
      }
      const path = under + name;
      let info: LocalStatus | undefined = native?.lstat(path);
      try {
        info ??= Deno.lstatSync(path);
      } catch {
        continue; // vanished since the folder was read
      }
      visitor.entry(relative, path, info);
      if (info.isSymlink || !info.isDirectory) continue;
      try {
        await walk(path, relative + "/");
      } catch (error) {
        visitor.skip(
          relative,
          `cannot read the folder: ${messageOf(error)}`,
          false,
        );
      }
    }
  }
  await walk(root, "");
}
