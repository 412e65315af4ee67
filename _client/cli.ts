/**
 * The command line of `client.ts`: `main` parses it, prints the help that
 * was asked for, and otherwise imports `_client/cli_run.ts`, which runs the
 * command. `--help` thus loads only the parser and the usage texts: every
 * module a process loads costs start-up time (see the README's Performance
 * section).
 *
 * @module
 */

import { EXIT_OK } from "../_common/exit.ts";
import { lateImport } from "../_common/late_import.ts";
import { type CliOptions, parseCli } from "./cli_options.ts";
import {
  type Command,
  COMMAND_USAGE,
  COMMANDS,
  exit,
  TOOL_USAGE,
  usageError,
} from "./cli_usage.ts";

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
  const { runCommandLine } = await lateImport<typeof import("./cli_run.ts")>(
    new URL("./cli_run.ts", import.meta.url),
  );
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
