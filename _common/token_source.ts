/**
 * Where the command-line tools find the shared token: `--token SECRET`,
 * then `--token-file PATH` (its first line, trimmed), then the environment
 * variable `FERRY_TOKEN`; the first one given wins.
 *
 * A token on the command line is visible to every user of the machine
 * (`ps`); the file and the variable are not. The variable is read only when
 * the process may read it (`--allow-env=FERRY_TOKEN` or `--allow-env`):
 * this module never triggers a permission prompt.
 *
 * @module
 */

import { FerryError } from "../errors.ts";
import { readFlagFile } from "./flag_file.ts";

/**
 * Name of the environment variable that holds the token.
 *
 * @example Read it yourself
 * ```ts ignore
 * import { TOKEN_ENV } from "./token_source.ts";
 * console.log(Deno.env.get(TOKEN_ENV) !== undefined);
 * ```
 */
export const TOKEN_ENV = "FERRY_TOKEN";

/**
 * Where a token came from, or why there is none.
 *
 * @example No token anywhere
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TokenSource } from "./token_source.ts";
 * const source: TokenSource = { token: undefined, from: "none", envReadable: true };
 * assert(source.from === "none");
 * ```
 */
export interface TokenSource {
  /** The token, or `undefined` when none was given. */
  token: string | undefined;
  /** Which source gave it. */
  from: "flag" | "file" | "env" | "none";
  /** Whether the process may read `FERRY_TOKEN` (false: it was not looked at). */
  envReadable: boolean;
}

/**
 * Finds the token: the flag's value, else the file's first line, else
 * `FERRY_TOKEN` (ignored when empty or not readable).
 *
 * @param flag The value of `--token`, if given.
 * @param file The value of `--token-file`, if given.
 * @returns The token and its source.
 * @throws {FerryError} `LOCAL` if `--token` is empty, or the token file
 * cannot be read or its first line is empty.
 *
 * @example The flag wins
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveToken } from "./token_source.ts";
 * const { token, from } = await resolveToken("s3cret", undefined);
 * assert(token === "s3cret" && from === "flag");
 * ```
 */
export async function resolveToken(
  flag: string | undefined,
  file: string | undefined,
): Promise<TokenSource> {
  const envReadable = canReadEnv();
  if (flag !== undefined) {
    if (flag === "") throw new FerryError("LOCAL", "Empty --token");
    return { token: flag, from: "flag", envReadable };
  }
  if (file !== undefined) {
    return { token: await readTokenFile(file), from: "file", envReadable };
  }
  if (envReadable) {
    const value = Deno.env.get(TOKEN_ENV);
    if (value !== undefined && value !== "") {
      return { token: value, from: "env", envReadable };
    }
  }
  return { token: undefined, from: "none", envReadable };
}

/**
 * Reads a token file: its first line, without surrounding white space.
 *
 * @param path The file.
 * @returns The token.
 * @throws {FerryError} `LOCAL` if the file cannot be read or the line is
 * empty.
 *
 * @example Read a token file
 * ```ts ignore
 * import { readTokenFile } from "./token_source.ts";
 * const token = await readTokenFile("/run/secrets/ferry");
 * ```
 */
export async function readTokenFile(path: string): Promise<string> {
  const text = await readFlagFile(path, "--token-file");
  const token = text.split(/\r?\n/, 1)[0].trim();
  if (token === "") {
    throw new FerryError(
      "LOCAL",
      `Empty token in --token-file ${path} (the first line is used)`,
    );
  }
  return token;
}

function canReadEnv(): boolean {
  try {
    return Deno.permissions.querySync({ name: "env", variable: TOKEN_ENV })
      .state === "granted";
  } catch {
    return false;
  }
}
