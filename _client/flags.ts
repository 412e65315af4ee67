/**
 * The client command line's flag parser: the part of `node:util`'s
 * `parseArgs` that `cli.ts` uses (strict, positionals allowed, `string` and
 * `boolean` flags, one-letter short forms), with the same results and the
 * same error messages (a test compares the two over thousands of command
 * lines).
 *
 * Why not `parseArgs` itself: importing any `node:` module makes Deno set
 * up its Node compatibility layer first, which cost `client.ts --help` about
 * 10 ms of its 50 (hyperfine, see the commit that added this file), and
 * nothing else on the paths of `--help`, `ls` or a single `get` needs it.
 *
 * Syntax, as `parseArgs`: `--name`, `--name VALUE`, `--name=VALUE`, `-n`,
 * `-n VALUE`, `-nVALUE`, grouped short booleans (`-rf`, `-rfo VALUE`), and
 * `--`, after which everything is positional. A lone `-` is positional.
 *
 * @module
 */

/** One flag: its type and optional one-letter short form. */
export interface FlagSpec {
  /** `string` flags take a value; `boolean` flags never do. */
  readonly type: "string" | "boolean";
  /** The short form, one character without the dash. */
  readonly short?: string;
}

/** What was given of each flag (absent flags are missing). */
export type FlagValues<T extends Readonly<Record<string, FlagSpec>>> = {
  [K in keyof T]?: T[K]["type"] extends "string" ? string : boolean;
};

/** Flags and positional arguments, in order. */
export interface ParsedFlags<T extends Readonly<Record<string, FlagSpec>>> {
  /** The flags given; a flag given twice keeps its last value. */
  values: FlagValues<T>;
  /** Everything that is not a flag or a flag's value. */
  positionals: string[];
}

/**
 * Parses a command line against `specs`, strictly.
 *
 * @param args The arguments, without the program name.
 * @param specs The flags, by long name.
 * @returns The flags given and the positional arguments.
 * @throws {TypeError} With `parseArgs`'s message for an unknown flag, a
 * missing value, a value given to a boolean flag, or a value that looks
 * like a flag (`--port -5`: write `--port=-5`).
 *
 * @example Flags and positionals
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./flags.ts";
 * const { values, positionals } = parseFlags(["get", "-fo", "out", "a"], {
 *   force: { type: "boolean", short: "f" },
 *   output: { type: "string", short: "o" },
 * });
 * assert.deepEqual({ ...values }, { force: true, output: "out" });
 * assert.deepEqual(positionals, ["get", "a"]);
 * ```
 */
export function parseFlags<T extends Readonly<Record<string, FlagSpec>>>(
  args: readonly string[],
  specs: T,
): ParsedFlags<T> {
  const values: Record<string, string | boolean> = Object.create(null);
  const positionals: string[] = [];
  const queue = [...args];
  const store = (token: FlagToken): void => {
    checkToken(specs, token);
    values[token.name] = token.value ?? true;
  };
  while (queue.length > 0) {
    const arg = queue.shift()!;
    if (arg === "--") {
      positionals.push(...queue);
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") {
      positionals.push(arg);
    } else if (arg[1] !== "-") {
      const name = longName(specs, arg[1]);
      if (arg.length === 2) {
        // -o VALUE, -f
        const takesValue = specOf(specs, name)?.type === "string";
        const value = takesValue ? queue.shift() : undefined;
        store({ name, rawName: arg, value, inline: false });
      } else if (specOf(specs, name)?.type === "string") {
        // -oVALUE
        store({
          name,
          rawName: `-${arg[1]}`,
          value: arg.slice(2),
          inline: true,
        });
      } else {
        queue.unshift(...expandGroup(specs, arg));
      }
    } else if (arg.indexOf("=", 3) !== -1) {
      // --name=VALUE
      const equals = arg.indexOf("=");
      const name = arg.slice(2, equals);
      store({
        name,
        rawName: `--${name}`,
        value: arg.slice(equals + 1),
        inline: true,
      });
    } else {
      // --name, --name VALUE
      const name = arg.slice(2);
      const takesValue = specOf(specs, name)?.type === "string";
      const value = takesValue ? queue.shift() : undefined;
      store({ name, rawName: arg, value, inline: false });
    }
  }
  return { values: values as FlagValues<T>, positionals };
}

/** One flag as typed: its long name, its spelling, its value. */
interface FlagToken {
  name: string;
  /** `-o` or `--output`, as typed. */
  rawName: string;
  value: string | undefined;
  /** Whether the value was in the same argument (`--a=b`, `-ob`). */
  inline: boolean;
}

/** The spec of `name`, if it is one of `specs`' own keys. */
function specOf(
  specs: Readonly<Record<string, FlagSpec>>,
  name: string,
): FlagSpec | undefined {
  return Object.hasOwn(specs, name) ? specs[name] : undefined;
}

/** The long name of a short flag, or the letter itself if there is none. */
function longName(
  specs: Readonly<Record<string, FlagSpec>>,
  short: string,
): string {
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.short === short) return name;
  }
  return short;
}

/** `-abfVALUE` as `-a`, `-b`, `-fVALUE` (a string flag ends the group). */
function expandGroup(
  specs: Readonly<Record<string, FlagSpec>>,
  arg: string,
): string[] {
  const expanded: string[] = [];
  for (let index = 1; index < arg.length; index++) {
    const short = arg[index];
    const type = specOf(specs, longName(specs, short))?.type;
    if (type !== "string" || index === arg.length - 1) {
      expanded.push(`-${short}`);
    } else {
      expanded.push(`-${arg.slice(index)}`);
      break;
    }
  }
  return expanded;
}

/** `parseArgs`'s strict checks, with its messages. */
function checkToken(
  specs: Readonly<Record<string, FlagSpec>>,
  token: FlagToken,
): void {
  const { name, rawName, value } = token;
  const spec = specOf(specs, name);
  if (spec === undefined) {
    throw new TypeError(
      `Unknown option '${rawName}'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- ${
        JSON.stringify(rawName)
      }`,
    );
  }
  const both = spec.short === undefined
    ? `--${name}`
    : `-${spec.short}, --${name}`;
  if (spec.type === "string" && value === undefined) {
    throw new TypeError(`Option '${both} <value>' argument missing`);
  }
  if (spec.type === "boolean" && value !== undefined) {
    throw new TypeError(`Option '${both}' does not take an argument`);
  }
  if (
    !token.inline && value !== undefined && value.length > 1 && value[0] === "-"
  ) {
    const example = rawName.startsWith("--")
      ? `'${rawName}=-XYZ'`
      : `'--${name}=-XYZ' or '${rawName}-XYZ'`;
    throw new TypeError(
      `Option '${rawName}' argument is ambiguous.\nDid you forget to specify the option argument for '${rawName}'?\nTo specify an option argument starting with a dash use ${example}.`,
    );
  }
}
