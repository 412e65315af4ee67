/**
 * The command line's syncs: `get -r REMOTE [-o DEST] --sync` and
 * `put -r LOCAL [REMOTE] --sync`, with `--checksum`, `--delete` and
 * `--dry-run`: the progress line (files checked, bytes sent), `--json`
 * records, the plan of a dry run, one summary line, and the failures on
 * stderr (exit status 1 when anything failed).
 *
 * @module
 */

import * as nodePath from "node:path";
import { EXIT_FAILED, EXIT_OK } from "../_common/exit.ts";
import {
  lastSegment,
  type TransferCli,
  treeDestination,
} from "./cli_transfer.ts";
import { syncJsonLine } from "./json_output.ts";
import { printableName } from "./safe_dest.ts";
import { syncGet } from "./sync_get.ts";
import { syncPut } from "./sync_put.ts";
import {
  summaryLine,
  type SyncOptions,
  type SyncRecord,
  type SyncReport,
} from "./sync_report.ts";

/**
 * The sync flags of the command line.
 *
 * @example Mirror with deletes
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SyncFlags } from "./cli_sync.ts";
 * const flags: SyncFlags = { checksum: false, delete: true, dryRun: false };
 * assert(flags.delete);
 * ```
 */
export interface SyncFlags {
  /** `--checksum`. */
  checksum: boolean;
  /** `--delete`. */
  delete: boolean;
  /** `--dry-run`. */
  dryRun: boolean;
}

/** Words of a dry run's plan, by status. */
const PLAN_WORDS: Partial<Record<SyncRecord["status"], string>> = {
  created: "create",
  updated: "update",
  appended: "append",
  deleted: "delete",
};

/** Options of a sync that print records, the plan and progress. */
function syncOptions(
  cli: TransferCli,
  flags: SyncFlags,
  failures: SyncRecord[],
): SyncOptions {
  return {
    checksum: flags.checksum,
    delete: flags.delete,
    dryRun: flags.dryRun,
    onPlanned: (files, bytes) => cli.progress.setTotals(files, bytes),
    onProgress: (path, done, total) => cli.progress.update(path, done, total),
    onRecord(record) {
      if (record.kind === "file") cli.progress.fileDone(record.bytes);
      if (record.status === "failed") failures.push(record);
      if (cli.json) cli.out(syncJsonLine(record));
      else if (flags.dryRun && PLAN_WORDS[record.status] !== undefined) {
        cli.out(`${PLAN_WORDS[record.status]} ${printableName(record.name)}`);
      }
    },
  };
}

/** Prints the summary and the failures; returns the exit status. */
function finish(
  cli: TransferCli,
  command: string,
  subject: string,
  report: SyncReport,
  failures: readonly SyncRecord[],
): number {
  if (!cli.json) cli.out(summaryLine(subject, report));
  for (const failure of failures) {
    const phrase = cli.describe(
      failure.error!,
      command.startsWith("put") ? "put" : "get",
      { remote: failure.name },
    );
    cli.err(`ferry: ${command}: ${printableName(failure.name)}: ${phrase}`);
  }
  if (report.deletesSkipped !== undefined) {
    cli.err(`ferry: ${command}: nothing deleted: ${report.deletesSkipped}`);
  }
  if (failures.length > 0) {
    cli.err(
      `ferry: ${command}: ${failures.length} of ${report.records.length} entries failed`,
    );
    return EXIT_FAILED;
  }
  return EXIT_OK;
}

/**
 * `get -r REMOTE [-o DEST] --sync`: makes DEST (default: REMOTE's last
 * segment) match the remote folder.
 *
 * @param cli The command line.
 * @param remoteDir The remote folder.
 * @param flags `--checksum`, `--delete`, `--dry-run`.
 * @returns The exit status: 0, or 1 if any entry failed.
 * @throws {FerryError} If the whole sync fails (cannot connect, not a
 * folder, listing over the server's limit, ...).
 */
export async function runSyncGet(
  cli: TransferCli,
  remoteDir: string,
  flags: SyncFlags,
): Promise<number> {
  const { wire, destination } = treeDestination(cli, remoteDir);
  const failures: SyncRecord[] = [];
  let report: SyncReport;
  try {
    await using client = await cli.connect();
    report = await syncGet(
      client,
      wire,
      destination,
      syncOptions(cli, flags, failures),
    );
  } finally {
    cli.progress.finish();
  }
  return finish(cli, `get -r ${remoteDir}`, destination, report, failures);
}

/**
 * `put -r LOCAL [REMOTE] --sync`: makes the remote folder (default: LOCAL's
 * last segment) match LOCAL.
 *
 * @param cli The command line.
 * @param local The local folder.
 * @param remote The remote folder (`""` is the root).
 * @param flags `--checksum`, `--delete`, `--dry-run`.
 * @returns The exit status: 0, or 1 if any entry failed.
 * @throws {FerryError} If the whole sync fails.
 */
export async function runSyncPut(
  cli: TransferCli,
  local: string,
  remote: string | undefined,
  flags: SyncFlags,
): Promise<number> {
  const target = (remote ?? lastSegment(nodePath.resolve(local))).replace(
    /^\/+|\/+$/g,
    "",
  );
  const failures: SyncRecord[] = [];
  let report;
  try {
    await using client = await cli.connect();
    report = await syncPut(
      client,
      local,
      target,
      syncOptions(cli, flags, failures),
    );
  } finally {
    cli.progress.finish();
  }
  for (const skipped of report.skipped) {
    cli.err(
      `ferry: put -r ${local}: skipped ${
        printableName(skipped.name)
      }: ${skipped.reason}`,
    );
  }
  return finish(
    cli,
    `put -r ${local}`,
    target || "(root)",
    report,
    failures,
  );
}
