#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-env=FERRY_TOKEN
/**
 * The ferry client: a library ({@linkcode connect}, {@linkcode FerryClient},
 * {@linkcode classicGet}) and a command-line tool.
 *
 * Every download is received into `DEST.part`, checked against the SHA-256
 * the server sends and only then renamed to `DEST`; every upload ends with
 * the SHA-256 of the file, which the server checks before it keeps anything.
 *
 * Run it from a shell:
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write client.ts ls
 * deno run --allow-net --allow-read --allow-write client.ts get notes.txt
 * deno run --allow-net --allow-read --allow-write client.ts get notes.txt -o - | less
 * deno run --allow-net --allow-read --allow-write client.ts put report.pdf docs/report.pdf
 * deno run --allow-net --allow-read --allow-write client.ts --classic get notes.txt
 * FERRY_TOKEN=s3cret deno run --allow-net --allow-read --allow-write \
 *   --allow-env=FERRY_TOKEN client.ts --host files.example --tls ls
 * ```
 *
 * `get A B C` fetches several files and `get -r DIR` / `put -r LOCAL` a
 * folder tree, pipelined on one connection; `--json` prints one JSON line
 * per file, `-q` hides the progress line, a cut transfer resumes unless
 * `--no-resume` is given, and `--idle-timeout SECONDS` (default 60, 0 for
 * none) bounds a silent server. `--help` (and `get --help`, `ls --help`,
 * `put --help`) lists every flag with its default.
 *
 * A server started with a token asks for it: give it with `--token-file
 * PATH` or `FERRY_TOKEN` (read only with `--allow-env=FERRY_TOKEN`), or
 * `--token` (visible in `ps`); `--token` wins over `--token-file`, which
 * wins over `FERRY_TOKEN`. `--tls` connects with TLS and verifies the
 * certificate; `--ca FILE` trusts a private CA (and implies `--tls`).
 *
 * Without a command, on a terminal, it asks for a file name like the lab's
 * classic client and downloads it. Exit status: 0 on success, 1 when the
 * operation failed, 2 for a usage error.
 *
 * @example List and download from a server
 * ```ts ignore
 * import { connect } from "./client.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 65432 });
 * for (const entry of await client.list()) console.log(entry.name);
 * await client.get("notes.txt", "notes.txt", { overwrite: true });
 * ```
 *
 * @module
 */

export {
  connect,
  FerryClient,
  HANDSHAKE_TIMEOUT_MS,
} from "./_client/ferry_client.ts";
export {
  CLASSIC_CLOSE_WAIT_MS,
  CLASSIC_MAX_NAME_BYTES,
  CLASSIC_MAX_SIZE_DIGITS,
  CLASSIC_SIZE_QUIET_MS,
  CLASSIC_TIMEOUT_MS,
  classicGet,
  type ClassicGetOptions,
} from "./_client/classic.ts";
export type {
  ConnectOptions,
  TransferOptions,
  TransferResult,
} from "./_client/types.ts";
export type { ByteWriter, Entry } from "./protocol.ts";
export type { FileOutcome } from "./_client/session_io.ts";
export type {
  GetListedOptions,
  GetManyItem,
  GetManyOptions,
} from "./_client/tree_get.ts";
export type { PutManyItem, PutManyOptions } from "./_client/tree_put.ts";
export type {
  SyncOptions,
  SyncRecord,
  SyncReport,
  SyncStatus,
} from "./_client/sync_report.ts";
export type { SyncPutReport } from "./_client/sync_put.ts";
export { FerryError, type FerryErrorCode } from "./errors.ts";

if (import.meta.main) {
  // Imported only when run: a program that imports the library does not
  // load the command line.
  const { main } = await import("./_client/cli.ts");
  await main();
}
