/**
 * `put -r LOCAL [REMOTE] --sync`: makes a remote folder match a local one,
 * moving only what changed (see `_client/sync_plan.ts`).
 *
 * The local tree is walked without following links (links and special
 * files are skipped and reported, and never deleted on the server by
 * `--delete`); the remote tree is listed once. Then, in order: remote
 * entries of the wrong kind are removed with `DELETE` (which needs a server
 * started with `--allow-delete`); `--checksum` digests and append prefixes
 * are compared with `SUM`; a grown file whose remote copy is a verified
 * prefix is sent with the `PUT` append flag, so that only its new bytes
 * cross the wire; new and changed files and new folders go in one
 * pipelined run (`putMany`), large ones one by one with the resume flag,
 * each file checked by the server's digest before it replaces the old
 * one. A file that changed locally while it was sent fails with `CHANGED`
 * (which closes the session: run the sync again). Only when every entry succeeded are
 * remote entries the source lacks deleted (`--delete`); last, folder times
 * are set (`MKDIR` with a time), deepest first.
 *
 * The server keeps no way to set a file's time without sending it: a file
 * found equal by `--checksum` keeps its remote time.
 *
 * @module
 */

import * as nodePath from "node:path";
import type { PutManyItem, PutManyOptions } from "./tree_put.ts";
import type { FileOutcome } from "./session_io.ts";
import type { TransferOptions, TransferResult } from "./types.ts";
import { hashLocal, walkLocal } from "./sync_local.ts";
import { RESUMABLE_MIN_BYTES } from "./sync_get.ts";
import {
  type PlanItem,
  plannedBytes,
  planSync,
  type SyncEntry,
} from "./sync_plan.ts";
import {
  asSyncError as asError,
  deleteMissing,
  plannedStatus,
  type SyncOptions,
  type SyncRecorder,
  syncRecorder,
  type SyncReport,
  SyncTally,
} from "./sync_report.ts";
import { sameBytes } from "../_common/bytes.ts";
import { FerryError } from "../errors.ts";
import type { DigestAlgorithm, Entry } from "../protocol.ts";

/**
 * What {@linkcode syncPut} needs of a client.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncPutClient } from "./sync_put.ts";
 * const methods: (keyof SyncPutClient)[] = ["stat", "list", "putMany", "put", "sum", "delete"];
 * assert(methods.length === 6);
 * ```
 */
export interface SyncPutClient {
  /** `STAT`. */
  stat(path: string): Promise<Entry>;
  /** `LIST`, recursive. */
  list(path: string, options: { recursive?: boolean }): Promise<Entry[]>;
  /** Pipelined `MKDIR`s and `PUT`s. */
  putMany(
    items: readonly PutManyItem[],
    options?: PutManyOptions,
  ): Promise<FileOutcome[]>;
  /** One `PUT` (here: appending). */
  put(
    localPath: string,
    remotePath: string,
    options?: TransferOptions,
  ): Promise<TransferResult>;
  /** `SUM`: the digest of a remote file or of its first `length` bytes. */
  sum(path: string, options?: { length?: number }): Promise<Uint8Array>;
  /** The session's digest algorithm (`SUM` answers in it). */
  readonly digest: DigestAlgorithm;
  /** `DELETE`. */
  delete(path: string, options?: { recursive?: boolean }): Promise<void>;
}

/**
 * What {@linkcode syncPut} did: a {@linkcode SyncReport} and the local
 * entries it left out.
 *
 * @example Nothing skipped
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncPutReport } from "./sync_put.ts";
 * const skipped: SyncPutReport["skipped"] = [];
 * assert(skipped.length === 0);
 * ```
 */
export interface SyncPutReport extends SyncReport {
  /** Local entries left out (symbolic links, special files, bad names). */
  skipped: { name: string; reason: string }[];
}

/** A file to send, with what it was planned as. */
interface Send {
  item: PlanItem;
  local: string;
  remote: string;
}

/** What every phase of one {@linkcode syncPut} shares. */
interface PutRun {
  client: SyncPutClient;
  dryRun: boolean;
  tally: SyncTally;
  remoteOf: (name: string) => string;
  localOf: (name: string) => string;
  record: SyncRecorder;
}

/**
 * Makes the remote folder `remoteDir` match the local folder `localDir`.
 *
 * @param client A connected client.
 * @param localDir Local folder.
 * @param remoteDir Remote folder, created if missing; `""` is the root.
 * @param options `checksum`, `delete`, `dryRun`, callbacks.
 * @returns One record per entry, counts, bytes and what was skipped.
 * @throws {FerryError} `LOCAL` if `localDir` is not a readable folder,
 * `EXISTS` if `remoteDir` is a file, `TOO_LARGE` if the remote listing is
 * over the server's limit, and whatever breaks the session.
 */
export async function syncPut(
  client: SyncPutClient,
  localDir: string,
  remoteDir: string,
  options: SyncOptions = {},
): Promise<SyncPutReport> {
  const run = startRun(client, localDir, remoteDir, options);
  const local = await localSource(localDir);
  const top = await remoteFolder(client, remoteDir);
  const remote = top === undefined
    ? []
    : await client.list(remoteDir, { recursive: true });
  const plan = planSync(local.source, remote, {
    checksum: options.checksum,
    delete: options.delete,
    sourceTime: remoteDir === "" ? undefined : local.mtime,
    destTime: top?.mtime,
  });
  options.onPlanned?.(
    local.source.filter((entry) => entry.kind === "file").length,
    plannedBytes(plan.items),
  );
  if (!run.dryRun && top === undefined && remoteDir !== "") {
    const outcomes = await client.putMany([{ kind: "dir", remote: remoteDir }]);
    if (outcomes[0]?.error) throw outcomes[0].error;
  }
  const batch: Send[] = [];
  const appends: Send[] = [];
  for (const item of plan.items) {
    const send = await prepareSend(run, item);
    if (send === undefined) continue;
    if (send.item.action === "append") appends.push(send);
    else batch.push(send);
  }
  await sendAll(client, batch, appends, options, run.record);
  const deletesSkipped = options.delete
    ? await deleteMissing(run.tally, keptOut(plan.deletes, local.skipped), {
      dryRun: run.dryRun,
      record: run.record,
      remove: (item) =>
        client.delete(run.remoteOf(item.name), {
          recursive: item.kind === "dir",
        }),
    })
    : undefined;
  if (!run.dryRun && plan.folderTimes.length > 0) {
    // Times are cosmetic: a folder whose time cannot be set does not fail
    // the sync.
    await client.putMany(
      plan.folderTimes.map((folder) => ({
        kind: "dir" as const,
        remote: run.remoteOf(folder.name),
        mtime: folder.mtime,
      })),
    );
  }
  return {
    ...run.tally.report(run.dryRun, deletesSkipped),
    skipped: local.skipped,
  };
}

/**
 * The local tree as a sync source: files and folders, the rest skipped
 * (links are never followed).
 */
async function localSource(localDir: string): Promise<{
  source: SyncEntry[];
  skipped: SyncPutReport["skipped"];
  mtime?: number;
}> {
  const local = await walkLocal(localDir);
  if (!local.exists) throw new FerryError("LOCAL", `Not found: ${localDir}`);
  const skipped = [...local.skipped];
  const source: SyncEntry[] = [];
  for (const entry of local.entries) {
    if (entry.kind === "file" || entry.kind === "dir") source.push(entry);
    else {
      skipped.push({
        name: entry.name,
        reason: entry.kind === "link"
          ? "symbolic link, not followed"
          : "not a file or folder",
      });
    }
  }
  return { source, skipped, mtime: local.mtime };
}

/** The remote folder's entry, `undefined` if missing, refused if a file. */
async function remoteFolder(
  client: SyncPutClient,
  remoteDir: string,
): Promise<Entry | undefined> {
  let top: Entry | undefined;
  try {
    top = await client.stat(remoteDir);
  } catch (error) {
    if (!(error instanceof FerryError && error.code === "NOT_FOUND")) {
      throw error;
    }
  }
  if (top !== undefined && top.kind !== "dir") {
    throw new FerryError("EXISTS", `Not a folder on the server: ${remoteDir}`);
  }
  return top;
}

/** The state every phase shares, with its name mapping and recorder. */
function startRun(
  client: SyncPutClient,
  localDir: string,
  remoteDir: string,
  options: SyncOptions,
): PutRun {
  const tally = new SyncTally(options.onRecord);
  const prefix = remoteDir === "" ? "" : `${remoteDir}/`;
  const remoteOf = (name: string) => name === "" ? remoteDir : prefix + name;
  return {
    client,
    dryRun: options.dryRun ?? false,
    tally,
    remoteOf,
    localOf: (name) => nodePath.join(localDir, ...name.split("/")),
    record: syncRecorder(tally, remoteOf),
  };
}

/**
 * Never delete on the server what was skipped here (a link, a name the
 * wire cannot carry): it is not missing, only not sent.
 */
function keptOut(
  deletes: readonly PlanItem[],
  skipped: SyncPutReport["skipped"],
): PlanItem[] {
  const kept = new Set(skipped.map((entry) => entry.name));
  return deletes.filter((item) =>
    !kept.has(item.name) &&
    ![...kept].some((name) => item.name.startsWith(name + "/"))
  );
}

/**
 * Settles one planned item before the transfer: refused, unchanged (after
 * `SUM` if asked), recorded as a dry run, or cleared and returned to send.
 */
async function prepareSend(
  run: PutRun,
  item: PlanItem,
): Promise<Send | undefined> {
  const send = {
    item,
    local: run.localOf(item.name),
    remote: run.remoteOf(item.name),
  };
  try {
    if (item.action === "refuse") {
      throw new FerryError("FORBIDDEN", `Refused: ${item.reason}`);
    }
    const action = item.action === "unchanged"
      ? "unchanged"
      : await checkedAction(run.client, send);
    if (action === "unchanged") {
      run.record(item, "unchanged");
      return undefined;
    }
    if (run.dryRun) {
      run.record(item, plannedStatus(action), {
        bytes: item.kind !== "file"
          ? 0
          : action === "append"
          ? item.size - item.destSize!
          : item.size,
      });
      return undefined;
    }
    if (item.clear !== undefined) {
      await run.client.delete(send.remote, {
        recursive: item.clear === "dir",
      });
    }
    return { ...send, item: { ...item, action } };
  } catch (error) {
    run.record(item, "failed", { error: asError(error) });
    return undefined;
  }
}

/**
 * The action after comparing digests: a `verify` that matches is
 * `unchanged`, else `update`; an `append` whose remote copy is not a
 * verified prefix becomes `update`.
 */
async function checkedAction(
  client: SyncPutClient,
  send: Send,
): Promise<PlanItem["action"]> {
  const { item } = send;
  if (item.action === "verify") {
    const mine = await hashLocal(send.local, client.digest);
    if (mine === undefined) throw changedLocally(send.local);
    return sameBytes(await client.sum(send.remote), mine)
      ? "unchanged"
      : "update";
  }
  if (item.action !== "append") return item.action;
  const length = item.destSize!;
  const mine = await hashLocal(send.local, client.digest, length);
  const theirs = await client.sum(send.remote, { length }).catch((error) => {
    if (error instanceof FerryError && error.code === "BAD_REQUEST") {
      return undefined; // the remote file shrank since it was listed
    }
    throw error;
  });
  if (mine === undefined || theirs === undefined) return "update";
  return sameBytes(mine, theirs) ? "append" : "update";
}

/**
 * Sends the files: new folders and small files in one pipelined run, then
 * appends and large files one by one (a large file with the resume flag,
 * so that a sync cut short and run again continues it). A local file that
 * changes while it is sent fails with `CHANGED` and closes the session
 * (see `_client/send_file.ts`): it is reported, and the rest fail with
 * `CONNECTION`.
 */
async function sendAll(
  client: SyncPutClient,
  batch: readonly Send[],
  appends: readonly Send[],
  options: SyncOptions,
  record: SyncRecorder,
): Promise<void> {
  const done = (send: Send, result: TransferResult) =>
    record(
      send.item,
      send.item.action === "create"
        ? "created"
        : (result.resumedFrom ?? 0) > 0 && send.item.action === "append"
        ? "appended"
        : "updated",
      {
        bytes: result.bytes - (result.resumedFrom ?? 0),
        algorithm: result.algorithm,
        digest: result.digest,
        seconds: result.seconds,
      },
    );
  const onProgress = options.onProgress;
  const large = (send: Send) =>
    send.item.kind === "file" && send.item.size >= RESUMABLE_MIN_BYTES;
  const piped = batch.filter((send) => !large(send));
  if (piped.length > 0) {
    const outcomes = await client.putMany(
      piped.map((send): PutManyItem =>
        send.item.kind === "dir"
          ? { kind: "dir", remote: send.remote }
          : { kind: "file", local: send.local, remote: send.remote }
      ),
      { overwrite: true, onProgress },
    );
    outcomes.forEach((outcome, index) => {
      const send = piped[index];
      if (outcome.error) {
        record(send.item, "failed", { error: outcome.error });
      } else if (send.item.kind === "dir") {
        record(
          send.item,
          send.item.action === "create" ? "created" : "updated",
        );
      } else {
        done(send, outcome.result!);
      }
    });
  }
  for (const send of [...appends, ...batch.filter(large)]) {
    try {
      done(
        send,
        await client.put(send.local, send.remote, {
          overwrite: true,
          append: send.item.action === "append",
          resume: send.item.action !== "append",
          onProgress: onProgress &&
            ((done, total) => onProgress(send.remote, done, total)),
        }),
      );
    } catch (error) {
      record(send.item, "failed", { error: asError(error) });
    }
  }
}

function changedLocally(path: string): FerryError {
  return new FerryError(
    "CHANGED",
    `Local file changed while it was read: ${path}`,
  );
}
