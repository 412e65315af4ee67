/**
 * The command line of `client.ts` parsed and checked into {@linkcode
 * CliOptions}: unknown flags, flags a command does not take, flags that do
 * not go together and wrong argument counts are usage errors, printed with
 * the usage. Also the help asked for with a command (`get --help`).
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
import type { SyncFlags } from "./cli_sync.ts";
import {
  type Command,
  COMMAND_USAGE,
  COMMANDS,
  TOOL_USAGE,
} from "./cli_usage.ts";

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
export function parseCli(args: string[]): CliOptions {
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
 * Prints the help asked for: `--help`, `COMMAND --help`, `help [COMMAND]`.
 *
 * @param options The parsed command line.
 * @returns The exit status, 0.
 * @throws {UsageError} For `help` of an unknown command.
 */
export function showHelp(options: CliOptions): number {
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
