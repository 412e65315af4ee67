/**
 * The plan of a sync, worked out from two listings alone (no file system, no
 * socket): which entries of the destination are created, updated, appended
 * to, left alone or deleted so that it matches the source.
 *
 * **Quick check.** A file is unchanged when its size and modification time
 * match the other side's. Times are compared at the precision both sides
 * keep: the wire carries milliseconds, and so do the local file system's
 * times as Deno reports them; when either time is a whole second (a side
 * that keeps seconds only, or a copy made by a tool that truncates), the two
 * are compared at whole seconds. With `checksum`, a file of the same size is
 * compared by digest instead (`"verify"`: the caller asks for both digests),
 * and its time is ignored, as with rsync's `--checksum`.
 *
 * **Appends.** A changed file whose destination is shorter than the source
 * (and at least {@linkcode APPEND_MIN_BYTES} long) is planned as
 * `"append"`: the caller checks that the destination is a prefix of the
 * source (the digest of its bytes) and then moves only the rest, or falls
 * back to a whole update.
 *
 * **Kinds.** A file replaced by a folder of the same name, or the reverse,
 * is an update whose destination entry is removed first (`clear`). A
 * symbolic link or any other special entry in the destination is never
 * replaced or written through: the source entry is `"refuse"`d, and so is
 * everything below it.
 *
 * **Deletes.** With `delete`, destination entries the source lacks are
 * planned as `"delete"`, topmost only (a folder goes with its contents, a
 * link itself, never its target). Names in the destination that the wire
 * cannot carry are left alone.
 *
 * @module
 */

/** Files shorter than this are updated whole rather than appended to. */
export const APPEND_MIN_BYTES: number = 64 * 1024;

/**
 * One entry of a listing, relative to the synced folder (`/`-separated).
 *
 * @example A file
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncEntry } from "./sync_plan.ts";
 * const entry: SyncEntry = { name: "docs/a.txt", kind: "file", size: 3, mtime: 0 };
 * assert(entry.kind === "file");
 * ```
 */
export interface SyncEntry {
  /** Relative name, `/`-separated, never empty. */
  name: string;
  /**
   * `"file"`, `"dir"`, or (destination only) `"link"` for a symbolic link
   * and `"other"` for anything else.
   */
  kind: "file" | "dir" | "link" | "other";
  /** Size in bytes (0 for folders). */
  size: number;
  /** Modification time, milliseconds since the Unix epoch. */
  mtime: number;
}

/**
 * What to do with one entry.
 *
 * - `create`: absent from the destination.
 * - `update`: changed; replaced whole.
 * - `append`: changed, and the destination may be a prefix of the source.
 * - `verify`: same size, compare digests (`checksum` only).
 * - `unchanged`: left alone.
 * - `delete`: only in the destination.
 * - `refuse`: a symbolic link (or special file) in the destination is in
 *   the way; nothing is written there.
 */
export type SyncAction =
  | "create"
  | "update"
  | "append"
  | "verify"
  | "unchanged"
  | "delete"
  | "refuse";

/**
 * One step of a {@linkcode SyncPlan}.
 *
 * @example An append
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PlanItem } from "./sync_plan.ts";
 * const item: PlanItem = {
 *   name: "log.txt", kind: "file", action: "append", size: 200, mtime: 0, destSize: 100,
 * };
 * assert(item.destSize! < item.size);
 * ```
 */
export interface PlanItem {
  /** Relative name. */
  name: string;
  /** The source's kind (the destination's, for a delete). */
  kind: "file" | "dir" | "link" | "other";
  /** What to do. */
  action: SyncAction;
  /** The source's size (the destination's, for a delete). */
  size: number;
  /** The source's modification time (the destination's, for a delete). */
  mtime: number;
  /** Size of the destination file, for `append` and `verify`. */
  destSize?: number;
  /** A destination entry of the other kind, removed before the update. */
  clear?: "file" | "dir";
  /** Why an entry is refused. */
  reason?: string;
}

/**
 * A whole sync, in the order it runs.
 *
 * @example An empty plan
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncPlan } from "./sync_plan.ts";
 * const plan: SyncPlan = { items: [], deletes: [], folderTimes: [] };
 * assert(plan.items.length === 0);
 * ```
 */
export interface SyncPlan {
  /** One item per source entry, folders before their contents. */
  items: PlanItem[];
  /** Destination entries to delete (topmost only), when asked to. */
  deletes: PlanItem[];
  /**
   * Folders whose time to set once everything else is done, deepest first;
   * `""` is the synced folder itself.
   */
  folderTimes: { name: string; mtime: number }[];
}

/**
 * Options of {@linkcode planSync}.
 *
 * @example Compare by digest, delete extras
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PlanOptions } from "./sync_plan.ts";
 * const options: PlanOptions = { checksum: true, delete: true };
 * assert(options.delete);
 * ```
 */
export interface PlanOptions {
  /**
   * Compare files of the same size by digest, not by time.
   *
   * @default {false}
   */
  checksum?: boolean;
  /**
   * Plan deletes of destination entries the source lacks.
   *
   * @default {false}
   */
  delete?: boolean;
  /** Modification time of the source folder itself. */
  sourceTime?: number;
  /** Modification time of the destination folder, if it exists. */
  destTime?: number;
}

/**
 * Whether two modification times are the same at the precision both sides
 * keep: equal milliseconds, or the same whole second when either time is a
 * whole second.
 *
 * @param a One time, milliseconds.
 * @param b The other.
 * @returns Whether they count as equal.
 *
 * @example Compare a time with its truncation to seconds
 * ```ts
 * import assert from "node:assert/strict";
 * import { sameTime } from "./sync_plan.ts";
 * assert(sameTime(1_700_000_000_123, 1_700_000_000_000));
 * assert(!sameTime(1_700_000_000_123, 1_700_000_000_124));
 * ```
 */
export function sameTime(a: number, b: number): boolean {
  if (a === b) return true;
  if (a % 1000 !== 0 && b % 1000 !== 0) return false;
  return Math.floor(a / 1000) === Math.floor(b / 1000);
}

/**
 * Works out what a sync does: compares the source listing with the
 * destination listing (both relative, `/`-separated, each folder before
 * its contents, as a recursive `LIST` and a local walk give them).
 *
 * @param source Entries of the source tree (files and folders).
 * @param dest Entries of the destination tree, links and others included
 * (a walk does not enter links).
 * @param options Checksum, delete, the two top folders' times.
 * @returns The plan.
 *
 * @example One file changed, one new, one extra
 * ```ts
 * import assert from "node:assert/strict";
 * import { planSync } from "./sync_plan.ts";
 * const plan = planSync(
 *   [
 *     { name: "a", kind: "file", size: 1, mtime: 1000 },
 *     { name: "b", kind: "file", size: 1, mtime: 1000 },
 *   ],
 *   [
 *     { name: "a", kind: "file", size: 2, mtime: 1000 },
 *     { name: "c", kind: "file", size: 1, mtime: 1000 },
 *   ],
 *   { delete: true },
 * );
 * assert.deepEqual(plan.items.map((item) => item.action), ["update", "create"]);
 * assert.deepEqual(plan.deletes.map((item) => item.name), ["c"]);
 * ```
 */
export function planSync(
  source: readonly SyncEntry[],
  dest: readonly SyncEntry[],
  options: PlanOptions = {},
): SyncPlan {
  const destByName = new Map<string, SyncEntry>();
  for (const entry of dest) destByName.set(entry.name, entry);
  const sourceNames = new Set<string>();
  for (const entry of source) sourceNames.add(entry.name);
  const items: PlanItem[] = [];
  // Names under which nothing may be written (a link in the way), and
  // destination folders replaced by a file (their contents go with them).
  const blocked: string[] = [];
  const cleared = new Set<string>();
  const changedFolders = new Set<string>();
  const markChanged = (name: string) => {
    for (
      let at = name.lastIndexOf("/");
      at > 0;
      at = name.lastIndexOf("/", at - 1)
    ) {
      changedFolders.add(name.slice(0, at));
    }
    changedFolders.add("");
  };
  const refused = new Set<string>();
  for (const entry of source) {
    const { name } = entry;
    const base = {
      name,
      kind: entry.kind,
      size: entry.size,
      mtime: entry.mtime,
    };
    const under = blocked.length === 0
      ? undefined
      : blocked.find((folder) => name.startsWith(folder + "/"));
    if (under !== undefined) {
      refused.add(name);
      items.push({
        ...base,
        action: "refuse",
        reason:
          `${under} is a symbolic link or special file in the destination`,
      });
      continue;
    }
    const insideCleared = cleared.size > 0 &&
      ancestors(name).some((folder) => cleared.has(folder));
    const other = insideCleared ? undefined : destByName.get(name);
    if (other?.kind === "link" || other?.kind === "other") {
      blocked.push(name);
      refused.add(name);
      items.push({
        ...base,
        action: "refuse",
        reason: `${name} is a ${
          other.kind === "link" ? "symbolic link" : "special file"
        } in the destination`,
      });
      continue;
    }
    let item: PlanItem;
    if (other === undefined) {
      item = { ...base, action: "create" };
    } else if (other.kind !== entry.kind) {
      item = { ...base, action: "update", clear: other.kind as "file" | "dir" };
      if (other.kind === "dir") cleared.add(name);
    } else if (entry.kind === "dir") {
      item = { ...base, action: "unchanged" };
    } else if (options.checksum && other.size === entry.size) {
      item = { ...base, action: "verify", destSize: other.size };
    } else if (
      other.size === entry.size && sameTime(other.mtime, entry.mtime)
    ) {
      item = { ...base, action: "unchanged" };
    } else if (
      other.size < entry.size && other.size >= APPEND_MIN_BYTES
    ) {
      item = { ...base, action: "append", destSize: other.size };
    } else {
      item = { ...base, action: "update" };
    }
    items.push(item);
    if (item.action !== "unchanged") markChanged(name);
    if (
      entry.kind === "dir" &&
      (other === undefined || !sameTime(other.mtime, entry.mtime))
    ) {
      changedFolders.add(name);
    }
  }
  const deletes: PlanItem[] = [];
  if (options.delete) {
    for (const entry of dest) {
      if (sourceNames.has(entry.name)) continue;
      // Inside a folder deleted, or replaced by a file, as a whole: it goes
      // with that folder.
      const folders = ancestors(entry.name);
      if (
        folders.some((folder) =>
          cleared.has(folder) || !sourceNames.has(folder)
        )
      ) {
        continue;
      }
      deletes.push({
        name: entry.name,
        kind: entry.kind,
        action: "delete",
        size: entry.size,
        mtime: entry.mtime,
      });
      markChanged(entry.name);
    }
  }
  const folderTimes: { name: string; mtime: number }[] = [];
  for (const entry of source) {
    if (
      entry.kind === "dir" && changedFolders.has(entry.name) &&
      !refused.has(entry.name)
    ) {
      folderTimes.push({ name: entry.name, mtime: entry.mtime });
    }
  }
  folderTimes.sort((a, b) => depth(b.name) - depth(a.name));
  if (
    options.sourceTime !== undefined &&
    (changedFolders.has("") || options.destTime === undefined ||
      !sameTime(options.destTime, options.sourceTime))
  ) {
    folderTimes.push({ name: "", mtime: options.sourceTime });
  }
  return { items, deletes, folderTimes };
}

/** The folders above a relative name, nearest last: `a/b/c` → `a`, `a/b`. */
function ancestors(name: string): string[] {
  const folders: string[] = [];
  for (let at = name.indexOf("/"); at > 0; at = name.indexOf("/", at + 1)) {
    folders.push(name.slice(0, at));
  }
  return folders;
}

function depth(name: string): number {
  let count = 0;
  for (const char of name) if (char === "/") count++;
  return count;
}

/**
 * The bytes a plan will move: the sizes of its files that are not
 * unchanged (an append counted whole, as the progress total).
 *
 * @param items The plan's items.
 * @returns Their bytes.
 *
 * @example One new file
 * ```ts
 * import assert from "node:assert/strict";
 * import { plannedBytes } from "./sync_plan.ts";
 * assert(plannedBytes([{ name: "a", kind: "file", action: "create", size: 3, mtime: 0 }]) === 3);
 * ```
 */
export function plannedBytes(items: readonly PlanItem[]): number {
  return items.reduce(
    (sum, item) =>
      item.kind === "file" && item.action !== "unchanged"
        ? sum + item.size
        : sum,
    0,
  );
}
