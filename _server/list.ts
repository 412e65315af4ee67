/**
 * The server's `LIST` and `STAT` handlers: folder listings (recursive ones
 * walked depth first, link cycles cut) and single entries. Upload
 * temporaries and names that cannot cross the wire are never listed.
 *
 * @module
 */

import * as nodePath from "node:path";
import { isInside, resolveExisting } from "./path_jail.ts";
import { segmentProblem } from "../_common/wire_path.ts";
import { mtimeOf, type ServerContext, type Session } from "./context.ts";
import { refuseTempName, TEMP_NAME } from "./temp.ts";
import { FerryError } from "../errors.ts";
import {
  AT_SYMLINK_NOFOLLOW,
  type EntryStatus,
  inFolder,
  type Libc,
  statInside,
  strictLibc,
} from "./dir_handle.ts";
import {
  encodeMessage,
  entriesFrameBytes,
  type Entry,
  entryBytes,
  FRAME_HEADER_BYTES,
  type ListMessage,
  MAX_FRAME_BYTES,
  MAX_PATH_BYTES,
  type StatMessage,
  writeAll,
} from "../protocol.ts";

const encoder = new TextEncoder();

/**
 * Payload bytes of an `ENTRIES` frame before it is sent (about 1,000
 * entries): a long listing goes out while the tree is still walked, so
 * that a client can prepare and request its first files meanwhile (a
 * whole frame, up to `MAX_FRAME_BYTES`, would hold 20,000 entries).
 */
const LIST_FRAME_BYTES = Math.min(32 * 1024, MAX_FRAME_BYTES);

/**
 * Payload bytes of the first `ENTRIES` frame (about 100 entries): the
 * client starts preparing its first files while the server walks on,
 * instead of waiting for a whole {@linkcode LIST_FRAME_BYTES} (most of a
 * tree of 1,000 files).
 */
const FIRST_LIST_FRAME_BYTES = 4 * 1024;

/** The entry of a served file or folder; undefined for anything else. */
function toEntry(name: string, info: Deno.FileInfo): Entry | undefined {
  if (info.isFile) {
    return { name, kind: "file", size: info.size, mtime: mtimeOf(info) };
  }
  if (info.isDirectory) {
    return { name, kind: "dir", size: 0, mtime: mtimeOf(info) };
  }
  return undefined; // sockets, pipes, devices are not served
}

/** {@linkcode toEntry} of a strict mode status. */
function entryOf(name: string, status: EntryStatus): Entry | undefined {
  if (status.isFile) {
    return { name, kind: "file", size: status.size, mtime: status.mtime };
  }
  if (status.isDirectory) {
    return { name, kind: "dir", size: 0, mtime: status.mtime };
  }
  return undefined;
}

/** Answers `STAT` with `INFO`. */
export async function handleStat(
  session: Session,
  context: ServerContext,
  message: StatMessage,
): Promise<void> {
  const found = await resolveExisting(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  const name = found.segments.at(-1) ?? "";
  const libc = strictLibc();
  let entry: Entry | undefined;
  if (libc === undefined) entry = toEntry(name, found.info);
  else {
    // Strict mode: the size and time come from the real path walked from
    // the root without following links, not from a name resolved earlier.
    try {
      entry = entryOf(
        name,
        statInside(libc, context.realRoot, found.hostPath, message.path),
      );
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw new FerryError("NOT_FOUND", `Not found: ${message.path}`, {
        cause: error,
      });
    }
  }
  if (!entry) {
    throw new FerryError("FORBIDDEN", `Not a file or folder: ${message.path}`);
  }
  await writeAll(session.conn, encodeMessage({ type: "info", entry }));
}

/** One listed name: its entry, its real host path, whether a link led there. */
export interface Child {
  entry: Entry;
  hostPath: string;
  link: boolean;
}

/** A folder whose children are being listed. */
interface ListFrame {
  prefix: string;
  children: Child[];
  next: number;
}

/**
 * Answers `LIST` with `ENTRIES` frames and `END` (or `ERROR` past
 * `maxListEntries`), walking the tree depth first when recursive.
 */
export async function handleList(
  session: Session,
  context: ServerContext,
  message: ListMessage,
): Promise<void> {
  const found = await resolveExisting(context.realRoot, message.path);
  if (!found.info.isDirectory) {
    throw new FerryError("NOT_FOUND", `Not a folder: ${message.path}`);
  }
  const emptyFrameBytes = entriesFrameBytes([]);
  let batch: Entry[] = [];
  let batchBytes = emptyFrameBytes;
  let count = 0;
  let frameBytes = FIRST_LIST_FRAME_BYTES;
  const flush = async () => {
    if (batch.length === 0) return;
    await writeAll(
      session.conn,
      encodeMessage({ type: "entries", entries: batch }),
    );
    batch = [];
    batchBytes = emptyFrameBytes;
    frameBytes = LIST_FRAME_BYTES;
  };
  /** Adds an entry; false if it does not fit the batch (flush, then again). */
  const add = (entry: Entry): boolean => {
    if (count >= context.limits.maxListEntries) {
      // The entries sent so far stand; ERROR comes instead of END.
      throw new FerryError(
        "TOO_LARGE",
        `Listing has more than ${context.limits.maxListEntries} entries`,
      );
    }
    const size = entryBytes(entry);
    if (
      batch.length > 0 &&
      batchBytes + size > FRAME_HEADER_BYTES + frameBytes
    ) return false;
    batch.push(entry);
    batchBytes += size;
    count++;
    return true;
  };
  // Depth first, each folder right before its contents. A linked folder
  // whose target lies in the listed tree is shown but not entered (its
  // contents appear under their real place), and every real folder is
  // entered at most once, so link cycles and diamonds end.
  const entered = new Set<string>([found.hostPath]);
  const stack: ListFrame[] = [{
    prefix: "",
    children: await readChildren(context.realRoot, found.hostPath),
    next: 0,
  }];
  while (stack.length > 0) {
    const frame = stack.at(-1)!;
    if (frame.next >= frame.children.length) {
      stack.pop();
      continue;
    }
    const child = frame.children[frame.next++];
    const name = frame.prefix + child.entry.name;
    // Too long a name to put on the wire (a UTF-16 unit is at most 3 bytes
    // of UTF-8: most names need no encoding to tell).
    if (
      name.length * 3 > MAX_PATH_BYTES &&
      encoder.encode(name).length > MAX_PATH_BYTES
    ) {
      continue;
    }
    const entry = { ...child.entry, name };
    if (!add(entry)) {
      await flush();
      add(entry);
    }
    if (!message.recursive || child.entry.kind !== "dir") continue;
    if (child.link && isInside(found.hostPath, child.hostPath)) continue;
    if (entered.has(child.hostPath)) continue;
    entered.add(child.hostPath);
    let children: Child[];
    try {
      children = await readChildren(context.realRoot, child.hostPath);
    } catch {
      continue; // an unreadable subfolder is listed but not entered
    }
    stack.push({ prefix: name + "/", children, next: 0 });
  }
  await flush();
  await writeAll(session.conn, encodeMessage({ type: "end", count }));
}

/**
 * Reads a folder: entries with servable names, symbolic links resolved to
 * their targets (and dropped when those lie outside the root or are
 * missing), folders first, then by name. The HTTP face's listing uses it
 * too, so both faces list the same entries. In strict mode (see
 * `_server/dir_handle.ts`) each name read is looked up with `fstatat` in the
 * folder opened from the root without following links, so a folder swapped
 * for a link while it is read yields no outside name or size. `libc` is
 * strict mode's binding (`undefined`: by path); tests pass their own.
 */
export async function readChildren(
  realRoot: string,
  folder: string,
  libc: Libc | undefined = strictLibc(),
): Promise<Child[]> {
  if (libc !== undefined) return await readChildrenAt(libc, realRoot, folder);
  const children: Child[] = [];
  for await (const dirEntry of Deno.readDir(folder)) {
    const name = dirEntry.name;
    if (segmentProblem(name) !== undefined || TEMP_NAME.test(name)) continue;
    let hostPath = nodePath.join(folder, name);
    // Synchronous calls: a few microseconds each, against tens for a hop
    // through the thread pool; the folder is read in batches, and each
    // batch waits on the event loop, so other connections keep their turn.
    try {
      if (dirEntry.isSymlink) {
        hostPath = Deno.realPathSync(hostPath);
        if (!isInside(realRoot, hostPath)) continue;
      }
      const entry = toEntry(name, Deno.statSync(hostPath));
      if (entry) children.push({ entry, hostPath, link: dirEntry.isSymlink });
    } catch {
      // Vanished, dangling, looping or unreadable: not listed.
    }
  }
  return sortChildren(children);
}

/**
 * Strict mode's {@linkcode readChildren}: the folder is held open from the
 * root, and its names are read from that descriptor (`getdents64`) and
 * looked up there with `fstatat`, so a folder swapped for a link while it
 * is read yields no outside name or size. A link is resolved by name, and
 * its target's status read again from the root ({@linkcode statInside}).
 * Where libc cannot read a descriptor's names, they are read by path, and
 * only those that `fstatat` finds in the held folder are listed.
 */
async function readChildrenAt(
  libc: Libc,
  realRoot: string,
  folder: string,
): Promise<Child[]> {
  const children: Child[] = [];
  const listed = inFolder(libc, realRoot, folder, "", (fd) => {
    let names: string[] | undefined;
    try {
      names = libc.namesIn(fd);
    } catch (error) {
      throw vanishedFolder(error);
    }
    if (names === undefined) return false;
    statChildren(libc, realRoot, folder, fd, names, children);
    return true;
  });
  if (listed) return sortChildren(children);
  const names: string[] = [];
  try {
    for await (const dirEntry of Deno.readDir(folder)) {
      names.push(dirEntry.name);
    }
  } catch (error) {
    throw vanishedFolder(error);
  }
  inFolder(libc, realRoot, folder, "", (fd) => {
    statChildren(libc, realRoot, folder, fd, names, children);
  });
  return sortChildren(children);
}

/**
 * What a failed read of a folder's names throws: `NOT_FOUND` ("Folder
 * vanished") where the folder was deleted or swapped for a file while it
 * was read (`getdents64` on a deleted folder fails with `ENOENT`), else
 * `error` itself.
 */
function vanishedFolder(error: unknown): unknown {
  if (
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.NotADirectory
  ) return new FerryError("NOT_FOUND", "Folder vanished", { cause: error });
  return error;
}

/**
 * Adds to `children` each of `names` (servable names only) with its status
 * in the folder `fd` (the real path `folder`); a name missing there, or a
 * link leading out of the root or nowhere, is left out.
 */
function statChildren(
  libc: Libc,
  realRoot: string,
  folder: string,
  fd: number,
  names: readonly string[],
  children: Child[],
): void {
  // `folder` is a real path and each name one checked segment: joined as
  // they are (this runs on Linux only).
  const prefix = folder.endsWith("/") ? folder : `${folder}/`;
  for (const name of names) {
    if (segmentProblem(name) !== undefined || TEMP_NAME.test(name)) continue;
    let hostPath = prefix + name;
    try {
      let status = libc.statAt(fd, name, AT_SYMLINK_NOFOLLOW);
      const link = status.isSymlink;
      if (link) {
        hostPath = Deno.realPathSync(hostPath);
        if (!isInside(realRoot, hostPath)) continue;
        status = statInside(libc, realRoot, hostPath, "");
      }
      const entry = entryOf(name, status);
      if (entry) children.push({ entry, hostPath, link });
    } catch {
      // Vanished, dangling, looping, unreadable or swapped: not listed.
    }
  }
}

/** Folders first, then by name. */
function sortChildren(children: Child[]): Child[] {
  return children.sort((a, b) =>
    a.entry.kind !== b.entry.kind
      ? (a.entry.kind === "dir" ? -1 : 1)
      : a.entry.name < b.entry.name
      ? -1
      : a.entry.name > b.entry.name
      ? 1
      : 0
  );
}
