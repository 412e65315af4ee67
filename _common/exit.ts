/**
 * How both command-line programs end: their exit statuses, and the one
 * place that turns what stopped them into an exit status and the text for
 * stderr (`PROGRAM: one line`, and the usage after a usage error). Each
 * program's `main` prints that text and sets `Deno.exitCode`; nothing calls
 * `Deno.exit`.
 *
 * @module
 */

import { escapeControls } from "./escape.ts";
import { FerryError } from "../errors.ts";
import { lowerFirst, messageOf } from "./text.ts";

/** Exit status: done. */
export const EXIT_OK = 0;
/** Exit status: the operation failed (or the server could not start). */
export const EXIT_FAILED = 1;
/** Exit status: a bad command line or setting. */
export const EXIT_USAGE = 2;

/**
 * A bad command line: exit status 2, the message, then (when given) the
 * usage text after a blank line.
 */
export class UsageError extends Error {
  /** The usage text to print after the message, if any. */
  readonly usage: string | undefined;

  /**
   * @param message One line, in lower case (it follows `PROGRAM: `).
   * @param usage The usage text to print after it.
   */
  constructor(message: string, usage?: string) {
    super(message);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** Options of {@linkcode exitFor}. */
export interface ExitOptions {
  /** The program's name, the prefix of the line: `ferry`, `ferry-server`. */
  program: string;
  /**
   * The exit status of anything but a usage error.
   *
   * @default {EXIT_FAILED}
   */
  status?: number;
  /**
   * The line for errors the program words itself (without the prefix);
   * `undefined` for the default: a `FerryError`'s message, lower first, or
   * the message of anything else.
   */
  describe?: (error: unknown) => string | undefined;
}

/** What a program does at its end: its exit status and text for stderr. */
export interface Exit {
  /** The exit status. */
  status: number;
  /** The text for stderr, without the final newline. */
  text: string;
}

/**
 * The exit status and stderr text for what stopped a command.
 *
 * @param error What was thrown.
 * @param options The program's name, status and wording.
 * @returns The exit.
 */
export function exitFor(error: unknown, options: ExitOptions): Exit {
  const prefix = `${options.program}: `;
  if (error instanceof UsageError) {
    return {
      status: EXIT_USAGE,
      text: prefix + error.message +
        (error.usage === undefined ? "" : `\n\n${error.usage}`),
    };
  }
  const line = options.describe?.(error) ??
    (error instanceof FerryError
      ? lowerFirst(escapeControls(error.message))
      : messageOf(error));
  return { status: options.status ?? EXIT_FAILED, text: prefix + line };
}
