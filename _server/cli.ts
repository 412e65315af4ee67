/**
 * The command line of `server.ts`: flags, usage text, the request log on
 * stderr and the signals that stop the server. Only this module prints; it
 * sets `Deno.exitCode` (through `_common/exit.ts`) and never exits.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  loadTlsFiles,
  startupWarnings,
  type TlsFiles,
} from "./cli_security.ts";
import { resolveToken, type TokenSource } from "../_common/token_source.ts";
import { formatLogJson, formatLogText, LOG_FORMATS } from "./log.ts";
import { LIMIT_FLAGS, LIMITS_USAGE, limitsFromFlags } from "./cli_limits.ts";
import type { LimitOptions } from "./limits.ts";
import { exitFor, UsageError } from "../_common/exit.ts";
import { formatAddress, lowerFirst, messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import { strictLibc } from "./dir_handle.ts";
import { serve } from "./serve.ts";
import { DEFAULT_PORT, type FerryServer } from "./types.ts";

const USAGE = `USAGE:
  server.ts [OPTIONS]

  Serves a folder to ferry clients and to the classic lab client.
  Run with: deno run --allow-net --allow-read [--allow-write]
            [--allow-env=FERRY_TOKEN] server.ts
  (--allow-write is needed for --allow-upload; on Linux, -A also lets the
  server check through /proc/self/fd where each opened file really is)

OPTIONS:
  --root DIR       folder to serve (default: .)
  --host HOST      address to listen on (default: 127.0.0.1)
  --port PORT      port to listen on, 0 for any free port (default: 65432)
  --allow-upload   accept uploads (PUT) into the root (default: off)
  --allow-delete   accept DELETE (put -r --sync --delete) inside the root;
                   only with --allow-upload (default: off)
  --no-classic     refuse classic clients (default: classic clients served)
  --token SECRET   require clients to prove they know SECRET (default: none;
                   visible in ps: prefer FERRY_TOKEN or --token-file)
  --token-file PATH  read the token from the first line of PATH (default: none)
                   precedence: --token, then --token-file, then FERRY_TOKEN
                   (FERRY_TOKEN needs --allow-env=FERRY_TOKEN)
  --cert FILE      TLS certificate chain, PEM; needs --key (default: plain TCP)
  --key FILE       TLS private key, PEM; needs --cert (default: none)
  --proxy-protocol expect a PROXY v1/v2 header (HAProxy send-proxy-v2) first
                   on every connection and log the client it names; refuse
                   connections without one; not with --cert (default: off)
  --lease-timeout SECONDS  servers sharing a root: take over an upload part
                   whose lease was not refreshed for this long (default: 10)
  --http [HOST:]PORT  also answer HTTP (browsers, curl) on PORT, HTTPS with
                   --cert/--key; HOST defaults to --host (default: off)
${LIMITS_USAGE}
  --log FORMAT     request log on stderr, one line per request: text or json
                   (default: text)
  --quiet          do not log requests to stderr (default: one line each)
  -h, --help       print this help and exit`;

/** Parsed command line. */
interface Flags {
  root: string;
  host: string;
  port: number;
  allowUpload: boolean;
  allowDelete: boolean;
  classic: boolean;
  quiet: boolean;
  log: "text" | "json";
  help: boolean;
  token: string | undefined;
  tokenFile: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  proxyProtocol: boolean;
  leaseTimeoutMs: number | undefined;
  http: { hostname: string | undefined; port: number } | undefined;
  limits: LimitOptions;
}

/** The flags, for `parseArgs` (limit flags from `cli_limits.ts`). */
const FLAG_OPTIONS = {
  root: { type: "string", default: "." },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: String(DEFAULT_PORT) },
  "allow-upload": { type: "boolean", default: false },
  "allow-delete": { type: "boolean", default: false },
  "no-classic": { type: "boolean", default: false },
  quiet: { type: "boolean", default: false },
  log: { type: "string", default: "text" },
  help: { type: "boolean", short: "h", default: false },
  token: { type: "string" },
  "token-file": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "proxy-protocol": { type: "boolean", default: false },
  "lease-timeout": { type: "string" },
  http: { type: "string" },
  ...LIMIT_FLAGS,
} as const;

/** Parses the command line; throws a one-line message on a usage error. */
function parseFlags(args: string[]): Flags {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: FLAG_OPTIONS,
    }));
  } catch (error) {
    const text = messageOf(error);
    throw new UsageError(text.split(". ")[0].replace(/\.$/, ""), USAGE);
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new UsageError(`bad port: ${values.port}`, USAGE);
  }
  if (values.host === "") throw new UsageError("empty --host", USAGE);
  if (values["proxy-protocol"] && values.cert !== undefined) {
    throw new UsageError(
      "--proxy-protocol cannot be combined with --cert: terminate TLS at the load balancer",
      USAGE,
    );
  }
  if (!LOG_FORMATS.includes(values.log)) {
    throw new UsageError(
      `bad --log format: ${values.log} (text or json)`,
      USAGE,
    );
  }
  if (values["allow-delete"] && !values["allow-upload"]) {
    throw new UsageError("--allow-delete needs --allow-upload", USAGE);
  }
  const leaseSeconds = values["lease-timeout"];
  if (
    leaseSeconds !== undefined &&
    !(/^\d+(\.\d+)?$/.test(leaseSeconds) && Number(leaseSeconds) > 0)
  ) {
    throw new UsageError(`bad --lease-timeout: ${leaseSeconds}`);
  }
  const http = values.http === undefined ? undefined : parseHttp(values.http);
  let limits: LimitOptions;
  try {
    limits = limitsFromFlags(values);
  } catch (error) {
    throw new UsageError(messageOf(error), USAGE);
  }
  return {
    root: values.root,
    host: values.host,
    port,
    allowUpload: values["allow-upload"],
    allowDelete: values["allow-delete"],
    classic: !values["no-classic"],
    quiet: values.quiet,
    log: values.log as "text" | "json",
    help: values.help,
    token: values.token,
    tokenFile: values["token-file"],
    cert: values.cert,
    key: values.key,
    proxyProtocol: values["proxy-protocol"],
    leaseTimeoutMs: leaseSeconds === undefined
      ? undefined
      : Number(leaseSeconds) * 1000,
    http,
    limits,
  };
}

/** `--http [HOST:]PORT`, IPv6 hosts in brackets. */
function parseHttp(
  value: string,
): { hostname: string | undefined; port: number } {
  const match = /^(?:(\[[^\]]+\]|[^:\[\]]+):)?(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    throw new UsageError(`bad --http address: ${value} ([HOST:]PORT)`, USAGE);
  }
  const host = match[1]?.replace(/^\[(.*)\]$/, "$1");
  return { hostname: host, port };
}

/**
 * Runs the server from the command line: parses the flags, starts
 * {@linkcode serve}, logs requests to stderr and stops on SIGINT/SIGTERM.
 * A usage error prints the usage and sets exit status 2; a server that
 * cannot start sets 1. It returns once the server has stopped.
 *
 * @returns A promise that settles when the server has stopped.
 */
export async function main(): Promise<void> {
  try {
    await run(Deno.args);
  } catch (error) {
    const exit = exitFor(error, { program: PROGRAM, describe: describeStart });
    console.error(exit.text);
    Deno.exitCode = exit.status;
  }
}

const PROGRAM = "ferry-server";

/** Wording of the errors that stop the server from starting. */
function describeStart(error: unknown): string | undefined {
  if (error instanceof FerryError) return undefined;
  if (error instanceof StartError) {
    return error.cause instanceof Deno.errors.AddrInUse
      ? `cannot listen on ${error.address}: address in use`
      : `cannot start: ${messageOf(error.cause)}`;
  }
  return undefined;
}

/** `serve()` failed for a reason other than a `FerryError`. */
class StartError extends Error {
  /** Where it was to listen, `host:port`. */
  readonly address: string;

  constructor(address: string, cause: unknown) {
    super(messageOf(cause), { cause });
    this.address = address;
  }
}

/** Parses, checks the settings, serves until a signal stops the server. */
async function run(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  const { token, tls } = await loadSettings(flags);
  const controller = new AbortController();
  let server: FerryServer;
  try {
    server = await serve({
      root: flags.root,
      hostname: flags.host,
      port: flags.port,
      allowUpload: flags.allowUpload,
      allowDelete: flags.allowDelete,
      classic: flags.classic,
      ...flags.limits,
      token: token.token,
      cert: tls?.cert,
      key: tls?.key,
      proxyProtocol: flags.proxyProtocol,
      uploadLeaseTimeoutMs: flags.leaseTimeoutMs,
      http: flags.http,
      signal: controller.signal,
      onLog: flags.quiet ? undefined : (event) =>
        console.error(
          flags.log === "json" ? formatLogJson(event) : formatLogText(event),
        ),
    });
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new StartError(
      formatAddress({ hostname: flags.host, port: flags.port }),
      error,
    );
  }
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  const onSignal = () => controller.abort();
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const warnings = startupWarnings({
    hostname: server.addr.hostname,
    token: token.token !== undefined,
    tls: tls !== undefined,
    allowUpload: flags.allowUpload,
    envReadable: token.envReadable,
    strictOpen: kernelNamesFiles(),
    strictAt: strictLibc() !== undefined,
  });
  for (const line of warnings) console.error(`${PROGRAM}: ${line}`);
  console.log(listeningLine(server, flags, tls !== undefined));
  if (server.httpAddr !== undefined) {
    const scheme = tls !== undefined ? "https" : "http";
    console.log(`Listening on ${scheme}://${formatAddress(server.httpAddr)}`);
  }
  await server.finished;
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  exitOverLeftovers();
}

/** How long a stopped server's process may take to end by itself. */
const LEFTOVER_EXIT_MS = 100;

/**
 * `finished` settles even when a handler is stuck in the kernel (an
 * `open()` that no closed connection can interrupt, see `STUCK_MARGIN_MS`
 * in `_server/accept.ts`); such a leftover would keep the process alive. An
 * unreferenced timer ends the process then; one with nothing left ends
 * before the timer, with `Deno.exitCode`. The only `Deno.exit` of the CLI.
 */
function exitOverLeftovers(): void {
  Deno.unrefTimer(setTimeout(() => Deno.exit(), LEFTOVER_EXIT_MS));
}

/**
 * Checks the upload permission, reads the token and the TLS files: a
 * failure is a usage error (exit status 2, no usage text).
 */
async function loadSettings(
  flags: Flags,
): Promise<{ token: TokenSource; tls: TlsFiles | undefined }> {
  if (flags.allowUpload) {
    const write = await Deno.permissions.query({
      name: "write",
      path: flags.root,
    });
    if (write.state !== "granted") {
      throw new UsageError(
        "--allow-upload needs write permission (run deno with --allow-write)",
      );
    }
  }
  try {
    const token = await resolveToken(flags.token, flags.tokenFile);
    return { token, tls: await loadTlsFiles(flags.cert, flags.key) };
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    throw new UsageError(lowerFirst(error.message));
  }
}

/** `Listening on tcp://127.0.0.1:65432 (root /srv, read-only)`. */
function listeningLine(
  server: FerryServer,
  flags: Flags,
  tls: boolean,
): string {
  const mode = flags.allowDelete
    ? "uploads and deletes allowed"
    : flags.allowUpload
    ? "uploads allowed"
    : "read-only";
  return `Listening on ${tls ? "tls" : "tcp"}://${
    formatAddress(server.addr)
  } (root ${server.root}, ${mode})`;
}

/** Whether `/proc/self/fd` can be read (Linux, and Deno run with `-A`). */
function kernelNamesFiles(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    Deno.readLinkSync("/proc/self/fd/0");
    return true;
  } catch {
    return false;
  }
}
