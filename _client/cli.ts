/**
 * The command line of `client.ts`: argument parsing, usage texts, phrases
 * for people and output formatting (`ls`, `get`, `put`; the many-file and
 * folder commands are in `_client/cli_transfer.ts` and `_client/cli_sync.ts`,
 * imported when such a command runs). Only this module prints.
 *
 * @module
 */

import { escapeControls, escapeLines, safeJson } from "../_common/escape.ts";
import { parseFlags } from "./flags.ts";
import type {
  ConnectOptions,
  TransferOptions,
  TransferResult,
} from "./types.ts";
import {
  DEFAULT_HOSTNAME,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_PORT,
} from "../_common/defaults.ts";
import { lowerFirst, messageOf } from "../_common/text.ts";
import { classicGet } from "./classic.ts";
import type { TransferCli } from "./cli_transfer.ts";
import { jsonLine } from "./json_output.ts";
import type { SyncFlags } from "./cli_sync.ts";
import { ProgressLine } from "./progress.ts";
import {
  EXIT_OK,
  exitFor,
  type ExitOptions,
  UsageError,
} from "../_common/exit.ts";
import { resolveToken } from "../_common/token_source.ts";
import { FerryError, type FerryErrorCode } from "../errors.ts";
import type { ByteWriter, Entry } from "../protocol.ts";
import { connect } from "./ferry_client.ts";

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

type Command = "get" | "ls" | "put" | "help";

const COMMANDS: readonly Command[] = ["get", "ls", "put", "help"];

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

/** Phrases for people, by error code. */
const PHRASES: Record<FerryErrorCode, string> = {
  NOT_FOUND: "not found",
  FORBIDDEN: "forbidden",
  EXISTS: "already exists (use --force to overwrite)",
  BAD_REQUEST: "bad request",
  TOO_LARGE: "too large",
  UNSUPPORTED_VERSION: "unsupported protocol version",
  INTERNAL: "server error",
  UNAUTHORIZED: "unauthorized",
  BUSY: "server busy, try again later",
  CHANGED: "file changed while it was sent, try again",
  INTEGRITY: "integrity check failed",
  CONNECTION: "connection failed",
  TRUNCATED: "connection failed",
  PROTOCOL: "protocol error",
  TIMEOUT: "timed out",
  LOCAL: "local file error",
};

/** A usage error followed by the usage of `command` (or of the tool). */
function usageError(message: string, command?: Command): UsageError {
  return new UsageError(
    message,
    command === undefined ? TOOL_USAGE : COMMAND_USAGE[command],
  );
}

interface CliOptions {
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

/** The last segment of a remote path or classic name, or "" if none. */
function baseName(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? "";
  return base === "." || base === ".." ? "" : base;
}

function pad2(value: number): string {
  return String(value).padStart(2, "0");
}

function formatTime(ms: number): string {
  const date = new Date(ms);
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${
    pad2(date.getDate())
  } ${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

function formatEntries(entries: readonly Entry[]): string {
  const sizeWidth = Math.max(
    0,
    ...entries.map((entry) => String(entry.size).length),
  );
  return entries.map((entry) =>
    `${entry.kind.padEnd(4)}  ${String(entry.size).padStart(sizeWidth)}  ${
      formatTime(entry.mtime)
    }  ${escapeControls(entry.name)}`
  ).join("\n");
}

/** One line for people about a failed operation. */
function describeFailure(
  error: FerryError,
  command: Command,
  paths: { local?: string; remote?: string },
): string {
  const detail = lowerFirst(escapeControls(error.message));
  switch (error.code) {
    case "NOT_FOUND":
      // On put, the server found no folder to upload into.
      return command === "put"
        ? `not found on the server: ${paths.remote}`
        : PHRASES.NOT_FOUND;
    case "EXISTS":
      if (command === "put") {
        return `${paths.remote} already exists on the server (use --force to overwrite)`;
      }
      return paths.local !== undefined
        ? `${paths.local} already exists (use --force to overwrite)`
        : PHRASES.EXISTS;
    case "CONNECTION":
    case "TRUNCATED":
    case "LOCAL":
      return detail;
    case "INTEGRITY":
      return PHRASES.INTEGRITY;
    default:
      return `${PHRASES[error.code]}: ${detail}`;
  }
}

/** Resolves the token (flag, file, FERRY_TOKEN) and reads `--ca`. */
async function loadSecurity(options: CliOptions): Promise<void> {
  try {
    options.token = (await resolveToken(options.tokenFlag, options.tokenFile))
      .token;
  } catch (error) {
    // A token that cannot be read is a bad setting: exit status 2.
    if (!(error instanceof FerryError)) throw error;
    throw new UsageError(lowerFirst(error.message));
  }
  if (options.ca !== undefined) {
    try {
      options.caCerts = [await Deno.readTextFile(options.ca)];
    } catch (error) {
      const reason = error instanceof Deno.errors.NotFound
        ? "not found"
        : messageOf(error);
      throw new UsageError(`cannot read --ca ${options.ca}: ${reason}`);
    }
  }
}

/** The library's connect options for the command line's settings. */
function connectOptionsOf(options: CliOptions): ConnectOptions {
  return {
    hostname: options.hostname,
    port: options.port,
    token: options.token,
    tls: options.tls || options.caCerts !== undefined,
    caCerts: options.caCerts,
    idleTimeoutMs: options.idleTimeoutMs,
    maxListEntries: options.maxListEntries,
    digest: options.sha256 ? "sha256" : undefined,
  };
}

/** Where `get NAME` saves: `-o PATH`, `-o -` (stdout) or NAME's last segment. */
async function getDestination(
  options: CliOptions,
  name: string,
): Promise<string | ByteWriter> {
  if (options.output === "-") return Deno.stdout;
  const path = options.output;
  if (path !== undefined) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (!info?.isDirectory) return path;
  }
  const base = baseName(name);
  if (base === "") {
    throw usageError(
      `cannot name a file after '${name}'; use -o PATH`,
      "get",
    );
  }
  return path === undefined ? base : `${path.replace(/[\\/]+$/, "")}/${base}`;
}

/**
 * The resume settings of one transfer: `--no-resume`, a `resuming at N%`
 * line on a terminal, and a line whenever kept bytes are dropped.
 */
function resumeOptions(
  options: CliOptions,
  subject: string,
): Pick<TransferOptions, "resume" | "onResume" | "onRestart"> {
  return {
    resume: options.resume,
    onResume(offset, total) {
      if (options.quiet || !Deno.stderr.isTerminal()) return;
      const percent = Math.floor(offset / Math.max(total, 1) * 100);
      console.error(
        `ferry: ${escapeControls(subject)}: resuming at ${percent}%`,
      );
    },
    onRestart(reason) {
      console.error(
        `ferry: ${escapeControls(subject)}: ${
          escapeControls(reason)
        }, starting over`,
      );
    },
  };
}

/** Downloads one file, with the ferry or the classic protocol. */
async function runGet(
  options: CliOptions,
  get: {
    name: string;
    destination: string | ByteWriter;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<TransferResult> {
  const { name, destination } = get;
  if (options.classic) {
    return await classicGet(name, destination, {
      hostname: options.hostname,
      port: options.port,
      overwrite: options.force,
    });
  }
  await using client = await connect(connectOptionsOf(options));
  return await client.get(name, destination, {
    ...resumeOptions(options, `get ${name}`),
    overwrite: options.force,
    onProgress: get.onProgress,
  });
}

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

/** A command line whose command is known (asked for when none was given). */
type CommandLine = CliOptions & { command: "get" | "ls" | "put" };

/**
 * Runs the command-line tool.
 *
 * @param args Command-line arguments, without the program name.
 * @returns The exit status: 0 ok, 1 failed operation, 2 usage error.
 */
async function run(args: string[]): Promise<number> {
  let line: CommandLine;
  try {
    const options = parseCli(args);
    if (options.help || options.command === "help") return showHelp(options);
    line = withCommand(options);
    if (!line.classic) await loadSecurity(line);
  } catch (error) {
    return exit(error);
  }
  return await runCommand(line);
}

/** Prints an exit's text on stderr and returns its status. */
function exit(
  error: unknown,
  options: Omit<ExitOptions, "program"> = {},
): number {
  const { status, text } = exitFor(error, { program: "ferry", ...options });
  console.error(escapeLines(text));
  return status;
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

/**
 * The command line with its command: without one, on a terminal, it asks
 * for a file name like the lab's classic client and gets it.
 */
function withCommand(options: CliOptions): CommandLine {
  const command = options.command;
  if (command !== undefined && command !== "help") {
    return { ...options, command };
  }
  if (!Deno.stdin.isTerminal()) throw usageError("missing command");
  const answer = prompt("Enter the filename you want to download:");
  if (answer === null || answer.trim() === "") {
    throw new UsageError("no file name given");
  }
  return { ...options, command: "get", args: [answer.trim()] };
}

/** Writes text to stderr synchronously (for the progress line). */
function writeStderr(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  while (at < bytes.length) at += Deno.stderr.writeSync(bytes.subarray(at));
}

/** What a command's failure is about, for its message. */
interface Subject {
  /** `get NAME`, `put LOCAL`, `ls`. */
  name: string;
  /** The local file, once known. */
  local?: string;
  /** The remote file, once known. */
  remote?: string;
}

/** Runs `get`, `ls` or `put`; a failure is one line on stderr. */
async function runCommand(line: CommandLine): Promise<number> {
  const { command, args } = line;
  const subject: Subject = { name: [command, ...args.slice(0, 1)].join(" ") };
  const progress = new ProgressLine({
    write: writeStderr,
    quiet: line.quiet,
  });
  try {
    if (isManyFiles(line)) return await runManyFiles(line, progress);
    if (command === "get") await runGetCommand(line, progress, subject);
    else if (command === "put") await runPutCommand(line, progress, subject);
    else await runLs(line);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof FerryError) {
      progress.finish();
      if (line.json && command !== "ls") {
        console.log(jsonLine(subject.remote ?? args[0], { error }));
      }
    }
    return exit(error, {
      describe: (error) =>
        error instanceof FerryError
          ? `${subject.name}: ${describeFailure(error, command, subject)}`
          : undefined,
    });
  }
}

/** Whether the command moves many files: `get A B`, `get -r`, `put -r`. */
function isManyFiles(line: CommandLine): boolean {
  return (line.recursive && line.command === "put") ||
    (line.command === "get" && (line.recursive || line.args.length > 1));
}

/** `get A B C`, `get -r DIR`, `put -r LOCAL [REMOTE]`. */
async function runManyFiles(
  line: CommandLine,
  progress: ProgressLine,
): Promise<number> {
  const { command, args } = line;
  if (line.classic) {
    throw usageError("--classic gets one file at a time", command);
  }
  if (line.recursive && args.length > (command === "put" ? 2 : 1)) {
    throw usageError(`${command} -r: too many arguments`, command);
  }
  const transferCli: TransferCli = {
    connect: () => connect(connectOptionsOf(line)),
    force: line.force,
    json: line.json,
    output: line.output,
    progress,
    // Escaped line by line: the lines are ours, the text in them may be
    // the peer's.
    out: (text) => console.log(escapeLines(text)),
    err: (text) => console.error(escapeLines(text)),
    usage: (message) => {
      throw usageError(message, command);
    },
    describe: (error, name, where) => describeFailure(error, name, where),
  };
  if (line.sync) {
    const { runSyncGet, runSyncPut } = await import("./cli_sync.ts");
    return command === "put"
      ? await runSyncPut(transferCli, args[0], args[1], line.syncFlags)
      : await runSyncGet(transferCli, args[0], line.syncFlags);
  }
  const { runGetMany, runGetTree, runPutTree } = await import(
    "./cli_transfer.ts"
  );
  if (command === "put") return await runPutTree(transferCli, args[0], args[1]);
  return line.recursive
    ? await runGetTree(transferCli, args[0])
    : await runGetMany(transferCli, args);
}

/** `get NAME`: into a file, or to standard output with `-o -`. */
async function runGetCommand(
  line: CommandLine,
  progress: ProgressLine,
  subject: Subject,
): Promise<void> {
  const name = line.args[0];
  const target = await getDestination(line, name);
  if (typeof target === "string") subject.local = target;
  const result = await runGet(line, {
    name,
    destination: target,
    onProgress: (done, total) => progress.update(name, done, total),
  }).finally(() => progress.finish());
  if (line.json) {
    console.log(jsonLine(name, { result }));
  } else if (subject.local !== undefined) {
    console.log(
      `${subject.local}: ${result.bytes} bytes in ${
        result.seconds.toFixed(2)
      } s, ${result.algorithm} ${result.digest}`,
    );
  }
}

/** `put LOCAL [REMOTE]`. */
async function runPutCommand(
  line: CommandLine,
  progress: ProgressLine,
  subject: Subject,
): Promise<void> {
  const local = line.args[0];
  const remote = line.args[1] ?? baseName(local);
  subject.remote = remote;
  if (remote === "") {
    throw usageError(
      `cannot name a remote file after '${local}'; give REMOTE`,
      "put",
    );
  }
  await using client = await connect(connectOptionsOf(line));
  const result = await client.put(local, remote, {
    ...resumeOptions(line, `put ${local}`),
    overwrite: line.force,
    onProgress: (done, total) => progress.update(remote, done, total),
  }).finally(() => progress.finish());
  console.log(
    line.json
      ? jsonLine(remote, { result })
      : `${remote}: ${result.bytes} bytes uploaded in ${
        result.seconds.toFixed(2)
      } s, ${result.algorithm} ${result.digest}`,
  );
}

/** `ls [PATH]`. */
async function runLs(line: CommandLine): Promise<void> {
  await using client = await connect(connectOptionsOf(line));
  const entries = await client.list(line.args[0] ?? "", {
    recursive: line.recursive,
  });
  if (line.json) console.log(safeJson(entries, 2));
  else if (entries.length > 0) console.log(formatEntries(entries));
}
