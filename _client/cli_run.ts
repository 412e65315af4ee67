/**
 * The commands of `client.ts` (`ls`, `get`, `put`; the many-file and folder
 * commands are in `_client/cli_transfer.ts` and `_client/cli_sync.ts`,
 * imported when such a command runs): phrases for people and output
 * formatting, and the parsing of the command line (`_client/cli_options.ts`)
 * they start with. `_client/cli.ts` imports it unless the tool's help
 * alone was asked for.
 *
 * @module
 */

import { escapeControls, escapeLines, safeJson } from "../_common/escape.ts";
import type {
  ConnectOptions,
  TransferOptions,
  TransferResult,
} from "./types.ts";
import { lowerFirst, messageOf } from "../_common/text.ts";
import { classicGet } from "./classic.ts";
import type { TransferCli } from "./cli_transfer.ts";
import { jsonLine } from "./json_output.ts";
import { ProgressLine } from "./progress.ts";
import { EXIT_OK, UsageError } from "../_common/exit.ts";
import { lateImport } from "../_common/late_import.ts";
import { resolveToken } from "../_common/token_source.ts";
import { FerryError, type FerryErrorCode } from "../errors.ts";
import type { ByteWriter, Entry } from "../protocol.ts";
import { connect } from "./ferry_client.ts";
import {
  type CliOptions,
  exit,
  parseCli,
  showHelp,
  usageError,
} from "./cli_options.ts";
import type { Command } from "./cli_usage.ts";

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

/** A command line whose command is known (asked for when none was given). */
type CommandLine = CliOptions & { command: "get" | "ls" | "put" };

/**
 * Parses the command line, prints the help asked for or runs the command.
 *
 * @param args Command-line arguments, without the program name.
 * @returns The exit status: 0 ok, 1 failed operation, 2 usage error.
 */
export async function runCli(args: string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(args);
    if (options.help || options.command === "help") return showHelp(options);
  } catch (error) {
    return exit(error);
  }
  return await runCommandLine(options);
}

/**
 * Runs a parsed command line that is not a request for help: without a
 * command, on a terminal, it asks for a file name first.
 *
 * @param options The parsed command line.
 * @returns The exit status: 0 ok, 1 failed operation, 2 usage error.
 */
async function runCommandLine(options: CliOptions): Promise<number> {
  let line: CommandLine;
  try {
    line = withCommand(options);
    if (!line.classic) await loadSecurity(line);
  } catch (error) {
    return exit(error);
  }
  return await runCommand(line);
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
    const { runSyncGet, runSyncPut } = await lateImport<
      typeof import("./cli_sync.ts")
    >("./cli_sync.ts", import.meta.url);
    return command === "put"
      ? await runSyncPut(transferCli, args[0], args[1], line.syncFlags)
      : await runSyncGet(transferCli, args[0], line.syncFlags);
  }
  const { runGetMany, runGetTree, runPutTree } = await lateImport<
    typeof import("./cli_transfer.ts")
  >("./cli_transfer.ts", import.meta.url);
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
