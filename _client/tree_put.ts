/**
 * Pipelined uploads: many `MKDIR`s and `PUT`s on one connection, and the
 * upload of a local folder tree built on them.
 *
 * `MKDIR`s are sent up to a window ahead of their replies. A `PUT` must wait
 * for its `READY` before its bytes go out, so uploads overlap one step: the
 * next file's `PUT` leaves right after the previous file's `HASH`, before
 * that file's `OK` has come back, which saves a round trip per file.
 *
 * A local file that changes while it is sent does not break the session: its
 * missing bytes are padded and a digest that cannot match is sent, so the
 * server discards it (`INTEGRITY`) and the file is reported as `CHANGED`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import * as nodePath from "node:path";
import { copyHashed } from "../_common/copy.ts";
import { type TransferResult, transferResult } from "./types.ts";
import { segmentProblem } from "../_common/wire_path.ts";
import { localReader } from "./resume.ts";
import { printableName } from "./safe_dest.ts";
import {
  asFerryError,
  DEFAULT_WINDOW,
  type FileOutcome,
  type SessionIo,
} from "./session_io.ts";
import { messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import {
  type ByteWriter,
  encodeMessage,
  type Message,
  writeAll,
} from "../protocol.ts";

/**
 * One step of {@linkcode pipelinePut}: make a folder (and set its time), or
 * upload a file.
 *
 * @example Upload a file into a new folder
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutManyItem } from "./tree_put.ts";
 * const items: PutManyItem[] = [
 *   { kind: "dir", remote: "docs" },
 *   { kind: "file", local: "a.txt", remote: "docs/a.txt" },
 * ];
 * assert(items.length === 2);
 * ```
 */
export type PutManyItem =
  | { kind: "dir"; remote: string; mtime?: number }
  | { kind: "file"; local: string; remote: string };

/**
 * Options of {@linkcode pipelinePut} (and `FerryClient.putMany`).
 *
 * @example Overwrite
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutManyOptions } from "./tree_put.ts";
 * const options: PutManyOptions = { overwrite: true };
 * assert(options.overwrite);
 * ```
 */
export interface PutManyOptions {
  /**
   * Most `MKDIR`s sent ahead of their replies.
   *
   * @default {32}
   */
  window?: number;
  /**
   * Replace existing remote files.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /** Called when a file's bytes start, with its size. */
  onStart?: (path: string, size: number) => void;
  /** Called after each chunk of a file. */
  onProgress?: (path: string, done: number, total: number) => void;
  /** Called once per item, in order, with its index. */
  onFile?: (outcome: FileOutcome, index: number) => void;
}

/** A request whose reply is still to be read. */
interface Pending {
  index: number;
  read: () => Promise<void>;
}

/**
 * Runs `items` in order over one session.
 *
 * @param io The session, from inside the client's request queue.
 * @param items Folders to make and files to upload.
 * @param options Window, overwrite, callbacks.
 * @returns One outcome per item, in order.
 */
export async function pipelinePut(
  io: SessionIo,
  items: readonly PutManyItem[],
  options: PutManyOptions = {},
): Promise<FileOutcome[]> {
  const window = Math.max(1, Math.floor(options.window ?? DEFAULT_WINDOW));
  const outcomes: FileOutcome[] = new Array(items.length);
  const report = (index: number, outcome: FileOutcome) => {
    outcomes[index] = outcome;
    options.onFile?.(outcome, index);
  };
  const failure = (index: number, error: unknown): FileOutcome => {
    const item = items[index];
    return {
      path: item.remote,
      kind: item.kind,
      local: item.kind === "file" ? item.local : undefined,
      error: asFerryError(error),
    };
  };
  const pending: Pending[] = [];
  async function drain(limit: number): Promise<void> {
    while (pending.length > limit) {
      const head = pending[0];
      await head.read();
      pending.shift();
    }
  }
  /** Reads one reply; a refusal is reported, a broken session rethrown. */
  async function expectOk(
    index: number,
    success: () => FileOutcome,
    refusal: (error: unknown) => unknown = (error) => error,
  ): Promise<void> {
    try {
      await io.expect("ok");
    } catch (error) {
      report(index, failure(index, refusal(error)));
      if (!io.recoverable(error)) throw error;
      return;
    }
    report(index, success());
  }
  let next = 0;
  let fatal: FerryError | undefined;
  try {
    while (next < items.length) {
      const index = next++;
      const item = items[index];
      if (item.kind === "dir") {
        const message: Message = {
          type: "mkdir",
          path: item.remote,
          mtime: item.mtime,
        };
        try {
          encodeMessage(message);
        } catch (error) {
          report(index, failure(index, error));
          continue;
        }
        await io.send([message]);
        pending.push({
          index,
          read: () =>
            expectOk(index, () => ({ path: item.remote, kind: "dir" })),
        });
        await drain(window - 1);
        continue;
      }
      let file: Deno.FsFile | undefined;
      let message: Message;
      let size: number;
      let mtime: number | undefined;
      try {
        file = await Deno.open(item.local, { read: true });
        const info = await file.stat();
        if (!info.isFile) {
          throw new FerryError("LOCAL", `Not a file: ${item.local}`);
        }
        size = info.size;
        mtime = info.mtime?.getTime();
        message = {
          type: "put",
          path: item.remote,
          size,
          overwrite: options.overwrite ?? false,
          resume: false,
          mtime,
        };
        encodeMessage(message);
      } catch (error) {
        file?.close();
        report(index, failure(index, localError(error, item.local)));
        continue;
      }
      try {
        // The previous file's OK is still on its way while this PUT travels.
        await io.send([message]);
        await drain(0);
        const start = performance.now();
        try {
          const ready = await io.expect("ready");
          if (ready.offset !== 0) {
            throw new FerryError(
              "PROTOCOL",
              `READY at offset ${ready.offset} for an upload that does not resume`,
            );
          }
        } catch (error) {
          report(index, failure(index, error));
          if (!io.recoverable(error)) throw error;
          continue;
        }
        options.onStart?.(item.remote, size);
        const hash = createHash("sha256");
        const onProgress = options.onProgress;
        const moved = await copyHashed(
          localReader(file, item.local),
          io.sink,
          size,
          hash,
          io.buffers(),
          onProgress && ((done) => onProgress(item.remote, done, size)),
        );
        let changed = moved < size;
        if (changed) await writeZeros(io.sink, size - moved);
        const after = await file.stat();
        if (after.size !== size || after.mtime?.getTime() !== mtime) {
          changed = true;
        }
        const digest = new Uint8Array(hash.digest());
        // A changed file gets a digest that cannot match: the server then
        // discards it and the session stays in step.
        if (changed) digest[0] ^= 0xff;
        await io.send([{ type: "hash", sha256: digest }]);
        const result = (): TransferResult =>
          transferResult(item.remote, size, digest, start);
        pending.push({
          index,
          read: () =>
            expectOk(
              index,
              () =>
                changed ? failure(index, changedError(item.local)) : {
                  path: item.remote,
                  kind: "file",
                  local: item.local,
                  result: result(),
                },
              (error) =>
                changed && io.recoverable(error)
                  ? changedError(item.local)
                  : error,
            ),
        });
      } finally {
        file.close();
      }
    }
    await drain(0);
  } catch (error) {
    fatal = asFerryError(error);
  }
  if (fatal !== undefined) {
    io.close();
    for (const { index } of pending) {
      if (outcomes[index] === undefined) report(index, failure(index, fatal));
    }
    while (next < items.length) {
      const index = next++;
      report(index, failure(index, fatal));
    }
  }
  return outcomes;
}

function changedError(local: string): FerryError {
  return new FerryError(
    "CHANGED",
    `Local file changed while it was sent: ${local}`,
  );
}

function localError(error: unknown, local: string): unknown {
  if (error instanceof FerryError || !(error instanceof Error)) return error;
  if (error instanceof Deno.errors.NotFound) {
    return new FerryError("LOCAL", `Local file not found: ${local}`);
  }
  return new FerryError("LOCAL", `Cannot open ${local}: ${error.message}`, {
    cause: error,
  });
}

const ZEROS = new Uint8Array(64 * 1024);

async function writeZeros(sink: ByteWriter, count: number): Promise<void> {
  while (count > 0) {
    const n = Math.min(count, ZEROS.length);
    await writeAll(sink, ZEROS.subarray(0, n));
    count -= n;
  }
}

/**
 * A local tree as {@linkcode walkLocalTree} finds it.
 *
 * @example An empty tree
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LocalTree } from "./tree_put.ts";
 * const tree: LocalTree = { mtime: 0, folders: [], files: [], skipped: [] };
 * assert(tree.files.length === 0);
 * ```
 */
export interface LocalTree {
  /** Modification time of the top folder. */
  mtime: number;
  /** Folders, relative `/`-separated names, each before its contents. */
  folders: { name: string; mtime: number }[];
  /** Regular files, relative names and local paths. */
  files: { name: string; local: string }[];
  /** What was left out, and why (symbolic links are never followed). */
  skipped: { name: string; reason: string }[];
}

/**
 * Walks a local folder without following symbolic links: links, sockets,
 * devices and names the protocol cannot carry are skipped and listed.
 *
 * @param root The local folder (it may itself be a link to a folder).
 * @returns Its folders, files and skipped entries, sorted by name.
 * @throws {FerryError} `LOCAL` if `root` is not a readable folder.
 */
export async function walkLocalTree(root: string): Promise<LocalTree> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (error) {
    throw localError(error, root);
  }
  if (!info.isDirectory) throw new FerryError("LOCAL", `Not a folder: ${root}`);
  const tree: LocalTree = {
    mtime: info.mtime?.getTime() ?? 0,
    folders: [],
    files: [],
    skipped: [],
  };
  async function walk(folder: string, prefix: string): Promise<void> {
    const names: string[] = [];
    for await (const entry of Deno.readDir(folder)) names.push(entry.name);
    names.sort();
    for (const name of names) {
      const relative = prefix + name;
      const problem = segmentProblem(name);
      if (problem !== undefined) {
        tree.skipped.push({
          name: printableName(relative),
          reason: `name not allowed (${problem})`,
        });
        continue;
      }
      const path = nodePath.join(folder, name);
      let entry: Deno.FileInfo;
      try {
        entry = await Deno.lstat(path);
      } catch {
        continue; // vanished since it was listed
      }
      if (entry.isSymlink) {
        tree.skipped.push({
          name: relative,
          reason: "symbolic link, not followed",
        });
      } else if (entry.isDirectory) {
        tree.folders.push({
          name: relative,
          mtime: entry.mtime?.getTime() ?? 0,
        });
        try {
          await walk(path, relative + "/");
        } catch (error) {
          tree.skipped.push({
            name: relative,
            reason: `cannot read the folder: ${messageOf(error)}`,
          });
        }
      } else if (entry.isFile) {
        tree.files.push({ name: relative, local: path });
      } else {
        tree.skipped.push({ name: relative, reason: "not a file or folder" });
      }
    }
  }
  await walk(root, "");
  return tree;
}

/**
 * What {@linkcode putTree} needs of a client.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TreePutClient } from "./tree_put.ts";
 * const methods: (keyof TreePutClient)[] = ["putMany"];
 * assert(methods.length === 1);
 * ```
 */
export interface TreePutClient {
  /** Pipelined `MKDIR`s and `PUT`s. */
  putMany(
    items: readonly PutManyItem[],
    options?: PutManyOptions,
  ): Promise<FileOutcome[]>;
}

/**
 * What {@linkcode putTree} did.
 *
 * @example Count failures
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutTreeReport } from "./tree_put.ts";
 * const report: PutTreeReport = { outcomes: [], total: 0, failed: 0, skipped: [] };
 * assert(report.failed === 0);
 * ```
 */
export interface PutTreeReport {
  /** One outcome per folder and file. */
  outcomes: FileOutcome[];
  /** Number of folders and files. */
  total: number;
  /** Number that failed. */
  failed: number;
  /** Local entries left out (symbolic links, special files, bad names). */
  skipped: { name: string; reason: string }[];
}

/**
 * Options of {@linkcode putTree}.
 *
 * @example Overwrite
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutTreeOptions } from "./tree_put.ts";
 * const options: PutTreeOptions = { overwrite: true };
 * assert(options.overwrite);
 * ```
 */
export interface PutTreeOptions extends Omit<PutManyOptions, "onFile"> {
  /** Called with the tree before anything is sent. */
  onListed?: (files: number, bytes: number) => void;
  /** Called once per folder and file. */
  onFile?: (outcome: FileOutcome) => void;
}

/**
 * Uploads the local folder `localDir` as `remoteDir`: folders first (in one
 * pipelined run of `MKDIR`s), then the files, then each folder's time,
 * deepest first, so that the remote times match the local ones.
 *
 * @param client A connected client.
 * @param localDir Local folder.
 * @param remoteDir Remote folder; `""` uploads into the root.
 * @param options Overwrite, window, callbacks.
 * @returns One outcome per folder and file, and what was skipped.
 * @throws {FerryError} `LOCAL` if `localDir` is not a readable folder.
 */
export async function putTree(
  client: TreePutClient,
  localDir: string,
  remoteDir: string,
  options: PutTreeOptions = {},
): Promise<PutTreeReport> {
  const tree = await walkLocalTree(localDir);
  const prefix = remoteDir === "" ? "" : `${remoteDir}/`;
  const items: PutManyItem[] = [];
  if (remoteDir !== "") items.push({ kind: "dir", remote: remoteDir });
  for (const folder of tree.folders) {
    items.push({ kind: "dir", remote: prefix + folder.name });
  }
  let bytes = 0;
  for (const file of tree.files) {
    items.push({ kind: "file", local: file.local, remote: prefix + file.name });
    bytes += (await Deno.lstat(file.local).catch(() => undefined))?.size ?? 0;
  }
  const reported = items.length;
  for (const folder of tree.folders.toReversed()) {
    items.push({
      kind: "dir",
      remote: prefix + folder.name,
      mtime: folder.mtime,
    });
  }
  if (remoteDir !== "") {
    items.push({ kind: "dir", remote: remoteDir, mtime: tree.mtime });
  }
  options.onListed?.(tree.files.length, bytes);
  const { onFile } = options;
  const outcomes = await client.putMany(items, {
    ...options,
    onFile: (outcome, index) => {
      if (index < reported) onFile?.(outcome);
    },
  });
  const main = outcomes.slice(0, reported);
  return {
    outcomes: main,
    total: main.length,
    failed: main.filter((outcome) => outcome.error).length,
    skipped: tree.skipped,
  };
}
