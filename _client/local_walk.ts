/**
 * The walks of a local folder tree, for `put -r` (`walkFoldersFirst`, used by
 * `putTree` in `_client/tree_put.ts`) and sync (`walkFolder`, used by
 * `walkLocal` in `_client/sync_local.ts`): names sorted, each folder before
 * its contents, entries seen with `lstat` so that a symbolic link is
 * reported and never followed.
 *
 * @module
 */

import { localPath } from "./local_path.ts";
import { messageOf } from "../_common/text.ts";
import { segmentProblem } from "../_common/wire_path.ts";
import { DT_REG } from "../_common/dirents.ts";
import {
  type LocalStatus,
  type NativeRead,
  nativeRead,
} from "./native_read.ts";

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
  entry(
    name: string,
    path: string,
    info: LocalStatus,
    at?: HeldName,
  ): void;
  /**
   * An entry left out: a name the wire cannot carry (`badName` true), or a
   * folder that cannot be read.
   */
  skip(name: string, reason: string, badName: boolean): void;
}

/**
 * Where {@linkcode walkFoldersFirst} found a file with libc: `name` in the
 * folder it holds open as `folder.fd` while the walk stands at that file
 * (-1 once the walk has moved on and closed it). Reading the file there
 * (`NativeRead.readWholeAt`, `openFileAt`) never goes through a link put in
 * place of one of its folders.
 *
 * @example Read a file where the walk found it
 * ```ts ignore
 * import type { HeldName } from "./local_walk.ts";
 * import { nativeRead } from "./native_read.ts";
 * declare const at: HeldName;
 * nativeRead()!.readWholeAt(at.folder.fd, at.name, new Uint8Array(16));
 * ```
 */
export interface HeldName {
  /** The folder's descriptor while held, then -1. */
  readonly folder: { fd: number };
  /** The file's name in it. */
  readonly name: string;
}

/**
 * Walks the folder `root` (already known to be a folder) without following
 * symbolic links. Entries that vanish between the folder read and their
 * `lstat` are left out silently.
 *
 * lstat is synchronous: microseconds each on a local disk, against tens for
 * a hop through the thread pool; with `--allow-ffi` and unrestricted
 * `--allow-read` it is one libc call (`nativeRead().lstat`, a third of
 * `Deno.lstatSync`'s time). Each folder is read asynchronously, so that
 * the event loop turns between folders (a sync walks while the server
 * lists).
 *
 * @param root The local folder.
 * @param visitor Told of each entry and each skip.
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
): Promise<void> {
  const native = nativeRead();
  async function walk(folder: string, prefix: string): Promise<void> {
    const names: string[] = [];
    for await (const entry of Deno.readDir(folder)) names.push(entry.name);
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
      const info = statEntry(native, path);
      if (info === undefined) continue; // vanished since the folder was read
      visitor.entry(relative, path, info);
      if (info.isSymlink || !info.isDirectory) continue;
      try {
        await walk(path, relative + "/");
      } catch (error) {
        skipUnreadable(visitor, relative, error);
      }
    }
  }
  await walk(root, "");
}

/**
 * A folder as the first pass of {@linkcode walkFoldersFirst} read it: its
 * names in order, each a file left for the second pass (a string) or a
 * folder already walked.
 */
interface Listed {
  /** Its name in its parent folder ("" for the top). */
  name: string;
  under: string;
  prefix: string;
  entries: (string | Listed)[];
  /** Which folder was read (device, inode), where known. */
  dev: number | undefined;
  ino: number | null | undefined;
}

/**
 * Walks the folder `root` (already known to be a folder) in two passes, so
 * that a caller can act on the files while the walk still goes on: the
 * call itself reads every folder of the tree and reports, in walk order,
 * every entry that is not a plain file (folders, links, others, names not
 * allowed, folders that cannot be read); the generator it returns then
 * reports the files, one per step, in walk order. Entries are seen as
 * {@linkcode walkFolder} sees them (`lstat`, links never followed): the
 * first pass takes a name the folder read calls a regular file as a file
 * without asking; the second takes the file's status, and reports whatever
 * it finds (an entry that vanished is left out silently; one that became
 * a folder is walked then, its contents reported in order). A folder
 * that is no longer the one read (swapped for a link or another folder
 * since: its device and inode differ) is skipped, the rest of its files
 * with it, before its files' statuses are taken and between its
 * sub-folders: they would be looked up through whatever replaced it.
 * Sub-folders are opened with `O_NOFOLLOW`; `root` may be a link. With
 * libc (`nativeRead`, `getdents64`), each sub-folder is opened in its
 * parent's descriptor (`openat`), never by its path, in both passes: the
 * first holds a folder open while it reads its sub-folders, the second
 * while it reports its files (one descriptor per level, closed when the
 * generator ends or is returned early), and tells of each file where it
 * is held (`HeldName`), for the caller to read it there: a parent folder
 * swapped for a link is never gone through. Without libc, everything is
 * by path (a parent swapped between two checks can still be followed).
 *
 * Everything is synchronous: `put -r` walks before and between its sends,
 * and a hop through the thread pool per folder cost it ~40 ms of 1,000
 * files in 111 folders on a loaded machine.
 *
 * @param root The local folder.
 * @param visitor Told of each entry and each skip.
 * @returns The second pass: each step reports one file (or what it became).
 * @throws {Error} Whatever reading `root` itself throws (sub-folders that
 * cannot be read are skipped instead).
 *
 * @example Count the folders, then the files
 * ```ts
 * import assert from "node:assert/strict";
 * import { walkFoldersFirst } from "./local_walk.ts";
 * const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
 * try {
 *   await Deno.mkdir(`${root}/a`);
 *   await Deno.writeTextFile(`${root}/a/b.txt`, "b");
 *   const seen: string[] = [];
 *   const files = walkFoldersFirst(root, {
 *     entry: (name) => seen.push(name),
 *     skip: () => {},
 *   });
 *   assert.deepEqual(seen, ["a"]);
 *   for (const _ of files) seen.push("step");
 *   assert.deepEqual(seen, ["a", "a/b.txt", "step"]);
 * } finally {
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 */
export function walkFoldersFirst(
  root: string,
  visitor: WalkVisitor,
): Generator<void, void, undefined> {
  const native = nativeRead();
  // With libc, every folder below the top is opened in its parent's
  // descriptor (openat, O_NOFOLLOW), in both passes: a parent swapped for a
  // link is never gone through.
  const libc = native?.readsFolders ? native : undefined;
  /**
   * Reads a folder: `parent` and `name` with libc (`parent` undefined for
   * the top, opened by path), else by path.
   */
  function read(
    folder: string,
    prefix: string,
    name: string,
    parent: number | undefined,
  ): Listed {
    if (libc === undefined) return readByPath(folder, prefix, name);
    const open = parent === undefined
      ? libc.openFolder(folder, true)
      : libc.openFolderAt(parent, name);
    if (open === undefined) {
      if (parent === undefined) {
        folderNames(undefined, folder, true); // throws why
      }
      throw new Deno.errors.NotFound("not a folder (or replaced) when opened");
    }
    try {
      const got = libc.readFolderAt(open.fd);
      if (got === undefined) throw new Error("the folder read failed");
      const others = new Set<string>();
      for (let i = 0; i < got.names.length; i++) {
        if (got.types[i] !== DT_REG) others.add(got.names[i]);
      }
      return list(folder, prefix, name, {
        ...got,
        others,
        dev: open.dev,
        ino: open.ino,
      }, open.fd);
    } finally {
      libc.close(open.fd);
    }
  }
  function readByPath(folder: string, prefix: string, name: string): Listed {
    return list(
      folder,
      prefix,
      name,
      folderNames(native, folder, prefix === ""),
      undefined,
    );
  }
  /** The folder's entries; its sub-folders read (in `fd` with libc). */
  function list(
    folder: string,
    prefix: string,
    own: string,
    found: ReturnType<typeof folderNames>,
    fd: number | undefined,
  ): Listed {
    const { names, others, undecodable, dev, ino } = found;
    for (const name of undecodable) {
      visitor.skip(prefix + name, "name is not UTF-8", true);
    }
    names.sort();
    // localPath.join(folder, name) for every name, normalized once.
    const under = localPath.join(folder, "_").slice(0, -1);
    const listed: Listed = { name: own, under, prefix, entries: [], dev, ino };
    for (const name of names) {
      const relative = prefix + name;
      const problem = segmentProblem(name);
      if (problem !== undefined) {
        visitor.skip(relative, `name not allowed (${problem})`, true);
        continue;
      }
      if (!others.has(name)) {
        listed.entries.push(name);
        continue;
      }
      const folder = enter(relative, under, name, fd);
      if (folder !== undefined) listed.entries.push(folder);
    }
    return listed;
  }
  /** Reports an entry; a folder is read, and returned. */
  function enter(
    relative: string,
    under: string,
    name: string,
    fd: number | undefined,
  ): Listed | undefined {
    const path = under + name;
    const info = fd !== undefined
      ? libc!.lstatAt(fd, name)
      : statEntry(native, path);
    if (info === undefined) return undefined; // vanished since the read
    visitor.entry(relative, path, info);
    return info.isSymlink || !info.isDirectory
      ? undefined
      : readOrSkip(relative, path, name, fd);
  }
  /** Reads a folder found by `lstat`; one that cannot be read is skipped. */
  function readOrSkip(
    relative: string,
    path: string,
    name: string,
    parent: number | undefined,
  ): Listed | undefined {
    try {
      return read(path, relative + "/", name, parent);
    } catch (error) {
      skipUnreadable(visitor, relative, error);
      return undefined;
    }
  }
  /** Reports `listed`'s folder skipped: it is no longer the one read. */
  function skipChanged(listed: Listed): void {
    visitor.skip(
      listed.prefix === "" ? "." : listed.prefix.slice(0, -1),
      "the folder changed while it was read (replaced or removed)",
      false,
    );
  }
  /**
   * With libc, `listed`'s folder opened again (the top by path, any other
   * in its parent's descriptor `parent`; its files are then looked up in
   * it), if it is still the one read; `undefined` (and skipped) if not.
   */
  function hold(
    listed: Listed,
    parent: number | undefined,
  ): number | undefined {
    const open = parent === undefined
      ? libc!.openFolder(root, true)
      : libc!.openFolderAt(parent, listed.name);
    if (
      open !== undefined && open.dev === listed.dev && open.ino === listed.ino
    ) return open.fd;
    if (open !== undefined) libc!.close(open.fd);
    skipChanged(listed);
    return undefined;
  }
  /** Whether `listed`'s folder is still the one read; if not, skipped. */
  function unchanged(listed: Listed): boolean {
    const top = listed.prefix === "";
    const path = top ? listed.under : listed.under.slice(0, -1);
    let info: LocalStatus | undefined;
    try {
      info = top ? Deno.statSync(path) : statEntry(native, path);
    } catch {
      // gone: as below
    }
    if (
      info !== undefined && info.isDirectory && !info.isSymlink &&
      (listed.dev === undefined || info.dev === undefined ||
        (info.dev === listed.dev && info.ino === listed.ino))
    ) return true;
    skipChanged(listed);
    return false;
  }
  function* files(
    listed: Listed,
    parent: number | undefined,
  ): Generator<void, void, undefined> {
    if (libc === undefined) {
      if (unchanged(listed)) yield* filesIn(listed, undefined);
      return;
    }
    const fd = hold(listed, parent);
    if (fd === undefined) return;
    const folder = { fd };
    try {
      yield* filesIn(listed, folder);
    } finally {
      folder.fd = -1;
      libc.close(fd);
    }
  }
  /** The files of `listed`, looked up in `held` (by path without libc). */
  function* filesIn(
    listed: Listed,
    held: { fd: number } | undefined,
  ): Generator<void, void, undefined> {
    const fd = held?.fd;
    for (const entry of listed.entries) {
      if (typeof entry !== "string") {
        yield* files(entry, fd);
        if (fd === undefined && !unchanged(listed)) return;
        continue;
      }
      const path = listed.under + entry;
      const info = fd !== undefined
        ? libc!.lstatAt(fd, entry)
        : statEntry(native, path);
      if (info === undefined) continue; // vanished since the read
      visitor.entry(
        listed.prefix + entry,
        path,
        info,
        held && { folder: held, name: entry },
      );
      yield;
      if (info.isDirectory && !info.isSymlink) {
        // A file that became a folder: walked now, in its place.
        const folder = readOrSkip(listed.prefix + entry, path, entry, fd);
        if (folder !== undefined) yield* files(folder, fd);
      }
    }
  }
  return files(read(root, "", "", undefined), undefined);
}

/**
 * The names in a folder, and those of them the folder read does not call
 * regular files: with libc one `getdents64` per 32 KiB of records and no
 * object per entry. Measured: the names (and kinds) of 10,000 files in 100
 * folders on tmpfs, read once in a fresh process, took 14–17 ms this way
 * against 19–34 ms with `Deno.readDirSync` (3 runs each, load ~1).
 */
function folderNames(
  native: NativeRead | undefined,
  folder: string,
  follow: boolean,
): {
  names: string[];
  others: Set<string>;
  undecodable: string[];
  dev: number | undefined;
  ino: number | null | undefined;
} {
  const others = new Set<string>();
  const read = native?.readFolder(folder, follow);
  if (read !== undefined) {
    const { names, types, undecodable, dev, ino } = read;
    for (let i = 0; i < names.length; i++) {
      if (types[i] !== DT_REG) others.add(names[i]);
    }
    return { names, others, undecodable, dev, ino };
  }
  // By path: the folder's identity as seen just before its names.
  const info = follow ? Deno.statSync(folder) : Deno.lstatSync(folder);
  if (info.isSymlink) {
    throw new Deno.errors.FilesystemLoop("a link, not a folder");
  }
  const names: string[] = [];
  const undecodable: string[] = [];
  for (const entry of Deno.readDirSync(folder)) {
    // Deno names a name that is not UTF-8 with U+FFFD for its bad bytes:
    // a name that then cannot be found is one of those.
    if (entry.name.includes("\uFFFD") && !exists(`${folder}/${entry.name}`)) {
      undecodable.push(entry.name);
      continue;
    }
    names.push(entry.name);
    if (!entry.isFile) others.add(entry.name);
  }
  return { names, others, undecodable, dev: info.dev, ino: info.ino };
}

/** Whether `path` names an entry (a link is not followed). */
function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Reports a folder that cannot be read. */
function skipUnreadable(
  visitor: WalkVisitor,
  relative: string,
  error: unknown,
): void {
  visitor.skip(relative, `cannot read the folder: ${messageOf(error)}`, false);
}

/** An entry's own status, or `undefined` if it vanished. */
function statEntry(
  native: NativeRead | undefined,
  path: string,
): LocalStatus | undefined {
  const info = native?.lstat(path);
  if (info !== undefined) return info;
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}
