/**
 * The command line of `client.ts`: `main`. The plain request for help
 * (`--help`, `-h` or `help` alone) prints the usage at once; anything else
 * is parsed and run by `_client/cli_run.ts`, imported then. Every module a
 * process loads, or may load by a literal `import()`, costs start-up time
 * (see `_common/late_import.ts`), and `client.ts --help` loads only this
 * module and the usage texts of the command line.
 *
 * @module
 */

import { lateImport } from "../_common/late_import.ts";
import { TOOL_USAGE } from "./cli_usage.ts";

/** The arguments that ask for the tool's help and nothing else. */
const PLAIN_HELP = ["--help", "-h", "help"];

/**
 * Runs the command-line tool and sets `Deno.exitCode`: 0 ok, 1 failed
 * operation, 2 usage error.
 *
 * @param args Command-line arguments, without the program name.
 * @returns A promise that settles when the command is done.
 */
export async function main(args: string[] = Deno.args): Promise<void> {
  if (args.length === 1 && PLAIN_HELP.includes(args[0])) {
    // What the parser would do (cli_options.ts showHelp), without it.
    console.log(TOOL_USAGE);
    Deno.exitCode = 0;
    return;
  }
  // Not a literal import(): Deno would read the command code (about 40
  // modules) at every start, --help included.
  let cli: typeof import("./cli_run.ts");
  try {
    cli = await lateImport("./cli_run.ts", import.meta.url);
  } catch (error) {
    // Such as a narrowed --allow-read: one line, as for any failure.
    console.error(`ferry: ${error instanceof Error ? error.message : error}`);
    Deno.exitCode = 1;
    return;
  }
  Deno.exitCode = await cli.runCli(args);
}
