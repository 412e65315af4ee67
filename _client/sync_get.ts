/**
 * `get -r REMOTE --sync`: makes a local folder match a remote one, moving
 * only what changed (see `_client/sync_plan.ts` for how changes are found).
 *
 * The remote tree is listed once (`STAT`, recursive `LIST`); the local tree
 * is walked without following links. Then, in order: destination entries of
 * the wrong kind are removed (a file where the source has a folder, and the
 * reverse); `--checksum` digests and append prefixes are compared with
 * `SUM`; new and changed files are fetched through the usual `.part`,
 * digest check and rename, small ones pipelined (`getMany`), large ones
 * one by one with a resume record (so that an interrupted sync run again
 * continues them); a grown file whose local copy is a verified prefix of
 * the remote one is continued from its length, so that only the new bytes
 * cross the wire. A file that changed on the server while it was sent
 * (`CHANGED`) is tried once more. Only when every entry succeeded are
 * local entries the source lacks deleted (`--delete`), inside the
 * destination and never through a symbolic link; last, folder times are
 * set, deepest first.
 *
 * @module
 */

import type { GetManyItem, GetManyOptions } from "./tree_get.ts";
import type { FileOutcome } from "./session_io.ts";
import type { TransferOptions, TransferResult } from "./types.ts";
import { checkTreeName, SafeDest } from "./safe_dest.ts";
import { writePartRecord } from "./resume.ts";
import {
  checkedPath,
  hashLocal,
  type LocalListing,
  removeInside,
  walkLocal,
} from "./sync_local.ts";
import {
  type PlanItem,
  plannedBytes,
  planSync,
  type SyncEntry,
} from "./sync_plan.ts";
import {
  asSyncError as asError,
  deleteMissing,
  isChanged,
  plannedStatus,
  type SyncOptions,
  type SyncRecord,
  type SyncRecorder,
  syncRecorder,
  type SyncReport,
  SyncTally,
} from "./sync_report.ts";
import { sameBytes } from "../_common/bytes.ts";
import { messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import type { DigestAlgorithm, Entry } from "../protocol.ts";

/**
 * Files at least this large are fetched one by one with a resume record
 * (`DEST.part.ferry`), so that a cut sync continues them; smaller ones are
 * pipelined.
 */
export const RESUMABLE_MIN_BYTES: number = 1024 * 1024;

/**
 * What {@linkcode syncGet} needs of a client.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncGetClient } from "./sync_get.ts";
 * const methods: (keyof SyncGetClient)[] = ["stat", "list", "getMany", "get", "sum"];
 * assert(methods.length === 5);
 * ```
 */
export interface SyncGetClient {
  /** `STAT`. */
  stat(path: string): Promise<Entry>;
  /** `LIST`, recursive. */
  list(path: string, options: { recursive?: boolean }): Promise<Entry[]>;
  /** Pipelined `GET`s. */
  getMany(
    items: readonly GetManyItem[],
    options?: GetManyOptions,
  ): Promise<FileOutcome[]>;
  /** One resumable `GET`. */
  get(
    path: string,
    destination: string,
    options?: TransferOptions,
  ): Promise<TransferResult>;
  /** `SUM`: the digest of a remote file or of its first `length` bytes. */
  sum(path: string, options?: { length?: number }): Promise<Uint8Array>;
  /** The server's `host:port`, kept in resume records. */
  readonly server: string;
  /** The session's digest algorithm (`SUM` answers in it). */
  readonly digest: DigestAlgorithm;
}

/** A file to fetch, with what it was planned as. */
interface Fetch {
  item: PlanItem;
  remote: string;
  local: string;
  /** Local bytes kept (an append), 0 otherwise. */
  from: number;
}

/** What every phase of one {@linkcode syncGet} shares. */
interface GetRun {
  client: SyncGetClient;
  destination: string;
  dryRun: boolean;
  tally: SyncTally;
  remoteOf: (name: string) => string;
  record: SyncRecorder;
  /** The destination opened for writing; absent in a dry run. */
  safe?: SafeDest;
}

/**
 * Makes the local folder `destination` match the remote folder `remoteDir`.
 *
 * @param client A connected client.
 * @param remoteDir Folder on the server; `""` is the root.
 * @param destination Local folder, created if missing.
 * @param options `checksum`, `delete`, `dryRun`, callbacks.
 * @returns One record per entry, counts and bytes.
 * @throws {FerryError} `NOT_FOUND` if `remoteDir` is not a folder, `LOCAL`
 * if `destination` is not a folder, `TOO_LARGE` if the listing is over
 * the server's limit (nothing is changed then), and whatever breaks the
 * session.
 */
export async function syncGet(
  client: SyncGetClient,
  remoteDir: string,
  destination: string,
  options: SyncOptions = {},
): Promise<SyncReport> {
  const run = startRun(client, remoteDir, destination, options);
  const { top, listed, local } = await listBoth(client, remoteDir, destination);
  const source = checkedSource(run, listed);
  const sourceFiles = new Set(
    source.filter((entry) => entry.kind === "file").map((entry) => entry.name),
  );
  // A download's own leftovers (`X.part`, `X.part.ferry`) belong to X.
  const dest = local.entries.filter((entry) => !isPartOf(entry, sourceFiles));
  const plan = planSync(source, dest, {
    checksum: options.checksum,
    delete: options.delete,
    sourceTime: top.mtime,
    destTime: local.mtime,
  });
  options.onPlanned?.(sourceFiles.size, plannedBytes(plan.items));
  if (!run.dryRun) run.safe = await SafeDest.open(destination);
  const fetches: Fetch[] = [];
  for (const item of plan.items) {
    const fetch = await prepareFetch(run, item);
    if (fetch !== undefined) fetches.push(fetch);
  }
  await fetchAll(client, fetches, options, run.record);
  const deletesSkipped = options.delete
    ? await deleteMissing(run.tally, plan.deletes, {
      dryRun: run.dryRun,
      record: run.record,
      remove: (item) => removeInside(destination, item.name, item.kind),
    })
    : undefined;
  if (!run.dryRun) {
    for (const folder of plan.folderTimes) {
      setTime(destination, folder.name, folder.mtime);
    }
  }
  return run.tally.report(run.dryRun, deletesSkipped);
}

/** The state every phase shares, with its name mapping and recorder. */
function startRun(
  client: SyncGetClient,
  remoteDir: string,
  destination: string,
  options: SyncOptions,
): GetRun {
  const tally = new SyncTally(options.onRecord);
  const prefix = remoteDir === "" ? "" : `${remoteDir}/`;
  const remoteOf = (name: string) => prefix + name;
  return {
    client,
    destination,
    dryRun: options.dryRun ?? false,
    tally,
    remoteOf,
    record: syncRecorder(tally, remoteOf),
  };
}

/** Lists the remote tree while the local one is walked. */
async function listBoth(
  client: SyncGetClient,
  remoteDir: string,
  destination: string,
): Promise<{ top: Entry; listed: Entry[]; local: LocalListing }> {
  const remote = (async () => {
    const top = await client.stat(remoteDir);
    if (top.kind !== "dir") {
      throw new FerryError("NOT_FOUND", `Not a folder: ${remoteDir}`);
    }
    // A listing cut short (TOO_LARGE) throws here: nothing is planned.
    return { top, listed: await client.list(remoteDir, { recursive: true }) };
  })();
  let local;
  try {
    local = await walkLocal(destination);
  } catch (error) {
    await remote.catch(() => {});
    throw error;
  }
  return { ...await remote, local };
}

/** The listed entries whose names are safe here; the rest fail. */
function checkedSource(run: GetRun, listed: readonly Entry[]): SyncEntry[] {
  const source: SyncEntry[] = [];
  for (const entry of listed) {
    try {
      checkTreeName(entry.name);
      source.push(entry);
    } catch (error) {
      run.tally.add(failed(run.remoteOf(entry.name), entry.kind, error));
    }
  }
  return source;
}

/**
 * Settles one planned item before the transfer: refused, unchanged (after
 * `SUM` if asked), recorded as a dry run, a folder made, or a file
 * prepared and returned to fetch.
 */
async function prepareFetch(
  run: GetRun,
  item: PlanItem,
): Promise<Fetch | undefined> {
  const remote = run.remoteOf(item.name);
  try {
    if (item.action === "refuse") {
      throw new FerryError("FORBIDDEN", `Refused: ${item.reason}`);
    }
    const { action, from } = item.action === "unchanged"
      ? { action: "unchanged" as const, from: 0 }
      : await checkedAction(run, item, remote);
    if (action === "unchanged") {
      run.record(item, "unchanged");
      return undefined;
    }
    if (run.dryRun) {
      run.record(item, plannedStatus(action), {
        bytes: item.kind === "file" ? item.size - from : 0,
      });
      return undefined;
    }
    if (item.clear !== undefined) {
      await removeInside(run.destination, item.name, item.clear);
    }
    const segments = item.name.split("/");
    if (item.kind === "dir") {
      run.safe!.ensureFolder(segments);
      run.record(item, item.action === "create" ? "created" : "updated");
      return undefined;
    }
    const local = run.safe!.prepareFile(segments);
    return { item: { ...item, action }, remote, local, from };
  } catch (error) {
    run.record(item, "failed", { error: asError(error) });
    return undefined;
  }
}

/**
 * The action after comparing digests, and the local bytes kept: a
 * `verify` that matches is `unchanged` (its time set), else `update`; an
 * `append` whose local copy is a verified prefix keeps its bytes, else
 * becomes `update`.
 */
async function checkedAction(
  run: GetRun,
  item: PlanItem,
  remote: string,
): Promise<{ action: PlanItem["action"]; from: number }> {
  const { client, destination } = run;
  if (item.action === "verify") {
    const same = sameBytes(
      await client.sum(remote),
      await localDigest(client.digest, destination, item.name),
    );
    if (!same) return { action: "update", from: 0 };
    if (!run.dryRun) setTime(destination, item.name, item.mtime);
    return { action: "unchanged", from: 0 };
  }
  if (item.action !== "append") return { action: item.action, from: 0 };
  const length = item.destSize!;
  const mine = await localDigest(client.digest, destination, item.name, length);
  const theirs = await client.sum(remote, { length }).catch((error) => {
    if (error instanceof FerryError && error.code === "BAD_REQUEST") {
      return undefined; // the file shrank since it was listed
    }
    throw error;
  });
  return theirs !== undefined && sameBytes(mine, theirs)
    ? { action: "append", from: length }
    : { action: "update", from: 0 };
}

/**
 * Fetches the files: small ones pipelined, then appends and large files
 * one by one (resumable); a file that changed while it was sent is tried
 * once more.
 */
async function fetchAll(
  client: SyncGetClient,
  fetches: readonly Fetch[],
  options: SyncOptions,
  record: SyncRecorder,
): Promise<void> {
  const statusOf = (fetch: Fetch, result: TransferResult) =>
    fetch.item.action === "create"
      ? "created"
      : (result.resumedFrom ?? 0) > 0 && fetch.from > 0
      ? "appended"
      : "updated";
  const done = (fetch: Fetch, result: TransferResult) =>
    record(fetch.item, statusOf(fetch, result), {
      bytes: result.bytes - (result.resumedFrom ?? 0),
      algorithm: result.algorithm,
      digest: result.digest,
      seconds: result.seconds,
    });
  const onProgress = options.onProgress;
  const one = async (fetch: Fetch, retried = false): Promise<void> => {
    try {
      if (fetch.from > 0) await startAppend(client, fetch);
      const result = await client.get(fetch.remote, fetch.local, {
        overwrite: true,
        resume: true,
        onProgress: onProgress &&
          ((done, total) => onProgress(fetch.remote, done, total)),
      });
      done(fetch, result);
    } catch (error) {
      if (isChanged(error) && !retried) return await one(fetch, true);
      record(fetch.item, "failed", { error: asError(error) });
    }
  };
  const piped = fetches.filter((fetch) => !resumable(fetch));
  let round = piped;
  for (let attempt = 0; round.length > 0; attempt++) {
    const again: Fetch[] = [];
    const outcomes = await client.getMany(
      round.map((fetch) => ({ path: fetch.remote, destination: fetch.local })),
      { overwrite: true, onProgress },
    );
    outcomes.forEach((outcome, index) => {
      const fetch = round[index];
      if (outcome.result) done(fetch, outcome.result);
      else if (isChanged(outcome.error) && attempt === 0) again.push(fetch);
      else record(fetch.item, "failed", { error: asError(outcome.error) });
    });
    round = again;
  }
  // The large files last: a cut while they move leaves every small file
  // done and a resumable part.
  for (const fetch of fetches) if (resumable(fetch)) await one(fetch);
}

/** Whether a file goes one by one, with a resume record. */
function resumable(fetch: Fetch): boolean {
  return fetch.from > 0 || fetch.item.size >= RESUMABLE_MIN_BYTES;
}

/**
 * Prepares the continuation of a grown file: a copy of the local file as
 * `DEST.part`, and the record that says which remote version it is the
 * start of; the resumable download then asks only for the rest (and checks
 * the whole file's digest at the end).
 */
async function startAppend(client: SyncGetClient, fetch: Fetch): Promise<void> {
  const part = `${fetch.local}.part`;
  try {
    // Never written through a link: an old part is removed first, and the
    // copy creates a new file.
    const old = await Deno.lstat(part).catch(() => undefined);
    if (old !== undefined) await Deno.remove(part);
    await Deno.copyFile(fetch.local, part);
  } catch (error) {
    throw new FerryError(
      "LOCAL",
      `Cannot copy ${fetch.local} to ${part}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  await writePartRecord(fetch.local, {
    version: 1,
    server: client.server,
    path: fetch.remote,
    size: fetch.item.size,
    mtime: fetch.item.mtime,
  });
}

/** The digest of a local file under `root` (never through a link). */
async function localDigest(
  algorithm: DigestAlgorithm,
  root: string,
  name: string,
  length?: number,
): Promise<Uint8Array> {
  const digest = await hashLocal(checkedPath(root, name), algorithm, length);
  if (digest === undefined) {
    throw new FerryError("LOCAL", `Changed while it was read: ${name}`);
  }
  return digest;
}

/** Sets a folder's or file's time under `root`; a failure is ignored. */
function setTime(root: string, name: string, mtime: number): void {
  try {
    const path = name === "" ? root : checkedPath(root, name);
    if (Deno.lstatSync(path).isSymlink) return; // utime would follow it
    const time = new Date(mtime);
    Deno.utimeSync(path, time, time);
  } catch {
    // A time that cannot be set does not fail the sync.
  }
}

/** Whether a local entry is the `.part` or `.part.ferry` of a source file. */
function isPartOf(entry: SyncEntry, sourceFiles: ReadonlySet<string>): boolean {
  if (entry.kind !== "file") return false;
  const match = /^(.*)\.part(\.ferry)?$/.exec(entry.name);
  return match !== null && sourceFiles.has(match[1]);
}

function failed(
  name: string,
  kind: SyncRecord["kind"],
  error: unknown,
): SyncRecord {
  return {
    name,
    kind,
    status: "failed",
    size: 0,
    bytes: 0,
    error: asError(error),
  };
}
