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

/** Answers `STAT` with `INFO`. */
export async function handleStat(
  session: Session,
  context: ServerContext,
  message: StatMessage,
): Promise<void> {
  const found = await resolveExisting(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  const entry = toEntry(found.segments.at(-1) ?? "", found.info);
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
  const flush = async () => {
    if (batch.length === 0) return;
    await writeAll(
      session.conn,
      encodeMessage({ type: "entries", entries: batch }),
    );
    batch = [];
    batchBytes = emptyFrameBytes;
  };
  const add = async (entry: Entry) => {
    if (count >= context.limits.maxListEntries) {
      // The entries sent so far stand; ERROR comes instead of END.
      throw new FerryError(
        "TOO_LARGE",
        `Listing has more than ${context.limits.maxListEntries} entries`,
      );
    }
    const size = entryBytes(entry);
    if (batchBytes + size > FRAME_HEADER_BYTES + MAX_FRAME_BYTES) await flush();
    batch.push(entry);
    batchBytes += size;
    count++;
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
    if (encoder.encode(name).length > MAX_PATH_BYTES) {
      continue; // too long a name to put on the wire
    }
    await add({ ...child.entry, name });
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
 * too, so both faces list the same entries.
 */
export async function readChildren(
  realRoot: string,
  folder: string,
): Promise<Child[]> {
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
