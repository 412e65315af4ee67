/**
 * The command line of `client.ts`: usage texts, parsing into
 * {@linkcode CliOptions}, and `main`, which prints the help that was asked
 * for and otherwise imports `_client/cli_run.ts` to run the command.
 * `--help` thus loads this module and the flag parser only: every module a
 * process loads, or may load by a literal `import()`, costs start-up time
 * (see `_common/late_import.ts`).
 *
 * @module
 */

import { parseFlags } from "./flags.ts";
import {
  DEFAULT_HOSTNAME,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_PORT,
} from "../_common/defaults.ts";
import { lowerFirst, messageOf } from "../_common/text.ts";
import { escapeLines } from "../_common/escape.ts";
import {
  EXIT_OK,
  exitFor,
  type ExitOptions,
  UsageError,
} from "../_common/exit.ts";
import { lateImport } from "../_common/late_import.ts";
import type { SyncFlags } from "./cli_sync.ts";

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

const TOOL_USAGE =
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

const COMMAND_USAGE: Record<Command, string> = {
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
const COMMANDS: readonly Command[] = ["get", "ls", "put", "help"];

/** A usage error followed by the usage of `command` (or of the tool). */
export function usageError(message: string, command?: Command): UsageError {
  return new UsageError(
    message,
    command === undefined ? TOOL_USAGE : COMMAND_USAGE[command],
  );
}

/** Prints an exit's text on stderr and returns its status. */
export function exit(
  error: unknown,
  options: Omit<ExitOptions, "program"> = {},
): number {
  const { status, text } = exitFor(error, { program: "ferry", ...options });
  console.error(escapeLines(text));
  return status;
}

/**
 * Flags that apply to some commands only, by long name: the commands
 * they apply to and the flag as typed. Without a command the tool asks for a
 * name and gets it, so the prompt counts as `get`.
 */
const COMMAND_FLAGS: Record<string, { commands: Command[]; flag: string }> = {
  output: { commands: ["get"], flag: "--output" },
  force: { commands: ["get", "put"], flag: "--force" },
  json: { commands: ["get", "put", "ls"], flag: "--json" },
  recursive: { commands: ["get", "put", "ls"], flag: "--recursive" },
  quiet: { commands: ["get", "put"], flag: "--quiet" },
  "no-resume": { commands: ["get", "put"], flag: "--no-resume" },
  sync: { commands: ["get", "put"], flag: "--sync" },
  checksum: { commands: ["get", "put"], flag: "--checksum" },
  delete: { commands: ["get", "put"], flag: "--delete" },
  "dry-run": { commands: ["get", "put"], flag: "--dry-run" },
  sha256: { commands: ["get", "put"], flag: "--sha256" },
};

/** How many arguments each command takes, at least and at most. */
const ARGUMENT_COUNTS: Record<Command, [number, number]> = {
  get: [1, Infinity],
  ls: [0, 1],
  put: [1, 2],
  help: [0, 1],
};

const PARSE_OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  classic: { type: "boolean" },
  token: { type: "string" },
  "token-file": { type: "string" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  "idle-timeout": { type: "string" },
  "max-list-entries": { type: "string" },
  help: { type: "boolean", short: "h" },
  output: { type: "string", short: "o" },
  force: { type: "boolean", short: "f" },
  json: { type: "boolean" },
  recursive: { type: "boolean", short: "r" },
  quiet: { type: "boolean", short: "q" },
  "no-resume": { type: "boolean" },
  sync: { type: "boolean" },
  checksum: { type: "boolean" },
  delete: { type: "boolean" },
  "dry-run": { type: "boolean" },
  sha256: { type: "boolean" },
} as const;

/** The settings of one run of the tool. */
export interface CliOptions {
  hostname: string;
  port: number;
  classic: boolean;
  tokenFlag: string | undefined;
  tokenFile: string | undefined;
  tls: boolean;
  ca: string | undefined;
  /** `--idle-timeout`, in milliseconds. */
  idleTimeoutMs: number;
  /** `--max-list-entries`. */
  maxListEntries: number;
  /** Set by {@linkcode loadSecurity}: the token and the CA certificates. */
  token?: string;
  caCerts?: string[];
  command: Command | undefined;
  args: string[];
  output: string | undefined;
  force: boolean;
  json: boolean;
  recursive: boolean;
  quiet: boolean;
  /** Continue cut transfers (`--no-resume` turns it off). */
  resume: boolean;
  /** `--sync`. */
  sync: boolean;
  /** `--checksum`, `--delete`, `--dry-run`. */
  syncFlags: SyncFlags;
  /** `--sha256`: verify with SHA-256 instead of XXH3-128. */
  sha256: boolean;
  help: boolean;
}

/**
 * Parses and checks the arguments.
 *
 * @param args Command-line arguments, without the program name.
 * @returns The settings.
 * @throws {UsageError} For anything the tool does not take.
 */
function parseCli(args: string[]): CliOptions {
  const { values, positionals } = readFlags(args);
  const [name, ...rest] = positionals;
  const command = commandOf(name);
  const options: CliOptions = {
    hostname: values.host ?? DEFAULT_HOSTNAME,
    port: portOf(values.port, command),
    classic: values.classic ?? false,
    tokenFlag: values.token,
    tokenFile: values["token-file"],
    tls: values.tls ?? false,
    ca: values.ca,
    idleTimeoutMs: idleTimeoutOf(values["idle-timeout"], command),
    maxListEntries: listEntriesOf(values["max-list-entries"], command),
    command,
    args: rest,
    output: values.output,
    force: values.force ?? false,
    json: values.json ?? false,
    recursive: values.recursive ?? false,
    quiet: values.quiet ?? false,
    resume: !(values["no-resume"] ?? false),
    sync: values.sync ?? false,
    syncFlags: {
      checksum: values.checksum ?? false,
      delete: values.delete ?? false,
      dryRun: values["dry-run"] ?? false,
    },
    sha256: values.sha256 ?? false,
    help: values.help ?? false,
  };
  if (options.help) return options;
  checkFlagsApply(values, command);
  checkCombinations(options);
  checkArgumentCount(command, rest);
  return options;
}

type ParsedFlags = ReturnType<typeof readFlags>;

/**
 * Parses the flags (`parseFlags`, the same syntax and messages as
 * `node:util`'s `parseArgs` without loading Node compatibility at start);
 * its complaint becomes a usage error.
 */
function readFlags(args: string[]) {
  try {
    return parseFlags(args, PARSE_OPTIONS);
  } catch (error) {
    const first = messageOf(error).split(". ")[0];
    const command = COMMANDS.find((name) => args.includes(name));
    throw usageError(lowerFirst(first), command);
  }
}

function commandOf(name: string | undefined): Command | undefined {
  if (name === undefined) return undefined;
  if (!(COMMANDS as string[]).includes(name)) {
    throw usageError(`unknown command '${name}'`);
  }
  return name as Command;
}

function portOf(text: string | undefined, command?: Command): number {
  const port = text ?? String(DEFAULT_PORT);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw usageError(`invalid port '${text}': expected 1 to 65535`, command);
  }
  return Number(port);
}

function idleTimeoutOf(text: string | undefined, command?: Command): number {
  const idle = text ?? String(DEFAULT_IDLE_TIMEOUT_MS / 1000);
  if (!/^\d+(\.\d+)?$/.test(idle)) {
    throw usageError(
      `invalid --idle-timeout '${idle}': expected seconds, 0 for none`,
      command,
    );
  }
  return Number(idle) * 1000;
}

function listEntriesOf(text: string | undefined, command?: Command): number {
  const entries = text ?? String(DEFAULT_MAX_LIST_ENTRIES);
  if (!/^\d{1,15}$/.test(entries) || Number(entries) < 1) {
    throw usageError(
      `invalid --max-list-entries '${entries}': expected a positive number`,
      command,
    );
  }
  return Number(entries);
}

/** Refuses a flag given to a command it does not apply to. */
function checkFlagsApply(
  values: ParsedFlags["values"],
  command: Command | undefined,
): void {
  const effective = command ?? "get";
  for (const [key, { commands, flag }] of Object.entries(COMMAND_FLAGS)) {
    const given = (values as Record<string, unknown>)[key] !== undefined;
    if (given && !commands.includes(effective)) {
      throw usageError(
        `option ${flag} does not apply to ${command ?? "the prompt"}`,
        command,
      );
    }
  }
}

/** Refuses flags that make no sense together. */
function checkCombinations(options: CliOptions): void {
  const { command } = options;
  const { checksum, delete: remove, dryRun } = options.syncFlags;
  if ((checksum || remove || dryRun) && !options.sync) {
    const flag = checksum ? "--checksum" : remove ? "--delete" : "--dry-run";
    throw usageError(`${flag} needs --sync`, command);
  }
  if (options.sync && !options.recursive) {
    throw usageError("--sync needs -r", command);
  }
  if (options.output === "-" && options.json) {
    // Standard output carries the file's bytes and nothing else.
    throw usageError("--json cannot be combined with -o -", command);
  }
  if (options.classic && command !== undefined && command !== "get") {
    throw usageError(`--classic works with get only`, command);
  }
  if (
    options.classic &&
    (options.tokenFlag !== undefined || options.tokenFile !== undefined ||
      options.tls || options.ca !== undefined)
  ) {
    throw usageError(
      "--classic cannot be combined with --token, --token-file, --tls or --ca",
      command,
    );
  }
}

function checkArgumentCount(
  command: Command | undefined,
  rest: string[],
): void {
  if (command === undefined) return;
  const [min, max] = ARGUMENT_COUNTS[command];
  if (rest.length < min) {
    throw usageError(`${command}: missing argument`, command);
  }
  if (rest.length > max) {
    throw usageError(`${command}: too many arguments`, command);
  }
}

/**
 * `_client/cli_run.ts`'s entry: runs a parsed command line that is not a
 * request for help. (Declared here so that this module names no type of
 * `cli_run.ts`, which imports this one.)
 */
export type RunCommandLine = (options: CliOptions) => Promise<number>;

/**
 * Runs the command-line tool and sets `Deno.exitCode`: 0 ok, 1 failed
 * operation, 2 usage error.
 *
 * @param args Command-line arguments, without the program name.
 * @returns A promise that settles when the command is done.
 */
export async function main(args: string[] = Deno.args): Promise<void> {
  Deno.exitCode = await run(args);
}

/**
 * Runs the command-line tool.
 *
 * @param args Command-line arguments, without the program name.
 * @returns The exit status: 0 ok, 1 failed operation, 2 usage error.
 */
async function run(args: string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(args);
    if (options.help || options.command === "help") return showHelp(options);
  } catch (error) {
    return exit(error);
  }
  // Not a literal import(): Deno would read the command code (about 40
  // modules) at every start, --help included (see _common/late_import.ts).
  const { runCommandLine } = await lateImport<{
    runCommandLine: RunCommandLine;
  }>("./cli_run.ts", import.meta.url);
  return await runCommandLine(options);
}

/** `--help`, `COMMAND --help` and `help [COMMAND]`. */
function showHelp(options: CliOptions): number {
  const topic = options.command === "help" ? options.args[0] : options.command;
  if (topic === undefined) {
    console.log(TOOL_USAGE);
    return EXIT_OK;
  }
  if (!(COMMANDS as string[]).includes(topic)) {
    throw usageError(`unknown command '${topic}'`);
  }
  console.log(COMMAND_USAGE[topic as Command]);
  return EXIT_OK;
}
