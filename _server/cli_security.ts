/**
 * The security settings of `server.ts`'s command line: the TLS certificate
 * and key files, and the warnings printed at start when the server is
 * reachable from other machines without a token, or takes uploads without
 * one.
 *
 * @module
 */

import { FerryError } from "../errors.ts";
import { readFlagFile } from "../_common/flag_file.ts";

/**
 * A certificate chain and its key, PEM text.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TlsFiles } from "./cli_security.ts";
 * const files: TlsFiles = { cert: "-----BEGIN CERTIFICATE-----...", key: "..." };
 * assert(files.cert.startsWith("-----BEGIN"));
 * ```
 */
export interface TlsFiles {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
}

/**
 * Reads `--cert` and `--key`: both or neither.
 *
 * @param certPath The value of `--cert`, if given.
 * @param keyPath The value of `--key`, if given.
 * @returns Their contents, or `undefined` when neither was given.
 * @throws {FerryError} `LOCAL` if only one is given or a file cannot be
 * read.
 *
 * @example No TLS
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTlsFiles } from "./cli_security.ts";
 * assert(await loadTlsFiles(undefined, undefined) === undefined);
 * ```
 */
export async function loadTlsFiles(
  certPath: string | undefined,
  keyPath: string | undefined,
): Promise<TlsFiles | undefined> {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) {
    throw new FerryError("LOCAL", "--cert and --key go together");
  }
  return {
    cert: await readFlagFile(certPath, "--cert"),
    key: await readFlagFile(keyPath, "--key"),
  };
}

/**
 * Tells whether a listening address is reachable from this machine only.
 *
 * @param hostname An IP address or `localhost`.
 * @returns True for `127.0.0.0/8`, `::1` and `localhost`.
 *
 * @example Loopback or not
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopback } from "./cli_security.ts";
 * assert(isLoopback("127.0.0.1") && isLoopback("::1"));
 * assert(!isLoopback("0.0.0.0") && !isLoopback("::"));
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" ||
    /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host) ||
    /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(host);
}

/**
 * The server's start-up warnings, one line each (without a prefix).
 *
 * @param settings Where it listens and how it is protected.
 * @returns The warnings; empty when nothing is exposed.
 *
 * @example Exposed without a token
 * ```ts
 * import assert from "node:assert/strict";
 * import { startupWarnings } from "./cli_security.ts";
 * const lines = startupWarnings({
 *   hostname: "0.0.0.0", token: false, tls: false, allowUpload: false, envReadable: true,
 *   strictOpen: true,
 * });
 * assert(lines.length === 2);
 * ```
 */
export function startupWarnings(settings: {
  hostname: string;
  token: boolean;
  tls: boolean;
  allowUpload: boolean;
  envReadable: boolean;
  /** Whether the kernel can name an open file (`/proc/self/fd`, `-A`). */
  strictOpen: boolean;
  /**
   * Whether strict mode is on (`--allow-ffi` on Linux): MKDIR and upload
   * placement act relative to folder descriptors.
   * @default {false}
   */
  strictAt?: boolean;
}): string[] {
  const lines: string[] = [];
  const hint = settings.envReadable
    ? ""
    : " (FERRY_TOKEN is read only with --allow-env=FERRY_TOKEN)";
  if (!isLoopback(settings.hostname) && !settings.token) {
    lines.push(
      `warning: listening on ${settings.hostname} without a token: anyone who can reach this port can read the root${hint}`,
    );
  }
  if (settings.allowUpload && !settings.token) {
    lines.push(
      `warning: uploads are allowed without a token: anyone who can connect can write into the root${hint}`,
    );
  }
  // The window a local user who can write inside the root still has (see
  // the README, "Local users inside the root").
  if (!settings.strictOpen) {
    lines.push(
      "warning: without -A on Linux, a local user who can write inside the root and swaps a folder for a link twice within microseconds can make a read or an upload reach a file outside it",
    );
  }
  if (settings.allowUpload && !settings.strictAt) {
    lines.push(
      "warning: without --allow-ffi on Linux, uploads are moved into place, and MKDIR and DELETE act, by name: a local user who can write inside the root and swaps a folder for a link at that moment can make them act outside it",
    );
  } else if (settings.allowUpload) {
    lines.push(
      "warning: resumable upload parts are created by name: a local user who can write inside the root and swaps a folder for a link at that moment can make one appear outside it",
    );
  }
  if (!isLoopback(settings.hostname) && !settings.tls) {
    lines.push(
      `warning: listening on ${settings.hostname} without TLS: file names and contents cross the network unencrypted`,
    );
  }
  return lines;
}
