/**
 * The command line's many-file transfers: `get -r DIR`, `get A B C` and
 * `put -r LOCAL`, all over one pipelined connection, with the progress line,
 * `--json` records, and a summary of what failed (exit status 1 when
 * anything did).
 *
 * @module
 */

import { EXIT_FAILED, EXIT_OK } from "../_common/exit.ts";
import type { ProgressLine } from "./progress.ts";
import { jsonLine } from "./json_output.ts";
import { printableName } from "./safe_dest.ts";
import type { FileOutcome } from "./session_io.ts";
import {
  getTree,
  type GetTreeOptions,
  type TreeGetClient,
} from "./tree_get.ts";
import type { TreePutClient } from "./tree_put.ts";
import { lateImport } from "../_common/late_import.ts";
import { localPath } from "./local_path.ts";
import type { SyncGetClient } from "./sync_get.ts";
import type { SyncPutClient } from "./sync_put.ts";
import { FerryError } from "../errors.ts";

/** A connected client as the transfers (and syncs) use it. */
export type TransferClient =
  & TreeGetClient
  & TreePutClient
  & SyncGetClient
  & SyncPutClient
  & AsyncDisposable;

/**
 * What the command line hands to the transfers.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferCli } from "./cli_transfer.ts";
 * const keys: (keyof TransferCli)[] = ["connect", "out", "err"];
 * assert(keys.length === 3);
 * ```
 */
export interface TransferCli {
  /** Connects to the server (one connection per command). */
  connect(): Promise<TransferClient>;
  /** `--force`. */
  force: boolean;
  /** `--json`. */
  json: boolean;
  /** `-o PATH`. */
  output: string | undefined;
  /** The progress line (disabled when not on a terminal or `--quiet`). */
  progress: ProgressLine;
  /** Prints a line on stdout. */
  out(text: string): void;
  /** Prints a line on stderr. */
  err(text: string): void;
  /** Throws the command line's usage error. */
  usage(message: string): never;
  /** The phrase for a failure, as for a single file. */
  describe(
    error: FerryError,
    command: "get" | "put",
    paths: { local?: string; remote?: string },
  ): string;
}

/**
 * Last segment of a path, or "" when there is none to name a file.
 *
 * @param path A remote or local path.
 * @returns Its last segment.
 */
export function lastSegment(path: string): string {
  const base = path.split(/[\\/]/).filter((part) => part !== "").pop() ?? "";
  return base === "." || base === ".." ? "" : base;
}

/**
 * The wire path of `get -r REMOTE` and the local folder it goes to (`-o`,
 * else REMOTE's last segment); a usage error when neither names one.
 *
 * @param cli The command line.
 * @param remoteDir The remote folder as typed.
 * @returns The wire path and the local destination.
 */
export function treeDestination(
  cli: TransferCli,
  remoteDir: string,
): { wire: string; destination: string } {
  const wire = remoteDir.replace(/^\/+|\/+$/g, "");
  if (cli.output === "-") cli.usage("get -r cannot write to stdout");
  const destination = cli.output ?? lastSegment(wire);
  if (destination === "") {
    cli.usage(`cannot name a folder after '${remoteDir}'; use -o DEST`);
  }
  return { wire, destination };
}

/**
 * Per-outcome bookkeeping: progress, JSON lines, failures for the summary.
 */
function tracker(cli: TransferCli, command: "get" | "put") {
  const failures: FileOutcome[] = [];
  let counted = 0;
  let files = 0;
  let bytes = 0;
  return {
    failures,
    get files(): number {
      return files;
    },
    get bytes(): number {
      return bytes;
    },
    onFile(outcome: FileOutcome): void {
      if (outcome.kind === "file") {
        cli.progress.fileDone(outcome.result?.bytes ?? 0);
      }
      // Files count; a folder counts only when it failed.
      if (outcome.kind === "file" || outcome.error) counted++;
      if (outcome.error) failures.push(outcome);
      else if (outcome.kind === "file") {
        files++;
        bytes += outcome.result?.bytes ?? 0;
      }
      if (cli.json && (outcome.kind === "file" || outcome.error)) {
        cli.out(jsonLine(outcome.path, outcome));
      }
    },
    report(subject: string): number {
      cli.progress.finish();
      if (failures.length === 0) return EXIT_OK;
      for (const failure of failures) {
        const phrase = cli.describe(failure.error!, command, {
          local: failure.local,
          remote: failure.path,
        });
        cli.err(`ferry: ${command} ${printableName(failure.path)}: ${phrase}`);
      }
      cli.err(
        `ferry: ${subject}: ${failures.length} of ${counted} files failed`,
      );
      return EXIT_FAILED;
    },
  };
}

function transferOptions(
  cli: TransferCli,
  onFile: (outcome: FileOutcome) => void,
): GetTreeOptions {
  return {
    overwrite: cli.force,
    onFile,
    onListed: (files, bytes) => cli.progress.setTotals(files, bytes),
    onProgress: (path, done, total) => cli.progress.update(path, done, total),
  };
}

/**
 * `get -r DIR [-o DEST]`: copies a remote folder into DEST (default: the
 * folder's last segment, in the current folder).
 *
 * @param cli The command line.
 * @param remoteDir The remote folder.
 * @returns The exit status: 0, or 1 if any file failed.
 * @throws {FerryError} If the whole command fails (cannot connect, not a
 * folder, ...).
 */
export async function runGetTree(
  cli: TransferCli,
  remoteDir: string,
): Promise<number> {
  const { wire, destination } = treeDestination(cli, remoteDir);
  const track = tracker(cli, "get");
  const start = performance.now();
  let report;
  try {
    await using client = await cli.connect();
    report = await getTree(
      client,
      wire,
      destination,
      transferOptions(cli, track.onFile),
    );
  } finally {
    cli.progress.finish();
  }
  if (!cli.json && report.failed === 0) {
    cli.out(
      `${destination}: ${track.files} files, ${track.bytes} bytes in ${
        ((performance.now() - start) / 1000).toFixed(2)
      } s`,
    );
  }
  return track.report(`get -r ${remoteDir}`);
}

/**
 * `get A B C [-o DIR]`: downloads several files, each into the current
 * folder or into DIR (which must be a folder), over one connection.
 *
 * @param cli The command line.
 * @param names Remote paths.
 * @returns The exit status: 0, or 1 if any file failed.
 * @throws {FerryError} If the whole command fails (cannot connect, ...).
 */
export async function runGetMany(
  cli: TransferCli,
  names: readonly string[],
): Promise<number> {
  const folder = cli.output ?? ".";
  if (cli.output === "-") {
    cli.usage("-o - takes one file; give a folder for several");
  }
  const info = await Deno.stat(folder).catch(() => undefined);
  if (!info?.isDirectory) {
    cli.usage(`-o must be an existing folder for several files: ${folder}`);
  }
  const track = tracker(cli, "get");
  const items = [];
  const early: FileOutcome[] = [];
  for (const name of names) {
    const base = lastSegment(name);
    if (base === "") {
      early.push({
        path: name,
        kind: "file",
        error: new FerryError("LOCAL", `Cannot name a file after '${name}'`),
      });
      continue;
    }
    items.push({ path: name, destination: localPath.join(folder, base) });
  }
  // Names refused here count as files done, failed.
  cli.progress.setTotals(names.length);
  for (const outcome of early) track.onFile(outcome);
  const lines: string[] = [];
  try {
    await using client = await cli.connect();
    await client.getMany(items, {
      overwrite: cli.force,
      onFile: (outcome) => {
        track.onFile(outcome);
        if (!cli.json && outcome.result) {
          lines.push(
            `${outcome.local}: ${outcome.result.bytes} bytes in ${
              outcome.result.seconds.toFixed(2)
            } s, ${outcome.result.algorithm} ${outcome.result.digest}`,
          );
        }
      },
      onProgress: (path, done, total) => cli.progress.update(path, done, total),
    });
  } finally {
    cli.progress.finish();
  }
  for (const line of lines) cli.out(line);
  const shown = names.length > 3
    ? `${names.slice(0, 3).join(" ")} …`
    : names.join(" ");
  return track.report(`get ${shown}`);
}

/**
 * `put -r LOCAL [REMOTE]`: uploads a local folder (REMOTE defaults to its
 * last segment). Symbolic links inside it are not followed: they are skipped
 * and listed on stderr.
 *
 * @param cli The command line.
 * @param local The local folder.
 * @param remote The remote folder (`""` is the root).
 * @returns The exit status: 0, or 1 if any file failed.
 * @throws {FerryError} If the whole command fails.
 */
export async function runPutTree(
  cli: TransferCli,
  local: string,
  remote: string | undefined,
): Promise<number> {
  const target = (remote ?? lastSegment(localPath.resolve(local))).replace(
    /^\/+|\/+$/g,
    "",
  );
  // Read only by put -r (its walk loads node:path, which get -r spares).
  const { putTree } = await lateImport<typeof import("./tree_put.ts")>(
    "./tree_put.ts",
    import.meta.url,
  );
  const track = tracker(cli, "put");
  const start = performance.now();
  let report;
  try {
    await using client = await cli.connect();
    report = await putTree(client, local, target, {
      overwrite: cli.force,
      onFile: track.onFile,
      onListed: (files, bytes) => cli.progress.setTotals(files, bytes),
      onProgress: (path, done, total) => cli.progress.update(path, done, total),
    });
  } finally {
    cli.progress.finish();
  }
  for (const skipped of report.skipped) {
    cli.err(
      `ferry: put -r ${local}: skipped ${skipped.name}: ${skipped.reason}`,
    );
  }
  if (!cli.json && report.failed === 0) {
    cli.out(
      `${
        target || "(root)"
      }: ${track.files} files, ${track.bytes} bytes uploaded in ${
        ((performance.now() - start) / 1000).toFixed(2)
      } s`,
    );
  }
  return track.report(`put -r ${local}`);
}
