/**
 * The command line of `server.ts`: flags, usage text, the request log on
 * stderr and the signals that stop the server. Only this module prints or
 * exits.
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
import { FerryError } from "../errors.ts";
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

/** Parses the command line; throws a one-line message on a usage error. */
function parseFlags(args: string[]): Flags {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
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
      },
    }));
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    throw new UsageError(text.split(". ")[0].replace(/\.$/, ""));
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new UsageError(`bad port: ${values.port}`);
  }
  if (values.host === "") throw new UsageError("empty --host");
  if (values["proxy-protocol"] && values.cert !== undefined) {
    throw new UsageError(
      "--proxy-protocol cannot be combined with --cert: terminate TLS at the load balancer",
    );
  }
  if (!LOG_FORMATS.includes(values.log)) {
    throw new UsageError(`bad --log format: ${values.log} (text or json)`);
  }
  if (values["allow-delete"] && !values["allow-upload"]) {
    throw new UsageError("--allow-delete needs --allow-upload");
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
    throw new UsageError((error as Error).message);
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
    throw new UsageError(`bad --http address: ${value} ([HOST:]PORT)`);
  }
  const host = match[1]?.replace(/^\[(.*)\]$/, "$1");
  return { hostname: host, port };
}

class UsageError extends Error {}

/**
 * Runs the server from the command line: parses the flags, starts
 * {@linkcode serve}, logs requests to stderr and stops on SIGINT/SIGTERM.
 * Prints usage and exits 2 on a usage error, exits 1 if it cannot start.
 *
 * @returns A promise that settles when the process exits.
 */
export async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = parseFlags(Deno.args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`ferry-server: ${error.message}`);
    console.error(USAGE);
    Deno.exit(2);
  }
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  if (flags.allowUpload) {
    const write = await Deno.permissions.query({
      name: "write",
      path: flags.root,
    });
    if (write.state !== "granted") {
      console.error(
        "ferry-server: --allow-upload needs write permission (run deno with --allow-write)",
      );
      Deno.exit(2);
    }
  }
  let token: TokenSource;
  let tls: TlsFiles | undefined;
  try {
    token = await resolveToken(flags.token, flags.tokenFile);
    tls = await loadTlsFiles(flags.cert, flags.key);
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    const reason = error.message.charAt(0).toLowerCase() +
      error.message.slice(1);
    console.error(`ferry-server: ${reason}`);
    Deno.exit(2);
  }
  const controller = new AbortController();
  const quiet = flags.quiet;
  let server: FerryServer;
  let realRoot: string;
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
      onLog: quiet ? undefined : (event) =>
        console.error(
          flags.log === "json" ? formatLogJson(event) : formatLogText(event),
        ),
    });
    realRoot = await Deno.realPath(flags.root);
  } catch (error) {
    controller.abort();
    const reason = error instanceof FerryError
      ? error.message.charAt(0).toLowerCase() + error.message.slice(1)
      : error instanceof Deno.errors.AddrInUse
      ? `cannot listen on ${flags.host}:${flags.port}: address in use`
      : `cannot start: ${error instanceof Error ? error.message : error}`;
    console.error(`ferry-server: ${reason}`);
    Deno.exit(1);
  }
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  const onSignal = () => controller.abort();
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const host = server.addr.hostname.includes(":")
    ? `[${server.addr.hostname}]`
    : server.addr.hostname;
  const mode = flags.allowDelete
    ? "uploads and deletes allowed"
    : flags.allowUpload
    ? "uploads allowed"
    : "read-only";
  const warnings = startupWarnings({
    hostname: server.addr.hostname,
    token: token.token !== undefined,
    tls: tls !== undefined,
    allowUpload: flags.allowUpload,
    envReadable: token.envReadable,
  });
  for (const line of warnings) console.error(`ferry-server: ${line}`);
  const scheme = tls ? "tls" : "tcp";
  console.log(
    `Listening on ${scheme}://${host}:${server.addr.port} (root ${realRoot}, ${mode})`,
  );
  if (server.httpAddr !== undefined) {
    const httpHost = server.httpAddr.hostname.includes(":")
      ? `[${server.httpAddr.hostname}]`
      : server.httpAddr.hostname;
    console.log(
      `Listening on ${
        tls ? "https" : "http"
      }://${httpHost}:${server.httpAddr.port}`,
    );
  }
  await server.finished;
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  Deno.exit(0);
}
