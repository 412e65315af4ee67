/**
 * What a sync is given and what it reports: {@linkcode SyncOptions},
 * {@linkcode SyncRecord} (one per entry), {@linkcode SyncReport} and the
 * one-line summary, shared by `get` and `put` syncs
 * (`_client/sync_get.ts`, `_client/sync_put.ts`).
 *
 * @module
 */

import { FerryError } from "../errors.ts";
import { messageOf } from "../_common/text.ts";
import { formatBytes } from "./progress.ts";
import type { DigestAlgorithm } from "../protocol.ts";
import type { PlanItem } from "./sync_plan.ts";

/**
 * What happened to one entry: `created`, `updated`, `appended` (only the new
 * bytes of a grown file crossed the wire), `unchanged`, `deleted`, or
 * `failed`.
 */
export type SyncStatus =
  | "created"
  | "updated"
  | "appended"
  | "unchanged"
  | "deleted"
  | "failed";

/**
 * One entry of a sync, as it ended (or, with `dryRun`, as it would).
 *
 * @example A file that grew
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncRecord } from "./sync_report.ts";
 * const record: SyncRecord = {
 *   name: "logs/app.log", kind: "file", status: "appended", size: 2048, bytes: 1024,
 * };
 * assert(record.bytes < record.size);
 * ```
 */
export interface SyncRecord {
  /** Path on the server (for `get`, as listed; for `put`, as sent). */
  name: string;
  /** `"file"`, `"dir"`, or for a deleted entry also `"link"`/`"other"`. */
  kind: "file" | "dir" | "link" | "other";
  /** What happened. */
  status: SyncStatus;
  /** Size of the file (0 for folders). */
  size: number;
  /** File bytes that crossed the wire for this entry. */
  bytes: number;
  /** The session's digest algorithm, when the file was transferred. */
  algorithm?: DigestAlgorithm;
  /** Digest of the file in `algorithm`, lowercase hex, when it was transferred. */
  digest?: string;
  /** Seconds the transfer took, when there was one. */
  seconds?: number;
  /** Why it failed. */
  error?: FerryError;
}

/**
 * Options of a sync (`FerryClient.syncGet`, `FerryClient.syncPut`).
 *
 * @example Mirror, deleting extras, comparing digests
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncOptions } from "./sync_report.ts";
 * const options: SyncOptions = { checksum: true, delete: true };
 * assert(options.delete);
 * ```
 */
export interface SyncOptions {
  /**
   * Compare files of the same size by digest (the server's, from its cache,
   * against a local hash) instead of by modification time.
   *
   * @default {false}
   */
  checksum?: boolean;
  /**
   * Remove destination entries the source lacks, after every transfer
   * succeeded; never when a file failed or a name was refused. A `put`
   * sync needs a server started with `--allow-delete`.
   *
   * @default {false}
   */
  delete?: boolean;
  /**
   * Work out and report what would change, and change nothing on either
   * side (digests may still be asked for, with `checksum`).
   *
   * @default {false}
   */
  dryRun?: boolean;
  /** Called once the plan is made: files to check, bytes to send at most. */
  onPlanned?: (files: number, bytes: number) => void;
  /** Called once per entry, when its fate is known. */
  onRecord?: (record: SyncRecord) => void;
  /** Called after each chunk of a file, with its bytes so far. */
  onProgress?: (path: string, done: number, total: number) => void;
}

/**
 * What a sync did.
 *
 * @example Count what changed
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncReport } from "./sync_report.ts";
 * const report: SyncReport = {
 *   records: [], failed: 0, bytes: 0, seconds: 0.01, dryRun: false,
 *   counts: { created: 0, updated: 0, appended: 0, unchanged: 0, deleted: 0, failed: 0 },
 * };
 * assert(report.counts.created === 0);
 * ```
 */
export interface SyncReport {
  /** One record per entry. */
  records: SyncRecord[];
  /** Records by status. */
  counts: Record<SyncStatus, number>;
  /** Number of failed entries. */
  failed: number;
  /** File bytes that crossed the wire. */
  bytes: number;
  /** Wall-clock seconds. */
  seconds: number;
  /** Whether nothing was changed (`dryRun`). */
  dryRun: boolean;
  /** Why the deletes did not run, when `delete` was asked for. */
  deletesSkipped?: string;
}

/**
 * Collects records into a {@linkcode SyncReport}.
 */
export class SyncTally {
  readonly records: SyncRecord[] = [];
  readonly counts: Record<SyncStatus, number> = {
    created: 0,
    updated: 0,
    appended: 0,
    unchanged: 0,
    deleted: 0,
    failed: 0,
  };
  bytes = 0;
  #start = performance.now();
  #onRecord: ((record: SyncRecord) => void) | undefined;

  constructor(onRecord?: (record: SyncRecord) => void) {
    this.#onRecord = onRecord;
  }

  /** Adds one record. */
  add(record: SyncRecord): void {
    this.records.push(record);
    this.counts[record.status]++;
    this.bytes += record.bytes;
    this.#onRecord?.(record);
  }

  /** The report. */
  report(dryRun: boolean, deletesSkipped?: string): SyncReport {
    return {
      records: this.records,
      counts: { ...this.counts },
      failed: this.counts.failed,
      bytes: this.bytes,
      seconds: (performance.now() - this.#start) / 1000,
      dryRun,
      ...(deletesSkipped === undefined ? {} : { deletesSkipped }),
    };
  }
}

/**
 * The one-line summary of a sync, such as
 * `docs: 3 updated, 1 created, 996 unchanged, 1 deleted, 12.0 KiB in 0.21 s`
 * (statuses with a count of 0 are left out, except `unchanged`; files and
 * folders count alike; a dry run ends with `(dry run: nothing changed)`).
 *
 * @param subject What was synced (the destination).
 * @param report The sync's report.
 * @returns The line.
 *
 * @example Summarise
 * ```ts
 * import assert from "node:assert/strict";
 * import { summaryLine } from "./sync_report.ts";
 * const line = summaryLine("docs", {
 *   records: [], failed: 0, bytes: 12288, seconds: 0.21, dryRun: false,
 *   counts: { created: 1, updated: 3, appended: 0, unchanged: 996, deleted: 1, failed: 0 },
 * });
 * assert(line === "docs: 3 updated, 1 created, 996 unchanged, 1 deleted, 12.0 KiB in 0.21 s");
 * ```
 */
export function summaryLine(subject: string, report: SyncReport): string {
  const { counts } = report;
  const parts: string[] = [];
  const add = (count: number, word: string, always = false) => {
    if (count > 0 || always) parts.push(`${count} ${word}`);
  };
  add(counts.updated, "updated");
  add(counts.appended, "appended");
  add(counts.created, "created");
  add(counts.unchanged, "unchanged", true);
  add(counts.deleted, "deleted");
  add(counts.failed, "failed");
  const tail = report.dryRun
    ? " (dry run: nothing changed)"
    : `, ${formatBytes(report.bytes)} in ${report.seconds.toFixed(2)} s`;
  return `${subject}: ${parts.join(", ")}${tail}`;
}

/**
 * Whether an error is `CHANGED` (a file changed while it was sent: worth
 * one more try).
 *
 * @param error Anything thrown or reported.
 * @returns Whether it is a `FerryError` with the code `CHANGED`.
 */
export function isChanged(error: unknown): boolean {
  return error instanceof FerryError && error.code === "CHANGED";
}

/**
 * An error for a {@linkcode SyncRecord}: a `FerryError` as it is, anything
 * else as `LOCAL`.
 *
 * @param error Anything thrown or reported.
 * @returns A `FerryError`.
 */
export function asSyncError(error: unknown): FerryError {
  return error instanceof FerryError
    ? error
    : new FerryError("LOCAL", messageOf(error), { cause: error });
}

/**
 * Adds one record for a planned item to a tally.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncRecorder } from "./sync_report.ts";
 * const record: SyncRecorder = () => {};
 * assert(typeof record === "function");
 * ```
 */
export type SyncRecorder = (
  item: PlanItem,
  status: SyncRecord["status"],
  extra?: Partial<SyncRecord>,
) => void;

/**
 * A recorder that names each item as the server does (`remoteOf`), with
 * its size and no bytes moved unless `extra` says otherwise.
 *
 * @param tally Where the records go.
 * @param remoteOf The remote name of a relative name.
 * @returns The recorder.
 *
 * @example Record an unchanged file
 * ```ts
 * import assert from "node:assert/strict";
 * import { SyncTally, syncRecorder } from "./sync_report.ts";
 * const tally = new SyncTally();
 * const record = syncRecorder(tally, (name) => `docs/${name}`);
 * record({ name: "a", kind: "file", action: "unchanged", size: 3, mtime: 0 }, "unchanged");
 * assert(tally.records[0].name === "docs/a" && tally.counts.unchanged === 1);
 * ```
 */
export function syncRecorder(
  tally: SyncTally,
  remoteOf: (name: string) => string,
): SyncRecorder {
  return (item, status, extra = {}) =>
    tally.add({
      name: remoteOf(item.name),
      kind: item.kind,
      status,
      size: item.kind === "file" ? item.size : 0,
      bytes: 0,
      ...extra,
    });
}

/**
 * The status a planned action is recorded with once done (or in a dry run).
 *
 * @param action The action, after any digest check.
 * @returns `created`, `appended` or `updated`.
 *
 * @example An append
 * ```ts
 * import assert from "node:assert/strict";
 * import { plannedStatus } from "./sync_report.ts";
 * assert(plannedStatus("append") === "appended");
 * ```
 */
export function plannedStatus(action: PlanItem["action"]): SyncStatus {
  return action === "create"
    ? "created"
    : action === "append"
    ? "appended"
    : "updated";
}

/**
 * `--delete`: removes the entries the source lacks, one by one, but only
 * when nothing failed so far (a failed entry might be the reason one is
 * missing).
 *
 * @param tally The run's tally (its failures so far decide).
 * @param deletes The planned deletes.
 * @param options `dryRun` (record only), `record`, and `remove` (one entry).
 * @returns Why the deletes were skipped, or `undefined` if they ran.
 *
 * @example Skipped after a failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { deleteMissing, SyncTally, syncRecorder } from "./sync_report.ts";
 * const tally = new SyncTally();
 * const record = syncRecorder(tally, (name) => name);
 * record({ name: "a", kind: "file", action: "create", size: 1, mtime: 0 }, "failed");
 * const why = await deleteMissing(tally, [{ name: "b", kind: "file", action: "delete", size: 1, mtime: 0 }], {
 *   dryRun: false, record, remove: () => Promise.resolve(),
 * });
 * assert(why === "1 entries failed");
 * ```
 */
export async function deleteMissing(
  tally: SyncTally,
  deletes: readonly PlanItem[],
  options: {
    dryRun: boolean;
    record: SyncRecorder;
    remove: (item: PlanItem) => Promise<void>;
  },
): Promise<string | undefined> {
  if (deletes.length === 0) return undefined;
  const failed = tally.counts.failed;
  if (failed > 0) return `${failed} entries failed`;
  for (const item of deletes) {
    try {
      if (!options.dryRun) await options.remove(item);
      options.record(item, "deleted");
    } catch (error) {
      options.record(item, "failed", { error: asSyncError(error) });
    }
  }
  return undefined;
}
