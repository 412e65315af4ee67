/**
 * The usage texts of `client.ts`: `--help`, `COMMAND --help`, and the text
 * printed after a usage error.
 *
 * @module
 */

import {
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_PORT,
} from "../_common/defaults.ts";

/** One line of an OPTIONS block (text on the next line past the column). */
function option(flags: string, text: string): string {
  const column = 20;
  return flags.length < column
    ? `  ${flags.padEnd(column)}${text}`
    : `  ${flags}\n  ${" ".repeat(column)}${text}`;
}

const GLOBAL_OPTION_LINES = [
  option(
    "--host HOST",
    `Server host name or address (default: ${DEFAULT_HOSTNAME})`,
  ),
  option("--port PORT", `Server port (default: ${DEFAULT_PORT})`),
  option(
    "--classic",
    "Speak the lab's classic protocol; get only (default: off)",
  ),
  option(
    "--token SECRET",
    "Token for a server that requires one; visible in ps, prefer FERRY_TOKEN or --token-file (default: none)",
  ),
  option(
    "--token-file PATH",
    "Read the token from the first line of PATH (default: none); precedence: --token, --token-file, FERRY_TOKEN (read only with --allow-env=FERRY_TOKEN)",
  ),
  option(
    "--tls",
    "Connect with TLS, verifying the certificate (default: off)",
  ),
  option(
    "--ca FILE",
    "Trust the CA certificates in FILE (PEM) instead of the system's; implies --tls (default: system roots)",
  ),
  option(
    "--idle-timeout SECONDS",
    "Fail with a timeout when the server sends nothing for this long during a request; 0 waits for ever (default: 60)",
  ),
  option(
    "--max-list-entries N",
    `Refuse a listing (ls, get -r) with more entries than this (default: ${DEFAULT_MAX_LIST_ENTRIES})`,
  ),
  option("-h, --help", "Show help (default: off)"),
].join("\n");

const RESUME_OPTION_LINE = option(
  "--no-resume",
  "Start over instead of continuing a cut transfer (default: resume)",
);

/** The usage of the tool, for `--help`. */
export const TOOL_USAGE =
  `ferry client: list, download and upload files on a ferry server.

USAGE:
  client.ts [OPTIONS] <COMMAND> [ARGS]
  client.ts [OPTIONS]            Ask for a file name and download it (terminal only)

COMMANDS:
  get NAME [-o PATH|-] [--force]     Download a file
  get NAME... [-o DIR] [--force]     Download several files on one connection
  get -r DIR [-o DEST] [--force]     Download a folder tree
  get -r DIR [-o DEST] --sync        Make DEST match DIR, moving only changes
  ls [DIR] [--json] [--recursive]    List a folder
  put LOCAL [REMOTE] [--force]       Upload a file
  put -r LOCAL [REMOTE] [--force]    Upload a folder tree
  put -r LOCAL [REMOTE] --sync       Make REMOTE match LOCAL, moving only changes
  help [COMMAND]                     Show help for a command

get and put also take --json, -q (--quiet), --no-resume and --sha256, and with
-r --sync, --checksum, --delete and --dry-run: see help get.

OPTIONS:
${GLOBAL_OPTION_LINES}

Exit status: 0 ok, 1 failed operation, 2 usage error.`;

/** The sync options of `get -r` and `put -r`, one per line. */
const SYNC_OPTION_LINES = [
  option(
    "--sync",
    "With -r: leave files of the same size and time alone, replace changed ones, send only the new bytes of a grown file (default: off)",
  ),
  option(
    "--checksum",
    "With --sync: compare files of the same size by digest, not time (default: off)",
  ),
  option(
    "--delete",
    "With --sync: remove what the source lacks, once all else succeeded; put needs a server with --allow-delete (default: off)",
  ),
  option(
    "--dry-run",
    "With --sync: print what would change, change nothing (default: off)",
  ),
].join("\n");

/** Options that `get` and `put` share, one per line. */
const TRANSFER_OPTION_LINES = [
  SYNC_OPTION_LINES,
  option("--json", "Print one JSON object per file on stdout (default: off)"),
  option("-q, --quiet", "No progress line on the terminal (default: off)"),
  RESUME_OPTION_LINE,
  option(
    "--sha256",
    "Verify with SHA-256 instead of XXH3-128, e.g. to compare with published SHA-256 sums (default: off)",
  ),
  GLOBAL_OPTION_LINES,
].join("\n");

/** The usage of each command, for `COMMAND --help`. */
export const COMMAND_USAGE: Record<Command, string> = {
  get: `ferry client get: download a file, several files or a folder.

USAGE:
  client.ts [OPTIONS] get NAME [-o PATH|-] [--force]
  client.ts [OPTIONS] get NAME... [-o DIR] [--force]
  client.ts [OPTIONS] get -r DIR [-o DEST] [--force]
  client.ts [OPTIONS] get -r DIR [-o DEST] --sync [--checksum] [--delete] [--dry-run]

The file is received into PATH.part, checked against the server's digest
(XXH3-128, or SHA-256 with --sha256) and only then renamed to PATH. With --classic it is fetched from a classic (lab)
server, which sends no checksum. Several names, or -r, use one pipelined
connection; a failed file does not stop the others, a summary of failures
goes to stderr and the exit status is 1. With --sync, only what differs is
fetched and one summary line is printed, such as
  docs: 3 updated, 1 created, 996 unchanged, 1 deleted, 12.0 KiB in 0.21 s

OPTIONS:
${
    option(
      "-o, --output PATH",
      "Where to save it; - for stdout, a folder to save in it (default: NAME's last segment, in the current folder)",
    )
  }
${option("-f, --force", "Overwrite an existing file (default: off)")}
${option("-r, --recursive", "Copy the folder DIR into DEST (default: off)")}
${TRANSFER_OPTION_LINES}`,
  ls: `ferry client ls: list a folder.

USAGE:
  client.ts [OPTIONS] ls [DIR] [--json] [--recursive]

Prints one line per entry: kind, size, modification time (local), name.

OPTIONS:
${option("--json", "Print one JSON array of entries instead (default: off)")}
${option("-r, --recursive", "List the whole subtree (default: off)")}
${GLOBAL_OPTION_LINES}`,
  put: `ferry client put: upload a file or a folder.

USAGE:
  client.ts [OPTIONS] put LOCAL [REMOTE] [--force]
  client.ts [OPTIONS] put -r LOCAL [REMOTE] [--force]
  client.ts [OPTIONS] put -r LOCAL [REMOTE] --sync [--checksum] [--delete] [--dry-run]

REMOTE defaults to LOCAL's last segment. The server keeps the file only if
its digest matches. Uploads must be allowed by the server. With -r,
symbolic links inside LOCAL are not followed: they are skipped and listed.

OPTIONS:
${option("-f, --force", "Overwrite an existing remote file (default: off)")}
${option("-r, --recursive", "Upload the folder LOCAL (default: off)")}
${TRANSFER_OPTION_LINES}`,
  help: `ferry client help: show help.

USAGE:
  client.ts help [COMMAND]

OPTIONS:
${GLOBAL_OPTION_LINES}`,
};

/** A command of the tool. */
export type Command = "get" | "ls" | "put" | "help";

/** The commands, in the order of the usage text. */
export const COMMANDS: readonly Command[] = ["get", "ls", "put", "help"];
